"""Where a run stands: the one record of the training loop's position, saved in every
checkpoint and read back on resume.

(epoch, step) always means the same thing: `step` training steps of epoch `epoch` are done (0:
the epoch has not started). An epoch that ends moves the position to (epoch + 1, 0); a stop or
a mid-epoch checkpoint saves (epoch, step) with the learning rate at the epoch's first step and
the loss and accuracy sums of the steps done, so the resumed epoch's metrics row is the one an
uninterrupted run writes.
"""
from __future__ import annotations

import dataclasses

from ..errors import CheckpointError


@dataclasses.dataclass
class Position:
    epoch: int = 0
    step: int = 0
    best: float = 0.0             # best test accuracy (%) so far
    skipped: int = 0              # steps not applied (non-finite), over the whole run
    lr: float | None = None       # the learning rate at the first step of `epoch`
    # (loss x samples, correct, samples) of the steps done in `epoch`: this rank's own while
    # training, summed over ranks in a checkpoint (rank 0 carries them on resume)
    sums: tuple[float, float, float] = (0.0, 0.0, 0.0)
    stop: str | None = None       # why the loop ended early: "signal" or "worker"

    def count(self, applied: bool, loss: float = 0.0, correct: float = 0.0,
              samples: int = 0) -> None:
        """One training step done: applied (its loss, correct predictions and samples) or
        skipped (non-finite)."""
        self.step += 1
        if applied:
            total, right, n = self.sums
            self.sums = (total + loss * samples, right + correct, n + samples)
        else:
            self.skipped += 1

    def next_epoch(self, accuracy: float) -> None:
        """The epoch was trained and evaluated (test accuracy `accuracy`)."""
        self.epoch, self.step, self.lr, self.sums = self.epoch + 1, 0, None, (0.0, 0.0, 0.0)
        self.best = max(self.best, accuracy)

    def state(self, sums: tuple) -> dict:
        """The checkpoint entries, with `sums` summed over every rank."""
        partial = {"lr": self.lr, "sums": list(sums)} if self.step else {}
        return {"epoch": self.epoch, "step": self.step, "best_acc": self.best,
                "skipped": self.skipped, "partial": partial}

    @classmethod
    def from_state(cls, state: dict, main: bool, source: str) -> "Position":
        """The position saved in checkpoint `state`; only the main rank carries the epoch's
        sums (the others count their own steps from 0)."""
        for key in ("epoch", "step", "skipped"):
            value = state.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CheckpointError(f"{source}: entry {key!r} must be a non-negative int, "
                                      f"got {value!r}")
        partial = (state.get("partial") or {}) if state.get("step", 0) else {}
        sums = tuple(partial.get("sums", (0.0, 0.0, 0.0))) if main else (0.0, 0.0, 0.0)
        return cls(epoch=state["epoch"], step=state.get("step", 0),
                   best=float(state.get("best_acc", 0.0)), skipped=state.get("skipped", 0),
                   lr=partial.get("lr"), sums=sums)
