"""Write a K-times larger copy of a dataset's train split (noise-injected copies), streaming.

    python data-pipeline/create_large_dataset.py --base DIR --multiplier K [--noise-std S] [--seed N]
                                                 [--out DIR] [--force]

The output defaults to `<base>-x<K>` beside the base dataset. See etl.scaling for what is written.
"""

import sys
from pathlib import Path

from etl.cli import Parser, run
from etl.scaling import DEFAULT_NOISE_STD, parse_multiplier, scale_dataset


def main(argv=None) -> None:
    parser = Parser(prog="create_large_dataset.py", description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the dataset to scale (multiplier 1)")
    parser.add_argument("--multiplier", type=parse_multiplier, required=True, help="K, a whole number >= 1")
    parser.add_argument("--noise-std", type=float, default=DEFAULT_NOISE_STD,
                        help=f"noise added to copies 1..K-1, in normalised units (default {DEFAULT_NOISE_STD})")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--out", type=Path, help="output folder (default <base>-x<K>)")
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    args = parser.parse_args(argv)
    base = args.base.resolve() if args.base.exists() else args.base
    out = args.out or base.parent / f"{base.name}-x{args.multiplier}"
    scale_dataset(base, out, args.multiplier, noise_std=args.noise_std, seed=args.seed, force=args.force)


if __name__ == "__main__":
    sys.exit(run(main))
