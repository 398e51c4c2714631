"""Merge experiment results JSONs into `report.md` (tabulate tables) and PNG plots.

    python model/experiments/compare_results.py [RESULT.json | DIR ...] [--out DIR]

Reads every results JSON named or found in the named folders (default: model/outputs/results/), local
and cloud, scale tests and searches. A file that is not a results JSON is named and skipped; a kind of
result that is missing is said in the report; nothing here crashes on a partial set. Writes
`<out>/report.md` and `<out>/plots/*.png` (default out: model/outputs/report/) and prints the tables.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tabulate import tabulate  # noqa: E402

from etl.cli import Parser, run  # noqa: E402
from etl.errors import UserError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_INPUT = REPO / "model" / "outputs" / "results"
DEFAULT_OUT = REPO / "model" / "outputs" / "report"
ROW_FIELDS = {  # what a row needs to be drawn; other rows are counted as malformed and skipped
    "scale_test": {"multiplier": int, "mode": str, "world_size": int, "status": str},
    "hp_search": {"trial": int, "status": str, "params": dict},
    "xor_study": {"model": str, "test_accuracy": float, "history": list},
}
EXPECTED = {
    ("scale_test", "local"): "test_scale_local.py",
    ("hp_search", "local"): "hyperparam_search_local.py",
    ("hp_search", "cloud"): "hyperparam_search_cloud.py",
}


def find_files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.json") if not p.name.startswith("."))
        elif path.exists():
            files.append(path)
        else:
            raise UserError(f"{path} does not exist: pass results JSON files or folders")
    return files


def load(files: list[Path]) -> tuple[list[dict], list[str]]:
    """The usable documents (each with `_file`) and one problem line per unusable file."""
    documents, problems = [], []
    for file in files:
        try:
            document = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{file}: not readable JSON ({str(exc).splitlines()[0]})")
            continue
        if not isinstance(document, dict) or not isinstance(document.get("rows"), list) or "kind" not in document:
            problems.append(f"{file}: not a results JSON (needs `kind` and a list of `rows`)")
            continue
        fields = ROW_FIELDS.get(document["kind"], {})
        rows = [row for row in document["rows"]
                if isinstance(row, dict) and all(isinstance(row.get(k), t) for k, t in fields.items())]
        if len(rows) != len(document["rows"]):
            problems.append(f"{file}: {len(document['rows']) - len(rows)} malformed row(s) skipped")
        documents.append({**document, "rows": rows, "_file": str(file)})
    return documents, problems


def number(value, digits: int = 1):
    if not isinstance(value, (int, float)):
        return "-"
    return round(value) if digits == 0 else round(value, digits)


def short_params(params) -> str:
    """`lr=0.001 hidden=32 layers=3` from a trial's `section.key` overrides (epochs left out)."""
    if not isinstance(params, dict):
        return str(params)
    return " ".join(f"{k.split('.')[-1]}={v}" for k, v in params.items() if k != "train.epochs")


