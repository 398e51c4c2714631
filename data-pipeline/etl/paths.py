"""Where the ETL keeps its files: the shipped snapshot, cached downloads and built datasets.

The data folder is `data-pipeline/data/` beside this package (the project is installed editable), or
`$ETL_DATA_DIR` when set (a container can point it at a mounted volume).
"""

import os
from pathlib import Path

DATA_DIR = Path(os.environ.get("ETL_DATA_DIR") or Path(__file__).resolve().parents[1] / "data")
RAW_DIR = DATA_DIR / "raw"
PROCESSED_DIR = DATA_DIR / "processed"
SNAPSHOT_DIR = Path(__file__).resolve().parents[1] / "data" / "raw"
SNAPSHOT_FILE = SNAPSHOT_DIR / "sp500_1999_2018.csv.gz"
SNAPSHOT_TICKER = "^GSPC"
