"""ETL for S&P 500 daily prices: sources, features, time splits, `.npz` shards, K-fold scaling.

The trainer imports the reader from here: `open_dataset(path)` returns a `Dataset` that verifies shards
and hands each rank of a world its own part (see `etl.reader`).
"""

from etl.errors import EtlError
from etl.reader import Dataset, Piece, open_dataset

__all__ = ["Dataset", "EtlError", "Piece", "open_dataset"]
