"""A run directory belongs to one run at a time, and a run in it is never replaced silently.

`claim(run_dir, ...)`, called by the process that writes the files (rank 0) before it writes
anything, does two things:

- **Lock.** An exclusive ``flock`` on ``<run_dir>/.lock``, held until the run ends; the kernel
  releases it when the process dies, however it dies, so a crashed run never leaves a stale
  lock. The file names the holder (pid, host, start time), which a second run reports.
  Forked children (DataLoader workers) close their copy, so they never keep the lock alive.
- **Existing runs.** A directory that already holds a run (``last.pt``, ``metrics.csv`` or
  ``report.json``) is used only to resume from its own ``last.pt``, when asked to replace it
  (``overwrite``, ``--overwrite``), or when the old run was a scratch run (a ``--smoke`` run
  or the digits demo), which later runs replace freely. The old files are removed (`clear`)
  only once the new run has started without error.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
from pathlib import Path

from ..errors import CheckpointError, RunDirError
from . import checkpoint
from .report import REPORT_NAME, read_report

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None

LOCK_NAME = ".lock"
RUN_FILES = ("last.pt", "metrics.csv", REPORT_NAME)  # what makes a directory hold a run
REPLACED = RUN_FILES + ("tb",)                          # what --overwrite removes

_held: dict[int, "RunLock"] = {}  # fd -> lock, closed in forked children


def _close_in_child() -> None:
    for fd in list(_held):
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


class RunLock:
    """The lock on one run directory (see the module docstring)."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None
        self.replaces = False  # set by `claim`: the run replaces an existing one (`clear`)

    def acquire(self) -> "RunLock":
        if fcntl is None or self.fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            os.close(fd)
            raise RunDirError(f"run directory {self.path.parent} is in use by another run "
                              f"({_describe(holder)}); wait for it to finish, stop it, or give "
                              f"this run another directory with --set run_name=NAME or "
                              f"--set out_dir=DIR") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(),
             "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        ).encode(), 0)
        self.fd = fd
        _held[fd] = self
        return self

    def release(self) -> None:
        if self.fd is not None:
            _held.pop(self.fd, None)
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return f"pid {info['pid']} on host {info['host']}, started {info['started']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown: the lock file is being written"


def check_out_dir(run_dir: Path) -> None:
    """Every existing ancestor of `run_dir` must be a folder (out_dir may not be a file)."""
    for folder in (run_dir, *run_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise RunDirError(f"cannot create the run directory {run_dir}: {folder} is a "
                                  f"file, not a folder (check out_dir and run_name)")
            return


def existing_run(run_dir: Path) -> dict | None:
    """What the run in `run_dir` is, or None when it holds none: {"what": a description,
    "scratch": whether a later run may replace it without asking}."""
    present = [name for name in RUN_FILES if (run_dir / name).exists()]
    if not present:
        return None
    ckpt_path = run_dir / "last.pt"
    try:
        report = read_report(run_dir)
    except RunDirError:  # a damaged report says nothing; the checkpoint may
        report = None
    if report is not None:
        done, total = report.epochs_completed, report.epochs
        finished = not report.interrupted and done == total
        what = f"{'a finished' if finished else 'an interrupted'} run ({done} of {total} epochs)"
        return {"what": what, "scratch": report.scratch}
    if ckpt_path.is_file():
        try:
            state = checkpoint.load(ckpt_path)
        except CheckpointError:
            return {"what": "a run whose last.pt cannot be read", "scratch": False}
        total = (state.get("config") or {}).get("epochs", "?")
        return {"what": f"an interrupted run (checkpoint at epoch {state['epoch']} of {total})",
                "scratch": bool(state.get("scratch", False))}
    return {"what": f"a run's files ({', '.join(present)})", "scratch": False}


def claim(run_dir: str | Path, resume=None, overwrite: bool = False) -> RunLock:
    """Lock `run_dir` for this run and make sure it may write there (module docstring);
    returns the held lock. Raises RunDirError naming the problem and the ways out."""
    run_dir = Path(run_dir)
    check_out_dir(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        check_out_dir(run_dir)
        raise
    lock = RunLock(run_dir).acquire()
    try:
        lock.replaces = check_free(run_dir, resume, overwrite) == "replace"
    except BaseException:
        lock.release()
        raise
    return lock


def clear(run_dir: str | Path) -> None:
    """Remove the files of the run being replaced; called once the new run is set up (its
    checkpoint read, its model built), so a run that fails to start destroys nothing."""
    for name in REPLACED:
        target = Path(run_dir) / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def check_free(run_dir: str | Path, resume=None, overwrite: bool = False) -> str:
    """Whether a run may write to `run_dir`: "empty", "resume" (from its own last.pt) or
    "replace" (an existing run: `overwrite` given, or a scratch run); otherwise RunDirError
    naming the run that is there and the ways out."""
    run_dir = Path(run_dir)
    check_out_dir(run_dir)
    old = existing_run(run_dir) if run_dir.is_dir() else None
    if old is None:
        return "empty"
    if resume is not None and Path(resume).resolve() == (run_dir / "last.pt").resolve():
        return "resume"
    if overwrite or old["scratch"]:
        return "replace"
    raise RunDirError(f"{run_dir} already holds {old['what']}; continue it with --resume, write "
                      f"the new run elsewhere with --set run_name=NAME (or out_dir=DIR), or "
                      f"replace it with --overwrite")
