"""Process-group setup from the torchrun / Kubeflow environment, thread budgeting, and exact reductions.

`world_from_env` reads `RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT` and, when present, `LOCAL_RANK`
and `LOCAL_WORLD_SIZE` (torchrun sets them; a PyTorchJob pod started as plain `python -m trainer` does
not, so they default to 0 and 1). With no `WORLD_SIZE` (or 1) it is one process and no process group.
Otherwise `join` waits for the master's name to resolve, for its store to listen and for rendezvous, all
within `train.dist_timeout` seconds, and fails with one line naming the address if any never happens.
Backend: nccl on CUDA, gloo on CPU.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from trainer.errors import TrainerError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """Where this process sits: its global rank, the world size, and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int | None) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise TrainerError(f"{name} is not set but WORLD_SIZE is: set it (torchrun and PyTorchJob do)")
        return default
    try:
        return int(value)
    except ValueError:
        raise TrainerError(f"environment variable {name}={value!r} is not an integer") from None


def resolve_device(choice: str, local_rank: int) -> torch.device:
    """The device for `train.device` (auto|cpu|cuda); with CUDA, the GPU numbered `local_rank`."""
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise TrainerError("train.device=cuda but no CUDA device is visible: use train.device=cpu or auto")
    if local_rank >= torch.cuda.device_count():
        raise TrainerError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices are visible")
    return torch.device("cuda", local_rank)


def available_cores() -> int:
    """CPU cores this process may use: its affinity mask, capped by a cgroup v2 CPU quota if any."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def set_threads(requested: int, local_world_size: int) -> int:
    """Set torch's intra-op threads: `requested`, or (0) this machine's cores shared by its processes."""
    threads = requested or max(1, available_cores() // local_world_size)
    torch.set_num_threads(threads)
    return threads


def _wait_for_master(host: str, port: int, deadline: float, timeout_s: float, connect: bool) -> None:
    """Wait until `host` resolves and (if `connect`) accepts TCP connections on `port`, or fail in one line.

    Workers of a PyTorchJob start before the master's Service resolves or its store listens; polling here
    keeps the error a clear sentence instead of a C++ stack trace from the store client.
    """
    while True:
        try:
            socket.getaddrinfo(host, port)
            if connect:
                socket.create_connection((host, port), timeout=1.0).close()
            return
        except socket.gaierror:
            problem = f"master address {host} does not resolve"
        except OSError:
            problem = f"nothing listens at the master address {host}:{port}"
        if time.monotonic() >= deadline:
            raise TrainerError(
                f"{problem} after {timeout_s:g}s: check MASTER_ADDR/MASTER_PORT, that the master pod (rank 0) "
                "and its Service are up, or raise train.dist_timeout"
            )
        time.sleep(0.5)


def world_from_env(device_choice: str) -> World:
    """This process's place in the world the environment describes; joins nothing yet (see `join`)."""
    world_size = _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1:
        raise TrainerError(f"WORLD_SIZE={world_size} must be at least 1")
    device = resolve_device(device_choice, local_rank)
    if world_size == 1:
        return World(0, 1, 0, 1, device)
    rank = _env_int("RANK", None)
    if not 0 <= rank < world_size:
        raise TrainerError(f"RANK={rank} is outside a world of size {world_size}")
    if not os.environ.get("MASTER_ADDR"):
        raise TrainerError("MASTER_ADDR is not set but WORLD_SIZE is: set it to rank 0's host name")
    _env_int("MASTER_PORT", None)
    return World(rank, world_size, local_rank, _env_int("LOCAL_WORLD_SIZE", 1), device)


def _attempt_store(host: str, port: int, world: World, timeout: timedelta) -> dist.Store:
    """torchrun's store, with this restart attempt's own key space.

    torchrun (c10d rendezvous) keeps one store across restarts and init_process_group adds no per-attempt
    prefix (pytorch/pytorch#135712), so a restarted rank can read the previous attempt's gloo addresses and
    fail with "connection refused". Every worker of one torchrun attempt shares TORCHELASTIC_RESTART_COUNT.
    """
    store = dist.TCPStore(host, port, world.world_size, is_master=False, timeout=timeout)
    return dist.PrefixStore(f"trainer/attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def join(world: World, timeout_s: float) -> None:
    """Join the process group (nothing for one process), waiting up to `timeout_s` for the master."""
    if not world.distributed:
        return
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    deadline = time.monotonic() + timeout_s
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    _wait_for_master(host, port, deadline, timeout_s, connect=agent_store or not world.is_main)
    if world.device.type == "cuda":
        torch.cuda.set_device(world.device)
    backend = "nccl" if world.device.type == "cuda" else "gloo"
    try:
        timeout = timedelta(seconds=max(1.0, deadline - time.monotonic()))
        if agent_store:
            dist.init_process_group(backend, store=_attempt_store(host, port, world, timeout), rank=world.rank,
                                    world_size=world.world_size, timeout=timeout)
        else:
            dist.init_process_group(backend, init_method="env://", rank=world.rank, world_size=world.world_size,
                                    timeout=timeout)
    except (RuntimeError, ValueError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrainerError(
            f"rank {world.rank} could not join the process group at {host}:{port} within {timeout_s:g}s "
            f"({reason}): check MASTER_ADDR/MASTER_PORT and that every rank is running, or raise "
            "train.dist_timeout"
        ) from None


def close_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def sum_across(world: World, sums: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of `sums` over all ranks (in place), so means are sums over counts, not means of means."""
    if world.distributed:
        dist.all_reduce(sums)
    return sums


def gather(world: World, value: object) -> list:
    """`value` from every rank, in rank order (a picklable object per rank)."""
    if not world.distributed:
        return [value]
    values = [None] * world.world_size
    dist.all_gather_object(values, value)
    return values


def on_main(world: World, action: Callable[[], T]) -> T:
    """Run `action` on rank 0 alone and return its result on every rank; if it raised TrainerError, every
    rank raises it, so no rank is left waiting in a collective for one that failed."""
    result = error = None
    if world.is_main:
        try:
            result = action()
        except TrainerError as exc:
            error = str(exc)
    if world.distributed:
        box = [(result, error)]
        dist.broadcast_object_list(box, src=0)
        result, error = box[0]
    if error:
        raise TrainerError(error)
    return result


def wrap(world: World, model: nn.Module) -> nn.Module:
    """The model as DDP averages its gradients across ranks, or itself for one process."""
    if not world.distributed:
        return model
    return DistributedDataParallel(model, device_ids=[world.device] if world.device.type == "cuda" else None)
