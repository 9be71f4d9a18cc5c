"""Graceful stop on SIGTERM (schedulers, torchrun) and Ctrl-C (SIGINT).

The first signal only sets a flag; the loop finishes its current step, writes a checkpoint and
returns, so no step is half applied. A second Ctrl-C interrupts at once, except while a
checkpoint is being written (`signals_deferred`): signals that arrive then are delivered
when the file is complete.
"""
from __future__ import annotations

import contextlib
import signal
import threading

import torch
import torch.distributed as dist


class StopRequest:
    """Context manager that turns SIGINT/SIGTERM into a flag (main thread only)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def agreed(self, info) -> bool:
        """True when any rank was asked to stop, so all ranks stop after the same step."""
        if not info.distributed:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=info.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


@contextlib.contextmanager
def signals_deferred(signals=(signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)):
    """Hold `signals` back while the block runs: each one that arrives is recorded, and once
    the block is done the previous handlers are restored and the signals re-raised, in order
    (a default SIGTERM then ends the process, after the block). Python runs signal handlers
    in the main thread only, so elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
                for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in pending:
            signal.raise_signal(sig)
