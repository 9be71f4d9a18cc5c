"""DDP set-up and teardown for runs launched by ``torchrun``.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (and MASTER_ADDR/PORT); a plain ``python``
launch has none of them and runs single-process. The backend is NCCL when the run uses CUDA
and gloo on CPU. Only rank 0 logs and writes checkpoints.

Restarts (``torchrun --max-restarts N``): when a worker dies, torchrun stops the others and
starts a new round of every worker, with TORCHELASTIC_RESTART_COUNT one higher. The agent's
key-value store (MASTER_ADDR:MASTER_PORT) lives on across rounds, and torch's default
``env://`` set-up (torch 2.14.1) uses it without a per-round prefix: the new round's ranks then
read the previous round's gloo addresses from it and fail with "Gloo connectFullMesh failed ...
Connection refused" (NCCL's unique id is exchanged the same way, pytorch/pytorch#167288). So
`setup` builds the process group on its own store: a client of the agent's store under the
prefix ``quadfire/round<TORCHELASTIC_RESTART_COUNT>/``, which every round sees empty.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from ..errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, "
                          f"got {value!r}") from None


def pick_device(spec: str, local_rank: int) -> torch.device:
    """"auto" -> cuda:LOCAL_RANK if CUDA is available, else cpu; anything else as given."""
    if spec == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available")
    return device


def setup(device: str = "auto") -> DistInfo:
    """Join the process group if launched by torchrun with WORLD_SIZE > 1."""
    world = _env_int("WORLD_SIZE", 1)
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    dev = pick_device(device, local)
    if world > 1:
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                    store=round_store(rank, world), rank=rank,
                                    world_size=world)
    return DistInfo(rank, local, world, dev)


STORE_TIMEOUT = timedelta(minutes=30)  # torch's default for the process group


def round_store(rank: int, world: int) -> dist.Store:
    """The key-value store of this restart round (module docstring): torchrun's agent serves
    one at MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True); launched otherwise
    with the same variables, rank 0 serves it, as ``env://`` would."""
    addr = os.environ.get("MASTER_ADDR")
    if addr is None or "MASTER_PORT" not in os.environ:
        raise ConfigError(f"WORLD_SIZE={world} but MASTER_ADDR/MASTER_PORT are not set; "
                          f"launch distributed runs with torchrun")
    port = _env_int("MASTER_PORT", 0)
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(addr, port, world_size=world, is_master=not agent and rank == 0,
                          timeout=STORE_TIMEOUT, multi_tenant=not agent)
    restart = _env_int("TORCHELASTIC_RESTART_COUNT", 0)
    return dist.PrefixStore(f"quadfire/round{restart}", store)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum Python numbers over ranks (a no-op single-process); float64 so counts stay exact."""
    if not info.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_object(obj, info: DistInfo):
    """Rank 0's `obj` (any picklable value) on every rank; a no-op single-process."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
