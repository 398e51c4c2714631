"""The XOR study: a model with no hidden layer against one with a hidden layer, on the parity dataset.

    python model/experiments/xor_study.py [--train 10000] [--validation 1000] [--test 1000] [--dims 2] [--seed 0]
        [--epochs 40] [--lr 0.01] [--hidden 16] [--batch-size 128] [--threads 1] [--out DIR] [--results FILE]
        [--force]

One command: generates the dataset (`etl.xor`, points uniform in [0, 1]^d labelled by the parity of their
rounded coordinates), trains the trainer's MLP twice with the same settings, `model.layers=0` (`linear`:
logistic regression) and `model.layers=1` (`hidden`: one hidden layer of `--hidden` units), then draws the
plots and writes a results JSON (`kind: xor_study`) that compare_results.py shows. Both runs use a constant
learning rate and no early stopping, so their curves cover the same epochs.

Plots (PNG, under `<out>/plots/`): the train and test points coloured by label (d = 2 only), loss per
epoch (train and validation), validation accuracy per epoch (axis [0, 1]), and the decision regions of both
models (d = 2 only). The trainer records accuracy per epoch on the validation split only; the train
accuracy in the table is the best model's, measured once after training.

The Kubeflow pipeline (model/pipelines/xor_pipeline.py) runs the same functions, one component each.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from results_file import results_document, write_results  # noqa: E402

from etl import open_dataset  # noqa: E402
from etl.cli import Parser, run  # noqa: E402
from etl.errors import UserError  # noqa: E402
from etl.xor import build_xor  # noqa: E402
from trainer.config import Config, ModelConfig, load_config  # noqa: E402
from trainer.models import build_model  # noqa: E402
from trainer.report import where  # noqa: E402
from trainer.run import train  # noqa: E402
from trainer.run_files import METRICS_FILE, MODEL_FILE  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "model" / "outputs" / "xor"
DEFAULT_RESULTS = REPO / "model" / "outputs" / "results" / "xor_study.json"
MODELS = {"linear": 0, "hidden": 1}  # name -> hidden layers
LABELS = {"linear": "linear (no hidden layer)", "hidden": "one hidden layer"}
COLORS = {"linear": "tab:orange", "hidden": "tab:blue"}
PLOTS = ("points", "loss", "accuracy", "regions")


@dataclass(frozen=True)
class Settings:
    """What both models share: every trainer key the study sets."""

    epochs: int = 40
    lr: float = 0.01
    hidden: int = 16
    batch_size: int = 128
    seed: int = 0
    threads: int = 1

    def config(self, name: str, data: Path, run_dir: Path) -> Config:
        """The trainer config of model `name` (a key of MODELS) on `data`, writing to `run_dir`."""
        return load_config(None, [
            f"data.path={data}", f"model.layers={MODELS[name]}", f"model.hidden={self.hidden}",
            f"train.epochs={self.epochs}", f"train.lr={self.lr}", f"train.batch_size={self.batch_size}",
            f"train.seed={self.seed}", f"train.threads={self.threads}", "train.schedule=none",
            "train.early_stop_patience=0", f"io.save_dir={run_dir.parent}", f"io.run_name={run_dir.name}",
        ])


def train_model(name: str, data: Path, settings: Settings, run_dir: Path) -> dict:
    """Train model `name` on the dataset `data`; the trainer writes `run_dir` and returns its metrics."""
    return train(settings.config(name, data, run_dir))


def load_trained(run_dir: Path) -> torch.nn.Module:
    """The best model a trainer run saved in `run_dir` (weights only), in eval mode."""
    saved = torch.load(run_dir / MODEL_FILE, weights_only=True)
    dataset = saved["dataset"]
    model = build_model(ModelConfig(**saved["model_config"]), dataset["window"], len(dataset["feature_names"]))
    model.load_state_dict(saved["weights"])
    return model.eval()


def probabilities(model: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    """P(label 1) for points `[rows, d]`."""
    with torch.no_grad():
        return torch.sigmoid(model(torch.as_tensor(points, dtype=torch.float32)[:, None, :])).numpy()


def row(name: str, metrics: dict, run_dir: Path, data: Path) -> dict:
    """The results-JSON row of one trained model."""
    x, y = open_dataset(data).load_split("train")
    last = metrics["history"][-1]
    return {
        "model": name, "layers": MODELS[name], "hidden": metrics["config"]["model"]["hidden"] if MODELS[name] else 0,
        "epochs": metrics["epochs"], "best_epoch": metrics["best_epoch"],
        "final_train_loss": last["train_loss"], "final_val_loss": last["val_loss"],
        "final_val_accuracy": last["val_accuracy"],
        "train_accuracy": float(((probabilities(load_trained(run_dir), x[:, 0, :]) >= 0.5) == y).mean()),
        "test_accuracy": metrics["test"]["accuracy"], "test_loss": metrics["test"]["loss"],
        "test_f1": metrics["test"]["f1"], "baseline_majority_accuracy": metrics["baselines"]["majority"]["accuracy"],
        "train_seconds": metrics["train_seconds"], "run_dir": str(run_dir),
        "history": [{k: h[k] for k in ("epoch", "train_loss", "val_loss", "val_accuracy")} for h in metrics["history"]],
    }


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=110)
    finally:
        plt.close(fig)
    return path


def square(ax, title: str) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)


def plot_points(data: Path, path: Path) -> Path:
    """Scatter of the train and test points of a 2-D dataset, coloured by label."""
    dataset = open_dataset(data)
    if dataset.n_features != 2:
        raise UserError(f"{data} has d = {dataset.n_features}: the scatter plot needs d = 2")
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, split in zip(axes, ("train", "test"), strict=True):
        x, y = dataset.load_split(split)
        for label, color in ((0, "tab:red"), (1, "tab:green")):
            chosen = x[y == label, 0, :]
            ax.scatter(chosen[:, 0], chosen[:, 1], s=4, color=color, alpha=0.6, label=f"label {label}")
        square(ax, f"{split} split: {len(y)} points")
        ax.legend(loc="upper right", markerscale=3, framealpha=0.9)
    fig.suptitle("XOR data: label = parity of the rounded coordinates")
    return save(fig, path)


def plot_curves(histories: dict[str, list[dict]], loss_path: Path, accuracy_path: Path) -> tuple[Path, Path]:
    """Loss (train solid, validation dashed) and validation accuracy per epoch, one line per model."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, history in histories.items():
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], color=COLORS[name], label=f"{LABELS[name]}, train")
        ax.plot(epochs, [h["val_loss"] for h in history], color=COLORS[name], linestyle="--",
                label=f"{LABELS[name]}, validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy loss")
    ax.set_ylim(bottom=0)
    ax.set_title("Loss per epoch")
    ax.grid(True, alpha=0.3)
    ax.legend()
    save(fig, loss_path)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, history in histories.items():
        ax.plot([h["epoch"] for h in history], [h["val_accuracy"] for h in history], color=COLORS[name],
                label=LABELS[name])
    ax.axhline(0.5, color="grey", linestyle=":", label="chance (0.5)")
    ax.set_ylim(0, 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Validation accuracy per epoch")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    save(fig, accuracy_path)
    return loss_path, accuracy_path


def plot_regions(run_dirs: dict[str, Path], data: Path, path: Path) -> Path:
    """Each model's P(label 1) over [0, 1]^2, its 0.5 boundary, and the test points."""
    x, y = open_dataset(data).load_split("test")
    grid = np.linspace(0, 1, 201, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    fig, axes = plt.subplots(1, len(run_dirs), figsize=(5.5 * len(run_dirs), 5))
    for ax, (name, run_dir) in zip(np.atleast_1d(axes), run_dirs.items(), strict=True):
        model = load_trained(run_dir)
        p = probabilities(model, np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(gx.shape)
        filled = ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="RdYlGn", alpha=0.75)
        ax.contour(gx, gy, p, levels=[0.5], colors="black", linewidths=1.5)
        accuracy = float(((probabilities(model, x[:, 0, :]) >= 0.5) == y).mean())
        for label, marker in ((0, "o"), (1, "^")):
            chosen = x[y == label, 0, :]
            ax.scatter(chosen[:, 0], chosen[:, 1], s=6, marker=marker, facecolors="none", edgecolors="black",
                       linewidths=0.4, label=f"test, label {label}")
        square(ax, f"{LABELS[name]}: test accuracy {accuracy:.3f}")
        ax.legend(loc="upper right", framealpha=0.9)
        fig.colorbar(filled, ax=ax, fraction=0.046, label="P(label 1)")
    fig.suptitle("Decision regions (black line: P = 0.5)")
    return save(fig, path)


def draw_plots(data: Path, run_dirs: dict[str, Path], plots: Path) -> dict[str, str | None]:
    """Every plot of the study into `plots`; the 2-D-only ones are None when d != 2."""
    histories = {name: json.loads((run_dir / METRICS_FILE).read_text())["history"]
                 for name, run_dir in run_dirs.items()}
    two_d = open_dataset(data).n_features == 2
    loss, accuracy = plot_curves(histories, plots / "xor_loss.png", plots / "xor_accuracy.png")
    return {
        "points": str(plot_points(data, plots / "xor_points.png")) if two_d else None,
        "loss": str(loss),
        "accuracy": str(accuracy),
        "regions": str(plot_regions(run_dirs, data, plots / "xor_regions.png")) if two_d else None,
    }


def study_document(data: Path, run_dirs: dict[str, Path], settings: Settings, plots: dict) -> dict:
    """The results JSON (kind xor_study) of two finished runs."""
    dataset = open_dataset(data)
    rows = [row(name, json.loads((run_dir / METRICS_FILE).read_text()), run_dir, data)
            for name, run_dir in run_dirs.items()]
    notes = [] if dataset.n_features == 2 else [
        f"d = {dataset.n_features}: the scatter plot and the decision regions are drawn only for d = 2"]
    return results_document(
        "xor_study", where(), rows, settings=asdict(settings), plots=plots, notes=notes,
        dataset={"path": str(data), "dims": dataset.n_features, "seed": dataset.index.get("seed"),
                 **{split: dataset.rows(split) for split in ("train", "validation", "test")}},
    )


def main(argv=None) -> None:
    parser = Parser(prog="xor_study.py", description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=10_000, help="training points (default 10000)")
    parser.add_argument("--validation", type=int, default=1_000, help="validation points (default 1000)")
    parser.add_argument("--test", type=int, default=1_000, help="test points (default 1000)")
    parser.add_argument("--dims", type=int, default=2, help="dimensions d >= 1 (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="data and training seed (default 0)")
    defaults = Settings()
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help=f"epochs (default {defaults.epochs})")
    parser.add_argument("--lr", type=float, default=defaults.lr, help=f"learning rate (default {defaults.lr})")
    parser.add_argument("--hidden", type=int, default=defaults.hidden,
                        help=f"units of the hidden layer (default {defaults.hidden})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help=f"rows per step (default {defaults.batch_size})")
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help=f"torch threads, 0 = all cores (default {defaults.threads})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for data/, runs/ and plots/ (default {DEFAULT_OUT})")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                        help=f"results JSON (default {DEFAULT_RESULTS})")
    parser.add_argument("--force", action="store_true", help="replace the dataset of an earlier study in --out")
    args = parser.parse_args(argv)
    if args.dims < 1 or min(args.train, args.validation, args.test) < 1:
        raise UserError("--dims, --train, --validation and --test must each be >= 1")
    if args.batch_size > args.train:
        raise UserError(f"--batch-size {args.batch_size} is larger than --train {args.train}")
    settings = Settings(epochs=args.epochs, lr=args.lr, hidden=args.hidden, batch_size=args.batch_size,
                        seed=args.seed, threads=args.threads)
    data, runs = args.out / "data", args.out / "runs"
    run_dirs = {name: runs / name for name in MODELS}
    for name, run_dir in run_dirs.items():  # every setting checked before anything is written
        settings.config(name, data, run_dir)
    build_xor(data, train=args.train, validation=args.validation, test=args.test, dims=args.dims, seed=args.seed,
              force=args.force)
    for name, run_dir in run_dirs.items():
        print(f"== training {name} ({LABELS[name]})", flush=True)
        train_model(name, data, settings, run_dir)
    plots = draw_plots(data, run_dirs, args.out / "plots")
    document = study_document(data, run_dirs, settings, plots)
    write_results(args.results, document)
    for r in document["rows"]:
        print(f"{r['model']:<7} train accuracy {r['train_accuracy']:.3f}  test accuracy {r['test_accuracy']:.3f}  "
              f"test loss {r['test_loss']:.4f}")
    for note in document["notes"]:
        print(f"note: {note}")
    print(f"plots:   {args.out / 'plots'}\nresults: {args.results}")


if __name__ == "__main__":
    sys.exit(run(main))
