"""The S&P 500 flow as a Kubeflow Pipelines (KFP v2) pipeline: ETL -> scale -> train -> compare.

    python model/pipelines/sp500_pipeline.py --compile sp500_pipeline.yaml
    python model/pipelines/sp500_pipeline.py --run-local DIR [--arg multiplier=2 --arg max_steps_per_epoch=20 ...]

ETL builds the windowed dataset (`python -m etl build`, the shipped snapshot by default); scale writes its
K-times larger train split (etl.scaling, as create_large_dataset.py); the trainer runs on the base dataset
(as soon as it exists) and on the scaled one, in parallel; compare turns the two runs into a scale-test
results JSON and runs compare_results.py on it (report.md and plots). Lightweight Python components in
the image named by the `image` parameter (default `sp500-pipelines:latest`, model/pipelines/Dockerfile).
"""

import sys

import pipeline_cli  # first: ends the script with one line when kfp is missing

# isort: split
from kfp import dsl

IMAGE = "sp500-pipelines:latest"
TRAIN_CPU, TRAIN_MEMORY_MB = "2", 4096


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def etl_build(source: str, target: str, window: int, dataset: dsl.Output[dsl.Dataset]):
    """`python -m etl build` into the dataset artifact."""
    from etl.__main__ import main

    main(["build", "--source", source, "--target", target, "--window", str(window), "--out", dataset.path])


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def scale(base: dsl.Input[dsl.Dataset], multiplier: int, noise_std: float, seed: int,
          scaled: dsl.Output[dsl.Dataset]):
    """The base dataset with its train split `multiplier` times as large (noise-injected copies)."""
    from pathlib import Path

    from etl.scaling import scale_dataset

    scale_dataset(Path(base.path), Path(scaled.path), multiplier, noise_std=noise_std, seed=seed)
    scaled.metadata["multiplier"] = multiplier


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(dataset: dsl.Input[dsl.Dataset], epochs: int, max_steps_per_epoch: int, threads: int,
          run: dsl.Output[dsl.Model], metrics: dsl.Output[dsl.Metrics]):
    """The trainer (default config, stream mode) on `dataset`; `run` is its run folder."""
    from pathlib import Path

    from trainer.config import load_config
    from trainer.run import train

    folder = Path(run.path)
    result = train(load_config(None, [
        f"data.path={dataset.path}", f"train.epochs={epochs}", f"train.max_steps_per_epoch={max_steps_per_epoch}",
        f"train.threads={threads}", f"io.save_dir={folder.parent}", f"io.run_name={folder.name}",
    ]))
    for name, value in result["test"].items():
        metrics.log_metric(f"test_{name}", value)
    metrics.log_metric("samples_per_second", result["samples_per_second"])
    metrics.log_metric("peak_rss_mb", result["peak_rss_mb"])


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def compare(base_run: dsl.Input[dsl.Model], scaled_run: dsl.Input[dsl.Model], memory_cap_mb: int,
            report: dsl.Output[dsl.Artifact], summary: dsl.Output[dsl.Markdown]):
    """A scale-test results JSON of the two runs, and compare_results.py's report of it."""
    import json
    from pathlib import Path

    import compare_results
    from results_file import results_document, write_results

    from trainer.report import where

    rows = []
    for run in (base_run, scaled_run):
        metrics = json.loads((Path(run.path) / "metrics.json").read_text())
        index = json.loads((Path(metrics["dataset"]["path"]) / "index.json").read_text())
        rows.append({
            "multiplier": metrics["dataset"]["multiplier"], "mode": metrics["data_mode"],
            "world_size": metrics["world_size"], "status": "ok", "train_rows": metrics["dataset"]["rows"]["train"],
            "train_mb": round(sum(s["bytes"] for s in index["splits"]["train"]["shards"]) / 1e6, 1),
            "seconds": metrics["wall_seconds"], "peak_rss_mb": metrics["peak_rss_mb"],
            "samples_per_second": metrics["samples_per_second"], "train_seconds": metrics["train_seconds"],
            "test": metrics["test"],
        })
    out = Path(report.path)
    settings = {"epochs": metrics["config"]["train"]["epochs"],
                "max_steps": metrics["config"]["train"]["max_steps_per_epoch"], "memory_cap_mb": memory_cap_mb}
    results = write_results(out / "results" / "scale_test_pipeline.json",
                            results_document("scale_test", where(), rows, settings=settings))
    compare_results.main([str(results), "--out", str(out)])
    Path(summary.path).write_text((out / "report.md").read_text())


@dsl.pipeline(name="sp500-scale", description="S&P 500: ETL, a scaled copy of the train split, the trainer on "
                                              "both, and the comparison report.")
def sp500_pipeline(source: str = "snapshot", target: str = "volatility", window: int = 20, multiplier: int = 10,
                   noise_std: float = 0.01, seed: int = 0, epochs: int = 3, max_steps_per_epoch: int = 200,
                   threads: int = 0, image: str = IMAGE):
    base = etl_build(source=source, target=target, window=window).set_display_name("etl")
    scaled = scale(base=base.outputs["dataset"], multiplier=multiplier, noise_std=noise_std, seed=seed)
    runs = {}
    for name, data in (("base", base), ("scaled", scaled)):
        runs[name] = train(dataset=data.outputs["dataset" if name == "base" else "scaled"], epochs=epochs,
                           max_steps_per_epoch=max_steps_per_epoch, threads=threads)
        runs[name].set_display_name(f"train-{name}").set_cpu_limit(TRAIN_CPU)
        runs[name].set_memory_limit(f"{TRAIN_MEMORY_MB}Mi")
    report = compare(base_run=runs["base"].outputs["run"], scaled_run=runs["scaled"].outputs["run"],
                     memory_cap_mb=TRAIN_MEMORY_MB)
    for task in (base, scaled, *runs.values(), report):
        task.set_container_image(image)


if __name__ == "__main__":
    sys.exit(pipeline_cli.cli(sp500_pipeline, "sp500_pipeline.py", __doc__.splitlines()[0]))
