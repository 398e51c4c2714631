"""The XOR study as a Kubeflow Pipelines (KFP v2) pipeline.

    python model/pipelines/xor_pipeline.py --compile xor_pipeline.yaml
    python model/pipelines/xor_pipeline.py --run-local DIR [--arg train=2000 --arg epochs=10 ...]

generate -> scatter plot (only when dims == 2) -> train linear and train hidden (in parallel, same settings)
-> training plots (loss, accuracy) and decision regions (only when dims == 2). The same steps as
`model/experiments/xor_study.py`, one component each: every component is a lightweight Python component
that calls the project's own code (`etl.xor`, the trainer, xor_study.py) inside the image named by the
`image` parameter (default `sp500-pipelines:latest`, built by model/pipelines/Dockerfile: the trainer
image plus kfp). Pipeline parameters: sample counts, dims, seed, epochs and the training settings.
"""

import sys

import pipeline_cli  # first: ends the script with one line when kfp is missing

# isort: split
from kfp import dsl

IMAGE = "sp500-pipelines:latest"
TRAIN_CPU, TRAIN_MEMORY = "1", "2G"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def generate(train: int, validation: int, test: int, dims: int, seed: int, dataset: dsl.Output[dsl.Dataset]):
    """Draw the XOR points (etl.xor) as a dataset in format v1."""
    from pathlib import Path

    from etl.xor import build_xor

    index = build_xor(Path(dataset.path), train=train, validation=validation, test=test, dims=dims, seed=seed)
    dataset.metadata.update(dims=dims, rows={split: index["splits"][split]["rows"] for split in index["splits"]})


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def scatter_plot(dataset: dsl.Input[dsl.Dataset], plot: dsl.Output[dsl.Artifact]):
    """The train and test points coloured by label (a 2-D dataset)."""
    from pathlib import Path

    import xor_study

    xor_study.plot_points(Path(dataset.path), Path(plot.path))
    plot.metadata["format"] = "png"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_model(dataset: dsl.Input[dsl.Dataset], model_name: str, epochs: int, lr: float, hidden: int,
                batch_size: int, seed: int, threads: int, run: dsl.Output[dsl.Model], metrics: dsl.Output[dsl.Metrics]):
    """Train `model_name` (linear: no hidden layer; hidden: one) with the trainer; `run` is its run folder."""
    from pathlib import Path

    import xor_study

    settings = xor_study.Settings(epochs=epochs, lr=lr, hidden=hidden, batch_size=batch_size, seed=seed,
                                  threads=threads)
    result = xor_study.train_model(model_name, Path(dataset.path), settings, Path(run.path))
    for name, value in result["test"].items():
        metrics.log_metric(f"test_{name}", value)
    metrics.log_metric("best_val_loss", result["best_val_loss"])
    run.metadata.update(model=model_name, layers=xor_study.MODELS[model_name], epochs=result["epochs"])


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def training_plots(dataset: dsl.Input[dsl.Dataset], linear: dsl.Input[dsl.Model], hidden: dsl.Input[dsl.Model],
                   epochs: int, lr: float, hidden_units: int, batch_size: int, seed: int, threads: int,
                   loss: dsl.Output[dsl.Artifact], accuracy: dsl.Output[dsl.Artifact],
                   results: dsl.Output[dsl.Artifact]):
    """Loss and validation accuracy per epoch of both models, and the study's results JSON (kind xor_study)."""
    import json
    from pathlib import Path

    import xor_study
    from results_file import write_results

    from trainer.run_files import METRICS_FILE

    runs = {"linear": Path(linear.path), "hidden": Path(hidden.path)}
    histories = {name: json.loads((run / METRICS_FILE).read_text())["history"] for name, run in runs.items()}
    xor_study.plot_curves(histories, Path(loss.path), Path(accuracy.path))
    settings = xor_study.Settings(epochs=epochs, lr=lr, hidden=hidden_units, batch_size=batch_size, seed=seed,
                                  threads=threads)
    document = xor_study.study_document(Path(dataset.path), runs, settings,
                                        {"loss": loss.uri, "accuracy": accuracy.uri})
    write_results(results.path, document)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def decision_regions(dataset: dsl.Input[dsl.Dataset], linear: dsl.Input[dsl.Model], hidden: dsl.Input[dsl.Model],
                     plot: dsl.Output[dsl.Artifact]):
    """Each model's P(label 1) over the unit square (a 2-D dataset)."""
    from pathlib import Path

    import xor_study

    xor_study.plot_regions({"linear": Path(linear.path), "hidden": Path(hidden.path)}, Path(dataset.path),
                           Path(plot.path))


@dsl.pipeline(name="xor-study", description="XOR (parity) data: a model without a hidden layer against one with "
                                            "a hidden layer, from the generator to the plots.")
def xor_study_pipeline(train: int = 10_000, validation: int = 1_000, test: int = 1_000, dims: int = 2, seed: int = 0,
                       epochs: int = 40, lr: float = 0.01, hidden: int = 16, batch_size: int = 128,
                       threads: int = 0, image: str = IMAGE):
    data = generate(train=train, validation=validation, test=test, dims=dims, seed=seed)
    tasks = [data]
    runs = {}
    for name in ("linear", "hidden"):
        runs[name] = train_model(dataset=data.outputs["dataset"], model_name=name, epochs=epochs, lr=lr,
                                 hidden=hidden, batch_size=batch_size, seed=seed, threads=threads)
        runs[name].set_display_name(f"train-{name}").set_cpu_limit(TRAIN_CPU).set_memory_limit(TRAIN_MEMORY)
        tasks.append(runs[name])
    models = {"linear": runs["linear"].outputs["run"], "hidden": runs["hidden"].outputs["run"]}
    tasks.append(training_plots(dataset=data.outputs["dataset"], **models, epochs=epochs, lr=lr, hidden_units=hidden,
                                batch_size=batch_size, seed=seed, threads=threads))
    with dsl.If(dims == 2, name="dims-is-2"):
        tasks.append(scatter_plot(dataset=data.outputs["dataset"]))
        tasks.append(decision_regions(dataset=data.outputs["dataset"], **models))
    for task in tasks:
        task.set_container_image(image)


if __name__ == "__main__":
    sys.exit(pipeline_cli.cli(xor_study_pipeline, "xor_pipeline.py", __doc__.splitlines()[0]))
