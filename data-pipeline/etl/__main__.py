"""`python -m etl`: build, verify and describe datasets (see `python -m etl --help`)."""

import sys
from pathlib import Path

from etl.build import build_dataset, describe
from etl.cli import Parser, run
from etl.features import TARGET_TASKS
from etl.paths import PROCESSED_DIR, SNAPSHOT_TICKER
from etl.reader import open_dataset
from etl.sources import SOURCES, load_prices, ticker_slug
from etl.writer import DEFAULT_SHARD_ROWS, check_output
from etl.xor import build_xor

DEFAULT_TARGETS = ("volatility", "direction")


def make_parser() -> Parser:
    parser = Parser(prog="python -m etl", description="S&P 500 daily prices to verified .npz shards.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build", help="build a dataset from prices",
        description="Build a windowed dataset. With neither --target nor --out, builds the two default "
        "datasets (volatility regression and direction classification) under data-pipeline/data/processed/.",
    )
    build.add_argument("--source", default="auto", choices=SOURCES,
                       help="auto: yfinance, else the cached download, else the shipped snapshot (default)")
    build.add_argument("--csv", type=Path, help="a Yahoo-style daily OHLCV CSV (.csv or .csv.gz)")
    build.add_argument("--ticker", default=SNAPSHOT_TICKER, help="ticker symbol (default ^GSPC)")
    build.add_argument("--start", help="first date, YYYY-MM-DD")
    build.add_argument("--end", help="last date, YYYY-MM-DD")
    build.add_argument("--target", choices=tuple(TARGET_TASKS), help="volatility (default), return, direction")
    build.add_argument("--window", type=int, default=20, help="days per sample (default 20)")
    build.add_argument("--horizon", type=int, default=1, help="days ahead the target looks (default 1)")
    build.add_argument("--shard-rows", type=int, default=DEFAULT_SHARD_ROWS, help="rows per shard")
    build.add_argument("--out", type=Path, help="dataset folder (default data-pipeline/data/processed/TICKER-TARGET)")
    build.add_argument("--force", action="store_true", help="replace an existing dataset")
    verify = commands.add_parser("verify", help="check a dataset's shards; exit 2 naming a bad one")
    verify.add_argument("dataset", type=Path)
    verify.add_argument("--checksums", action="store_true", help="also check every shard's sha256")
    xor = commands.add_parser("xor", help="generate the XOR (parity) classification dataset",
                              description="Points uniform in [0,1]^d, label = parity of the rounded coordinates.")
    xor.add_argument("--train", type=int, default=10_000, help="training points (default 10000)")
    xor.add_argument("--validation", type=int, default=1_000, help="validation points (default 1000)")
    xor.add_argument("--test", type=int, default=1_000, help="test points (default 1000)")
    xor.add_argument("--dims", type=int, default=2, help="dimensions d >= 1 (default 2)")
    xor.add_argument("--seed", type=int, default=0)
    xor.add_argument("--out", type=Path, help="dataset folder (default data-pipeline/data/processed/xor-d<dims>)")
    xor.add_argument("--force", action="store_true", help="replace an existing dataset")
    info = commands.add_parser("info", help="splits, rows, bytes, source and normalisation of a dataset")
    info.add_argument("dataset", type=Path)
    return parser


def command_build(args) -> None:
    targets = [args.target] if args.target else (["volatility"] if args.out else list(DEFAULT_TARGETS))
    outputs = {t: args.out or PROCESSED_DIR / f"{ticker_slug(args.ticker)}-{t}" for t in targets}
    for out in outputs.values():
        check_output(out, args.force)
    prices, source = load_prices(args.source, ticker=args.ticker, csv=args.csv, start=args.start, end=args.end)
    if source["dropped_rows"]:
        print(f"dropped {source['dropped_rows']} rows with null or non-numeric cells")
    print(f"prices: {source['provider']} {source['ticker']} {source['first_date']}..{source['last_date']} "
          f"({source['rows']} days)")
    for target, out in outputs.items():
        index = build_dataset(prices, source, out, target=target, window=args.window, horizon=args.horizon,
                              shard_rows=args.shard_rows, force=args.force)
        print(f"built {out}\n{describe(index)}")


def command_xor(args) -> None:
    out = args.out or PROCESSED_DIR / f"xor-d{args.dims}"
    index = build_xor(out, train=args.train, validation=args.validation, test=args.test, dims=args.dims,
                      seed=args.seed, force=args.force)
    print(f"built {out}\n{describe(index)}")


def command_verify(args) -> None:
    dataset = open_dataset(args.dataset)
    dataset.verify(checksums=args.checksums)
    shards = sum(len(dataset.shards(s)) for s in ("train", "validation", "test"))
    print(f"ok: {args.dataset}: {shards} shards sound{' (sha256 checked)' if args.checksums else ''}")


def command_info(args) -> None:
    dataset = open_dataset(args.dataset)
    print(f"{args.dataset}\n{describe(dataset.index)}")
    norm = dataset.index["normalization"]
    for name, mean, std in zip(dataset.feature_names, norm["mean"], norm["std"], strict=True):
        print(f"  {name:<18} mean={mean:+.6f} std={std:.6f}")


def main(argv=None) -> None:
    args = make_parser().parse_args(argv)
    {"build": command_build, "xor": command_xor, "verify": command_verify, "info": command_info}[args.command](args)


if __name__ == "__main__":
    sys.exit(run(main))
