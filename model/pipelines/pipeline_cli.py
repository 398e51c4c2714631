"""The command line both pipeline scripts share: `--compile FILE` and `--run-local DIR`.

    python model/pipelines/<name>_pipeline.py --compile FILE                  # the pipeline YAML (KFP v2 IR)
    python model/pipelines/<name>_pipeline.py --run-local DIR [--arg NAME=VALUE ...]

`--run-local` runs the pipeline on this machine with the KFP local runner (`kfp.local.SubprocessRunner`, no
virtual environment: each component runs as a subprocess of this Python, which has the project installed)
and keeps every task's outputs under DIR. `--arg` sets a pipeline parameter (repeatable), converted to the
parameter's type. Importing this module first ends the script with one line (exit status 2) when the
`pipelines` extra (kfp) is not installed.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from pathlib import Path

from etl.cli import Parser, run
from etl.errors import UserError

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
INSTALL_HINT = "pip install -e '.[pipelines]' in an environment of its own (see model/pipelines/README.md)"

if importlib.util.find_spec("kfp") is None:
    print(f"error: the KFP SDK (kfp) is not installed: {INSTALL_HINT}", file=sys.stderr)
    sys.exit(2)

from kfp import compiler, local  # noqa: E402


def parameters(pipeline) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(pipeline.pipeline_func).parameters)


def parse_arguments(pipeline, pairs: list[str]) -> dict:
    """`NAME=VALUE` strings to pipeline arguments of the parameters' types."""
    known = parameters(pipeline)
    arguments = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in known:
            raise UserError(f"--arg {pair!r}: expected NAME=VALUE with NAME one of {', '.join(known)}")
        kind = known[name].annotation
        try:
            arguments[name] = kind(value)
        except ValueError:
            raise UserError(f"--arg {pair!r}: {name} must be {kind.__name__}") from None
    return arguments


def compile_to(pipeline, path: Path) -> Path:
    """Write the pipeline's YAML to `path` atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.stem}.yaml")
    try:
        compiler.Compiler().compile(pipeline, package_path=str(temporary))
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def run_local(pipeline, root: Path, arguments: dict):
    """Run the pipeline with kfp.local's SubprocessRunner; outputs go under `root`."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXPERIMENTS), os.environ.get("PYTHONPATH")]))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    try:
        return pipeline(**arguments)
    except RuntimeError as exc:  # kfp.local's way of saying a task failed; the task's own log is above
        raise UserError(f"the local run failed: {str(exc).splitlines()[0]}") from None


def main(pipeline, prog: str, description: str, argv=None) -> None:
    parser = Parser(prog=prog, description=description)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--compile", type=Path, metavar="FILE", help="write the pipeline YAML to FILE")
    action.add_argument("--run-local", type=Path, metavar="DIR",
                        help="run the pipeline here (kfp.local subprocesses), outputs under DIR")
    parser.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                        help="a pipeline parameter for --run-local (repeatable): "
                             + ", ".join(f"{n}={p.default}" for n, p in parameters(pipeline).items()))
    args = parser.parse_args(argv)
    arguments = parse_arguments(pipeline, args.arg)
    if args.compile:
        if arguments:
            raise UserError("--arg applies to --run-local; a compiled pipeline takes its arguments when it is run")
        print(f"compiled {compile_to(pipeline, args.compile)}")
        return
    run_local(pipeline, args.run_local, arguments)
    print(f"outputs under {args.run_local}")


def cli(pipeline, prog: str, description: str, argv=None) -> int:
    """`main` for `pipeline`, with bad input as one line and exit status 2."""
    return run(lambda args: main(pipeline, prog, description, args), argv)
