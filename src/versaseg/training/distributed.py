"""DistributedDataParallel set-up for ``torchrun``: gloo on CPU, nccl on GPU. Without torchrun, a single process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from versaseg.errors import InputError
from versaseg.io.run_dir import check_run_dir, resolve_device


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group that torchrun describes in the environment (no-op for one process)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """Rank 0's boolean, on every rank."""
    if not info.enabled:
        return flag
    import torch.distributed as dist

    tensor = torch.tensor([int(flag)])
    dist.broadcast(tensor, 0)
    return bool(tensor.item())


def cleanup(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


@contextmanager
def distributed_run(run_dir: str | Path, resume: bool, overwrite: bool,
                    device: str | torch.device) -> Iterator[tuple[torch.device, DistInfo]]:
    """The frame of a training command: resolve ``--device`` (per local rank), join torchrun's process group, have
    rank 0 check the run directory (every rank stops with InputError when it is refused), and leave the group at
    the end. Yields (device, DistInfo). Nothing is written; the run calls ``prepare_run_dir`` when its input is
    checked."""
    torch_device = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    info = init_distributed(torch_device)
    try:
        if info.is_main:
            try:
                check_run_dir(run_dir, resume, overwrite)
            except InputError:
                broadcast_flag(False, info)
                raise
        if not broadcast_flag(True, info):
            raise InputError("rank 0 rejected the run directory", run_dir)
        yield torch_device, info
    finally:
        cleanup(info)
