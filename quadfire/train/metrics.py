"""Per-epoch metrics to ``metrics.csv`` and TensorBoard (rank 0 only)."""
from __future__ import annotations

import csv
from pathlib import Path


class MetricsLog:
    """Appends one CSV row per epoch; on resume, rows from `first_epoch` on are dropped first
    so a resumed run's file matches an uninterrupted one."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True, first_epoch: int = 0,
                 enabled: bool = True):
        self.enabled, self.writer = enabled, None
        if not enabled:
            return
        self.path = Path(run_dir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if first_epoch > 0 and self.path.is_file():
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < first_epoch]
        self.rows = rows
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=first_epoch)

    def epoch(self, epoch: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.rows.append({"epoch": epoch, **values})
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(self.rows[-1]))
            w.writeheader()
            w.writerows(self.rows)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key.replace("_", "/", 1), value, epoch)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
