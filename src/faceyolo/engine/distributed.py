"""Process-group set-up for `torchrun` training: ranks, devices, DDP wrapping (SPEC §4.8)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from faceyolo.devices import torch_device


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run: rank 0 of 1 when not launched by torchrun."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Return True on the process that logs, validates and saves."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Return True when several processes train together."""
        return self.world_size > 1


def dist_info_from_env() -> DistInfo:
    """Return the rank, local rank and world size torchrun put in the environment (defaults: one process)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
    )


def select_device(device: str, info: DistInfo) -> torch.device:
    """Return the torch device for this process from a `--device` string ('', 'cpu', '0', 'cuda:1', '0,1').

    '' picks CUDA when available. Under torchrun each process takes the GPU of its local rank.
    """
    resolved = torch_device(device)
    if info.distributed and resolved.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return resolved


def init_process_group(info: DistInfo, device: torch.device) -> None:
    """Join the torchrun process group (NCCL on CUDA, gloo on CPU); a no-op for one process."""
    if not info.distributed or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def wrap_model(model: nn.Module, info: DistInfo, device: torch.device, sync_bn: bool) -> nn.Module:
    """Return `model` wrapped in DistributedDataParallel (with SyncBatchNorm if asked) when distributed.

    SyncBatchNorm needs GPUs; on CPU (gloo) BatchNorm stays per process.
    """
    if not info.distributed:
        return model
    if sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if device.type == "cuda":
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    return nn.parallel.DistributedDataParallel(model)


def barrier(info: DistInfo) -> None:
    """Wait for every process (no-op when not distributed)."""
    if info.distributed and dist.is_initialized():
        dist.barrier()


def broadcast_from_main(value, info: DistInfo):
    """Return rank 0's `value` on every process (e.g. the run folder rank 0 created).

    As for gather_to_main, torch.distributed pickles `value` between the run's own processes only.
    """
    if not info.distributed:
        return value
    holder = [value if info.is_main else None]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_to_main(value, info: DistInfo) -> list:
    """Return every process's `value` in rank order on rank 0 and [] elsewhere; [value] when not distributed.

    torch.distributed pickles `value` between the run's own processes; nothing read from a file is unpickled.
    """
    if not info.distributed:
        return [value]
    gathered = [None] * info.world_size if info.is_main else None
    dist.gather_object(value, gathered, dst=0)
    return gathered or []


def cleanup(info: DistInfo) -> None:
    """Leave the process group (no-op when not distributed)."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


class ShardedDataset:
    """One process's share of a dataset indexed by `(index, epoch)`: a per-epoch shuffle, split by rank.

    Every process draws the same permutation of all images from (seed, epoch), pads it by wrapping to a
    multiple of the world size, and keeps every world_size-th entry from its rank on, so the processes
    see disjoint images and the same number of batches.
    """

    def __init__(self, dataset, info: DistInfo, seed: int = 0):
        self.dataset, self.rank, self.world_size, self.seed = dataset, info.rank, info.world_size, seed
        self.size = -(-len(dataset) // info.world_size)
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, permutation) of the last epoch seen

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, item: tuple[int, int]):
        index, epoch = item
        if self._order is None or self._order[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._order = (epoch, torch.randperm(len(self.dataset), generator=generator))
        position = (self.rank + index * self.world_size) % len(self.dataset)
        return self.dataset[(int(self._order[1][position]), epoch)]
