"""Write a dataset in format v1, streaming, so that it appears only when complete.

`DatasetWriter` buffers rows per split until a shard is full, writes the shard as an uncompressed
`.npz` while hashing it (sha256, no second read), and keeps at most one shard per split in memory. Everything
goes to a hidden temporary folder beside the output; `finish()` writes `index.json` last and renames the
folder into place. Any error (disk full included) or interruption removes the temporary folder, and a
temporary folder left by a killed process is removed by the next writer of the same output.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

from etl.errors import EtlError
from etl.reader import FORMAT_VERSION, INDEX_FILE, SPLITS

DEFAULT_SHARD_ROWS = 8192  # about 3.3 MB at window 20 x 5 features: the default train split is one shard


class _HashingFile:
    """A write-only, non-seekable file that hashes what passes through it.

    Because it cannot seek, zipfile writes the archive in one forward pass (sizes in data descriptors),
    so the hash of the bytes written is the hash of the file.
    """

    def __init__(self, file):
        self.file = file
        self.digest = hashlib.sha256()
        self.position = 0

    def write(self, data) -> int:
        self.file.write(data)
        self.digest.update(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def read(self, *_):  # numpy.savez takes objects with `read` as files; zipfile never reads in "w" mode
        raise io.UnsupportedOperation("write-only")

    def flush(self) -> None:
        self.file.flush()


def _temporary_folder(out: Path) -> Path:
    return out.parent / f".{out.name}.tmp-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(out: Path) -> None:
    """Remove the temporary (`.tmp-PID`) and retired (`.old-PID`) folders of `out` left behind by writers
    that were killed."""
    for folder in [*out.parent.glob(f".{out.name}.tmp-*"), *out.parent.glob(f".{out.name}.old-*")]:
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def check_output(out: Path, force: bool) -> None:
    """Refuse an existing output unless `force`."""
    if out.exists() and not force:
        raise EtlError(f"output {out} already exists: pass --force to replace it, or choose another --out")


class DatasetWriter:
    """Context manager that writes shards of `out` and publishes it on `finish()`."""

    def __init__(self, out: Path, *, force: bool = False, shard_rows: int = DEFAULT_SHARD_ROWS):
        if shard_rows < 1:
            raise EtlError(f"--shard-rows must be at least 1, got {shard_rows}")
        self.out = Path(out)
        self.force = force
        self.shard_rows = shard_rows
        self.temporary = _temporary_folder(self.out)
        self.pending: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {split: [] for split in SPLITS}
        self.pending_rows = dict.fromkeys(SPLITS, 0)
        self.shards: dict[str, list[dict]] = {split: [] for split in SPLITS}
        self.bytes_written = 0

    def __enter__(self) -> DatasetWriter:
        check_output(self.out, self.force)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.out)
        self.temporary.mkdir()
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if self.temporary.exists():
            shutil.rmtree(self.temporary, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise EtlError(f"disk full while writing {self.out}: free some space and run again") from None
        return False

    def add(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        """Append rows to `split`; full shards are written at once."""
        if len(x) == 0:
            return
        self.pending[split].append((x, y))
        self.pending_rows[split] += len(x)
        while self.pending_rows[split] >= self.shard_rows:
            self._write_pending(split, self.shard_rows)

    def _write_pending(self, split: str, rows: int) -> None:
        parts = self.pending[split]
        x = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        y = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        self.write_shard(split, x[:rows], y[:rows])
        rest = len(x) - rows
        self.pending[split] = [(x[rows:], y[rows:])] if rest else []
        self.pending_rows[split] = rest

    def write_shard(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        """Write one shard of `split` now, as the next file of that split."""
        name = f"{split}-{len(self.shards[split]):05d}.npz"
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.ascontiguousarray(y, dtype=np.float32)
        with open(self.temporary / name, "wb") as raw:
            hashing = _HashingFile(raw)
            np.savez(hashing, x=x, y=y)
        self.shards[split].append(
            {"file": name, "rows": len(x), "bytes": hashing.position, "sha256": hashing.digest.hexdigest()}
        )
        self.bytes_written += hashing.position

    def copy_shard(self, split: str, source: Path, entry: dict) -> None:
        """Copy an already-verified shard file from another dataset as the next file of `split`."""
        name = f"{split}-{len(self.shards[split]):05d}.npz"
        shutil.copyfile(source, self.temporary / name)
        self.shards[split].append({**entry, "file": name})
        self.bytes_written += entry["bytes"]

    def finish(self, fields: dict) -> dict:
        """Write what is left, then `index.json` (with `fields`), and rename the folder into place."""
        for split in SPLITS:
            if self.pending_rows[split]:
                self._write_pending(split, self.pending_rows[split])
        index = {"format_version": FORMAT_VERSION, **fields, "splits": {}}
        for split in SPLITS:
            index["splits"][split] = {
                "rows": sum(s["rows"] for s in self.shards[split]),
                "shards": self.shards[split],
            }
        with open(self.temporary / INDEX_FILE, "w") as f:
            json.dump(index, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        self._publish()
        return index

    def _publish(self) -> None:
        if self.out.exists():
            check_output(self.out, self.force)
            retired = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.rename(self.out, retired)
            os.rename(self.temporary, self.out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(self.temporary, self.out)
