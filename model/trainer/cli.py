"""Command line: `python -m trainer --config FILE [--set section.key=value ...] [--resume]`.

Bad input (config, dataset, environment) prints one line `error: ...` to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from etl.cli import Parser
from etl.errors import UserError
from trainer.config import load_config
from trainer.run import train


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(
        prog="python -m trainer",
        description="Train an MLP or LSTM on a windowed dataset: one process, torchrun, or a PyTorchJob pod.",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML config (sections data, model, train, eval, io)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config key (repeatable), e.g. --set train.epochs=5")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run folder's checkpoint (a torchrun restart does this by itself)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        train(load_config(args.config, args.set), resume=args.resume)
    except UserError as exc:  # TrainerError, EtlError, a bad option
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0
