"""Run a command under a memory cap and measure the peak RSS of its whole process tree.

The cap is enforced by a memory cgroup where this machine lets us make one (cgroup v2 `memory.max`, or
v1 `memory.limit_in_bytes`, under the cgroup this process is in): the kernel then stops the tree when
it needs more than the cap. Elsewhere a psutil watchdog stops the tree when the sum of its RSS passes
the cap. Either way the outcome says `oom_at_cap`. Peak RSS is sampled with psutil over the root
process and all its descendants (every rank under torchrun), every 20 ms.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.02
CGROUP_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory"))


@dataclass
class Outcome:
    status: str  # ok | failed | oom_at_cap | timeout
    returncode: int | None
    seconds: float
    peak_rss_mb: float
    enforced_by: str | None  # cgroup-v2 | cgroup-v1 | watchdog | None (no cap)
    output: str  # the last lines of stdout and stderr together


class MemoryCgroup:
    """A child memory cgroup with a limit; `None` from `create` where the machine does not allow one."""

    def __init__(self, path: Path, version: str):
        self.path, self.version = path, version

    @classmethod
    def create(cls, cap_bytes: int) -> MemoryCgroup | None:
        name = f"capped-run-{os.getpid()}-{time.monotonic_ns()}"
        for root, version, limit_file in ((CGROUP_ROOTS[0], "cgroup-v2", "memory.max"),
                                          (CGROUP_ROOTS[1], "cgroup-v1", "memory.limit_in_bytes")):
            own = cls._own_path(version)
            if own is None:
                continue
            path = root / own.lstrip("/") / name
            try:
                path.mkdir()
                (path / limit_file).write_text(str(cap_bytes))
                if version == "cgroup-v1" and (path / "memory.memsw.limit_in_bytes").exists():
                    (path / "memory.memsw.limit_in_bytes").write_text(str(cap_bytes))
                return cls(path, version)
            except OSError:
                if path.exists():
                    path.rmdir()
        return None

    @staticmethod
    def _own_path(version: str) -> str | None:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            number, controllers, path = line.split(":", 2)
            if version == "cgroup-v2" and number == "0" and controllers == "":
                return path if (CGROUP_ROOTS[0] / "cgroup.controllers").exists() else None
            if version == "cgroup-v1" and "memory" in controllers.split(","):
                return path
        return None

    def enter(self) -> None:
        """Move the calling process into the cgroup (run in the child before exec)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def oom_killed(self) -> bool:
        if self.version == "cgroup-v2":
            events = (self.path / "memory.events").read_text()
            return any(line.split()[0] == "oom_kill" and int(line.split()[1]) > 0 for line in events.splitlines())
        control = (self.path / "memory.oom_control").read_text().split()
        if "oom_kill" in control:
            return int(control[control.index("oom_kill") + 1]) > 0
        return int((self.path / "memory.failcnt").read_text()) > 0

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.05)


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_capped(command: list[str], *, cap_bytes: int | None = None, env: dict | None = None,
               cwd: str | Path | None = None, timeout: float | None = None, use_cgroup: bool = True) -> Outcome:
    """Run `command` to the end (or the cap, or the timeout) and report how it went."""
    cgroup = MemoryCgroup.create(cap_bytes) if cap_bytes and use_cgroup else None
    enforced_by = cgroup.version if cgroup else ("watchdog" if cap_bytes else None)
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "output.log"
        with open(log, "wb") as sink:
            started = time.perf_counter()
            proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                    start_new_session=True, preexec_fn=cgroup.enter if cgroup else None)
            root = psutil.Process(proc.pid)
            peak, stopped = 0, None
            while proc.poll() is None:
                peak = max(peak, _tree_rss(root))
                if cap_bytes and not cgroup and peak > cap_bytes:
                    stopped = "oom_at_cap"
                elif timeout and time.perf_counter() - started > timeout:
                    stopped = "timeout"
                if stopped:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    break
                time.sleep(SAMPLE_SECONDS)
            seconds = time.perf_counter() - started
            _kill_leftovers(proc.pid)
        output = _tail(log)
    if cgroup:
        if proc.returncode != 0 and cgroup.oom_killed():
            stopped = "oom_at_cap"
        cgroup.remove()
    status = stopped or ("ok" if proc.returncode == 0 else "failed")
    return Outcome(status, proc.returncode, round(seconds, 3), round(peak / 2**20, 1), enforced_by, output)


def _kill_leftovers(session: int) -> None:
    """Make sure no process of the run's session outlives it (a rank whose parent was killed)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(session, signal.SIGKILL)
