"""One process or many (torchrun): the few collective moves the training step needs.

Under torchrun every rank scores its own batch, then all ranks all-gather the
features so each holds the global batch: the strategy then picks from the same
global view on every rank, and its per-sample state stays identical everywhere.
In a single process every function here is the identity.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    gpu: int = 0          # this process's CUDA device: more processes than GPUs share them in turn
    owns_group: bool = False   # init set the process group up, so shutdown tears it down

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str) -> World:
    """Join the process group torchrun set up (gloo on CPU, nccl on GPU), if there is one; a group
    the caller set up already is used as it is and left to the caller to tear down."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return World()
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    gpu = local_rank % torch.cuda.device_count() if device.startswith("cuda") else 0
    if device.startswith("cuda"):
        torch.cuda.set_device(gpu)
    return World(dist.get_rank(), dist.get_world_size(), local_rank, gpu, owns_group)


def barrier(world: World) -> None:
    if world.enabled:
        dist.barrier()


def all_sizes(world: World, n: int, device) -> list[int]:
    if not world.enabled:
        return [n]
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world.world_size)]
    dist.all_gather(sizes, torch.tensor([n], device=device))
    return [int(s) for s in sizes]


def gather_rows(world: World, tensor: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Every rank's rows, in rank order; ranks may hold different numbers (padding in transit)."""
    if not world.enabled:
        return tensor
    longest = max(sizes)
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[:tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


def moves(counts: list[int], share: int) -> list[tuple[int, int, int, int]]:
    """Rows to move so that rank r ends with rows [r * share, (r + 1) * share) of the ranks' rows
    in rank order (rank r holding counts[r] of them): (source, destination, first row in the
    source's rows, number), for source != destination only."""
    plan, start = [], 0
    for source, n in enumerate(counts):
        row = start
        while row < start + n:   # one block per destination whose share overlaps this source's rows
            destination = row // share
            end = min(start + n, (destination + 1) * share)
            if destination != source:
                plan.append((source, destination, row - start, end - row))
            row = end
        start += n
    return plan


def share_rows(world: World, tensor: torch.Tensor, counts: list[int], share: int) -> torch.Tensor:
    """This rank's SHARE rows of all ranks' rows in rank order, each rank holding counts[r] of them
    (TENSOR: this rank's): only the rows that change rank travel, point to point."""
    if not world.enabled:
        return tensor[:share]
    first = sum(counts[:world.rank])
    keep_from, keep_to = max(world.rank * share - first, 0), min((world.rank + 1) * share - first, counts[world.rank])
    pieces, operations = [], []
    for source, destination, row, n in moves(counts, share):
        if source == world.rank:
            operations.append(dist.P2POp(dist.isend, tensor[row:row + n].contiguous(), destination))
        elif destination == world.rank:
            received = torch.empty((n, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
            operations.append(dist.P2POp(dist.irecv, received, source))
            pieces.append((sum(counts[:source]) + row, received))
    if keep_to > keep_from:
        pieces.append((first + keep_from, tensor[keep_from:keep_to]))
    for request in dist.batch_isend_irecv(operations) if operations else []:
        request.wait()
    return torch.cat([piece for _, piece in sorted(pieces, key=lambda p: p[0])])


@dataclass(frozen=True)
class GlobalBatch:
    """A step's batch over the ranks, the bookkeeping every collective of the step needs: each
    rank's number of samples and all their ids, in rank order, and this rank's rows of them."""
    world: World
    sizes: list[int]
    ids: torch.Tensor    # every rank's sample ids, in rank order (CPU)

    @classmethod
    def of(cls, world: World, ids: torch.Tensor, device) -> "GlobalBatch":
        sizes = all_sizes(world, len(ids), device)
        return cls(world, sizes, gather_rows(world, ids.to(device), sizes).cpu() if world.enabled else ids)

    def rank_rows(self, rank: int) -> slice:
        return slice(sum(self.sizes[:rank]), sum(self.sizes[:rank + 1]))

    @property
    def rows(self) -> slice:
        """This rank's rows of the global batch."""
        return self.rank_rows(self.world.rank)

    def share_out(self, selected: torch.Tensor) -> "Share":
        """The SELECTED rows (a mask over the global batch) shared out equally over the ranks, in
        global order: open_clip's ClipLoss gathers equal-sized batches, so the picks are cut to a
        multiple of the world size (the last in global order wait for another visit)."""
        picks = selected.nonzero().squeeze(1)
        trained = torch.zeros_like(selected)
        trained[picks[:len(picks) - len(picks) % self.world.world_size]] = True
        counts = [int(trained[self.rank_rows(r)].sum()) for r in range(self.world.world_size)]
        return Share(self.world, trained, trained[self.rows].nonzero().squeeze(1), counts,
                     int(trained.sum()) // self.world.world_size)


@dataclass(frozen=True)
class Share:
    """The trained rows of a global batch and this rank's share of them."""
    world: World
    trained: torch.Tensor    # bool over the global batch
    local: torch.Tensor      # this rank's trained rows, as indices into its own batch
    counts: list[int]        # trained rows each rank holds
    size: int                # rows each rank trains on

    @property
    def part(self) -> slice:
        """This rank's rows of the trained rows in global order."""
        return slice(self.world.rank * self.size, (self.world.rank + 1) * self.size)

    def rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """This rank's share of the trained rows of TENSOR (this rank's batch)."""
        return share_rows(self.world, tensor[self.local.to(tensor.device)], self.counts, self.size)


def largest(world: World, values: list[int], device) -> list[int]:
    """Each value's largest across the ranks, in one all-reduce."""
    if not world.enabled:
        return list(values)
    t = torch.tensor(values, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def any_rank(world: World, flag: bool, device) -> bool:
    return bool(largest(world, [int(flag)], device)[0])


def shutdown(world: World) -> None:
    if world.owns_group and dist.is_initialized():
        dist.destroy_process_group()
