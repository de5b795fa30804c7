"""Distributed full training (torchrun) in one place: joining and leaving the process group and
asking where this process stands. The CLI calls :func:`init_distributed` before training and
:func:`shutdown_distributed` after; ``core.fulltrain`` asks :func:`current`. Imports torch only
when launched by torchrun (WORLD_SIZE > 1) or when a group is running.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    device: str  # the device this process trains on: "cuda" (one GPU per process) or "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistInfo:
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL with one GPU per process,
    gloo on CPUs, each CPU process its share of the cores). Returns this process's rank, the world
    size and the device to train on; outside torchrun: rank 0 of 1 and ``device`` unchanged."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, device)
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), world, "cuda" if use_cuda else "cpu")


def current() -> tuple[int, int]:
    """(rank, world size) of the running process group, (0, 1) without one."""
    import sys

    if "torch.distributed" not in sys.modules:
        return 0, 1
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shutdown_distributed() -> None:
    import sys

    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