class Report:
    """Collects markdown sections and plots, and prints each table as it is added."""

    def __init__(self, out: Path):
        self.out, self.sections, self.plots = out, [], out / "plots"

    def text(self, markdown: str) -> None:
        self.sections.append(markdown)

    def table(self, title: str, rows: list[list], headers: list[str]) -> None:
        print(f"\n{title}\n{tabulate(rows, headers=headers)}")
        self.sections.append(f"### {title}\n\n{tabulate(rows, headers=headers, tablefmt='github')}\n")

    def figure(self, name: str, title: str, draw) -> None:
        self.plots.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(7, 4.2))
        try:
            draw(ax)
            ax.set_title(title)
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
            fig.tight_layout()
            fig.savefig(self.plots / f"{name}.png", dpi=110)
        finally:
            plt.close(fig)
        self.sections.append(f"![{title}](plots/{name}.png)\n")

    def write(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "report.md"
        path.write_text("\n".join(self.sections) + "\n")
        return path


def scale_section(report: Report, documents: list[dict]) -> None:
    rows = [row for doc in documents for row in doc["rows"]]
    if not rows:
        return
    cap = next((doc.get("settings", {}).get("memory_cap_mb") for doc in documents), None)
    report.text(f"## Scale test: peak memory and time against dataset size\n\nMemory cap: {cap} MiB on the run's "
                "process tree. `oom_at_cap` = stopped at the cap.\n")
    table = [[r.get("multiplier"), r.get("train_mb"), r.get("mode"), r.get("world_size"), r.get("status"),
              number(r.get("peak_rss_mb")), number(r.get("seconds")), number(r.get("samples_per_second"), 0)]
             for r in sorted(rows, key=lambda r: (str(r.get("mode")), r.get("world_size") or 0,
                                                   r.get("multiplier") or 0))]
    report.table("Scale test", table, ["multiplier", "train MB", "mode", "world", "status", "peak RSS MiB",
                                       "seconds", "samples/s"])
    findings = []
    for mode in sorted({r.get("mode") for r in rows}):
        for world in sorted({r.get("world_size") or 0 for r in rows}):
            series = sorted((r for r in rows if r.get("mode") == mode and r.get("world_size") == world),
                            key=lambda r: r.get("multiplier") or 0)
            failed = [r for r in series if r.get("status") == "oom_at_cap"]
            ok = [r for r in series if r.get("status") == "ok" and r.get("peak_rss_mb")]
            if failed:
                findings.append(f"- `{mode}` mode, world size {world}: exceeds the cap from x{failed[0]['multiplier']} "
                                f"({failed[0].get('train_mb')} MB of training data).")
            elif len(ok) > 1:
                growth = ok[-1]["peak_rss_mb"] / ok[0]["peak_rss_mb"]
                findings.append(f"- `{mode}` mode, world size {world}: peak RSS {ok[0]['peak_rss_mb']} MiB at "
                                f"x{ok[0]['multiplier']} and {ok[-1]['peak_rss_mb']} MiB at x{ok[-1]['multiplier']} "
                                f"({growth:.2f}x); no run stopped at the cap.")
    report.text("\n".join(findings) + "\n")

    def rss(ax):
        for (mode, world), series in group(rows, ("mode", "world_size")).items():
            series = [r for r in series if r.get("peak_rss_mb")]
            ax.plot([r.get("train_mb") for r in series], [r["peak_rss_mb"] for r in series], marker="o",
                    linestyle="-" if world == 1 else "--", label=f"{mode}, world {world}")
            for r in series:
                if r.get("status") == "oom_at_cap":
                    ax.scatter([r.get("train_mb")], [r["peak_rss_mb"]], marker="x", s=90, color="red", zorder=5)
        if cap:
            ax.axhline(cap, color="red", linewidth=1, label=f"cap {cap} MiB")
        ax.set_xscale("log")
        ax.set_xlabel("training data on disk (MB, log scale)")
        ax.set_ylabel("peak RSS of the process tree (MiB)")

    report.figure("scale_peak_rss", "Peak memory against dataset size (x = stopped at the cap)", rss)

    def throughput(ax):
        for (mode, multiplier), series in group(rows, ("mode", "multiplier")).items():
            series = sorted((r for r in series if r.get("samples_per_second")), key=lambda r: r["world_size"])
            if series:
                ax.plot([r["world_size"] for r in series], [r["samples_per_second"] for r in series], marker="o",
                        label=f"{mode}, x{multiplier}")
        ax.set_xlabel("world size (processes)")
        ax.set_ylabel("training samples per second")
        ax.set_xticks(sorted({r.get("world_size") for r in rows if r.get("world_size")}))

    report.figure("scale_throughput", "Throughput against world size", throughput)


def group(rows: list[dict], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    groups = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.get("multiplier") or 0):
        groups[tuple(row.get(k) for k in keys)].append(row)
    return dict(sorted(groups.items(), key=lambda item: tuple(
        (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for v in item[0])))


def search_label(document: dict) -> str:
    return f"{document.get('where')}/{document.get('mode', '?')}"


def search_section(report: Report, documents: list[dict]) -> None:
    if not documents:
        return
    report.text("## Hyperparameter search\n")
    sequential = next((d.get("wall_seconds") for d in documents
                       if d.get("where") == "local" and d.get("mode") == "sequential"), None)
    table = []
    for doc in documents:
        rows = doc["rows"]
        done = [r for r in rows if r.get("status") == "ok"]
        wall = doc.get("wall_seconds")
        speedup = f"{sequential / wall:.1f}x" if sequential and isinstance(wall, (int, float)) and wall else "-"
        best = min(done, key=lambda r: r.get("best_val_loss", float("inf")), default=None)
        table.append([search_label(doc), doc.get("strategy", "-"), f"{len(done)}/{doc.get('total', len(rows))}",
                      number(wall), speedup, number(best.get("best_val_loss"), 4) if best else "-",
                      json.dumps(best.get("params")) if best else "-"])
    report.table("Search wall time per strategy", table,
                 ["where/mode", "strategy", "trials ok", "wall s", "speedup vs sequential", "best val_loss",
                  "best params"])
    failed = [[search_label(d), r.get("trial"), json.dumps(r.get("params")), r.get("status"), r.get("error")]
              for d in documents for r in d["rows"] if r.get("status") != "ok"]
    if failed:
        report.table("Trials that did not finish", failed, ["where/mode", "trial", "params", "status", "error"])
    best_rows = sorted((r for d in documents for r in d["rows"] if r.get("status") == "ok"),
                       key=lambda r: r.get("best_val_loss", float("inf")))
    if best_rows and isinstance(best_rows[0].get("test"), dict):
        best = best_rows[0]
        baselines = best.get("baselines") if isinstance(best.get("baselines"), dict) else {}
        lines = [[name.removeprefix("test_"), number(value, 5),
                  *(number(b.get(name.removeprefix("test_")), 5) for b in baselines.values())]
                 for name, value in sorted(best["test"].items())]
        report.table(f"Best trial {json.dumps(best.get('params'))}: test metrics against naive baselines",
                     lines, ["metric", "model", *baselines])

    def walls(ax):
        labels = [search_label(d) for d in documents if isinstance(d.get("wall_seconds"), (int, float))]
        values = [d["wall_seconds"] for d in documents if isinstance(d.get("wall_seconds"), (int, float))]
        ax.bar(labels, values, color="tab:blue")
        for i, value in enumerate(values):
            ax.text(i, value, f"{value:.0f} s", ha="center", va="bottom")
        ax.set_ylabel("wall time (s)")
        ax.set_xlabel("where / strategy")

    report.figure("search_wall_time", "Search wall time per strategy", walls)
    distinct = {json.dumps(r.get("params"), sort_keys=True): r for r in reversed(best_rows)}  # best run of each
    curves = sorted((r for r in distinct.values() if isinstance(r.get("history"), list)),
                    key=lambda r: r.get("best_val_loss", float("inf")))[:5]
    if curves:
        def draw(ax):
            for r in curves:
                history = [h for h in r["history"] if isinstance(h, dict) and "val_loss" in h]
                ax.plot([h.get("epoch") for h in history], [h["val_loss"] for h in history], marker=".",
                        label=short_params(r.get("params")))
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation loss")

        report.figure("search_val_curves", "Validation loss of the best trials", draw)


def xor_section(report: Report, documents: list[dict]) -> None:
    """Final metrics of the XOR study's two models, and the PNGs the study drew, copied beside report.md."""
    for doc in documents:
        data = doc.get("dataset") or {}
        report.text(f"## XOR study: no hidden layer against one hidden layer ({doc.get('where')})\n\n"
                    f"d = {data.get('dims')}, {data.get('train')} train / {data.get('validation')} validation / "
                    f"{data.get('test')} test points; settings {json.dumps(doc.get('settings'))}.\n")
        table = [[r["model"], r.get("layers"), r.get("hidden"), r.get("epochs"),
                  number(r.get("final_train_loss"), 4), number(r.get("train_accuracy"), 3),
                  number(r.get("final_val_accuracy"), 3), number(r.get("test_loss"), 4), number(r["test_accuracy"], 3),
                  number(r.get("baseline_majority_accuracy"), 3)] for r in doc["rows"]]
        report.table(f"XOR study: final metrics ({Path(doc['_file']).name})", table,
                     ["model", "hidden layers", "units", "epochs", "final train loss", "train acc", "final val acc",
                      "test loss", "test acc", "majority baseline acc"])
        notes = [f"- {note}" for note in doc.get("notes") or []]
        for name, source in (doc.get("plots") or {}).items():
            if not source:
                continue
            if not Path(source).is_file():
                notes.append(f"- plot `{name}` is missing: {source} (rerun xor_study.py)")
                continue
            report.plots.mkdir(parents=True, exist_ok=True)
            target = f"{Path(doc['_file']).stem}_{name}.png"
            shutil.copyfile(source, report.plots / target)
            report.text(f"![XOR study: {name}](plots/{target})\n")
        if notes:
            report.text("\n".join(notes) + "\n")


def main(argv=None) -> None:
    parser = Parser(prog="compare_results.py", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path, help=f"results JSONs or folders (default {DEFAULT_INPUT})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"report folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    inputs = args.inputs or ([DEFAULT_INPUT] if DEFAULT_INPUT.exists() else [])
    documents, problems = load(find_files(inputs))
    report = Report(args.out)
    report.text("# Experiment report\n")
    report.text("Sources:\n\n" + "\n".join(f"- `{d['_file']}` ({d['kind']}, {d.get('where')}, {d.get('created')}, "
                                            f"{d.get('machine', {}).get('cores')} cores)" for d in documents) + "\n"
                if documents else "No results found.\n")
    present = {(d["kind"], d.get("where")) for d in documents}
    missing = [f"- no `{kind}` ({where}) results: run `{script}`" for (kind, where), script in EXPECTED.items()
               if (kind, where) not in present]
    if missing or problems:
        report.text("Missing or unusable:\n\n" + "\n".join(missing + [f"- {p}" for p in problems]) + "\n")
        for line in missing + problems:
            print(line.lstrip("- "), file=sys.stderr)
    sections = (("scale_test", scale_section), ("hp_search", search_section), ("xor_study", xor_section))
    for kind, section in sections:
        chosen = [d for d in documents if d["kind"] == kind]
        try:
            section(report, chosen)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # rows of unexpected shape
            files = ", ".join(d["_file"] for d in chosen)
            report.text(f"The {kind} section could not be drawn from {files}: {exc!r}\n")
            print(f"{kind}: could not use {files}: {exc!r}", file=sys.stderr)
    path = report.write()
    print(f"\nreport: {path}\nplots:  {report.plots}")


if __name__ == "__main__":
    sys.exit(run(main))
