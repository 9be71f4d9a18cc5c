"""Per-epoch metrics to ``metrics.csv`` and TensorBoard (rank 0 only)."""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import RunDirError

COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc")


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a run's metrics.csv, checked: a header naming at least ``epoch`` and
    ``test_acc``, an integer epoch and numbers elsewhere. Anything else (a file without a
    header, not CSV, not text) is a RunDirError naming the file and what was expected."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if not {"epoch", "test_acc"} <= set(fields):
                raise ValueError(f"its header is {fields[:6]}")
            rows = list(reader)
        for n, row in enumerate(rows, 2):
            try:
                row["epoch"] = int(row["epoch"])
                for key in fields[1:]:
                    row[key] = float(row[key])
            except (TypeError, ValueError):
                raise ValueError(f"line {n} is not a row of numbers: {row}") from None
    except (UnicodeDecodeError, csv.Error, ValueError) as e:
        raise RunDirError(f"{path} is not a metrics file of quadfire ({e}); expected CSV with "
                          f"the header {','.join(COLUMNS)}. Move it away (the earlier epochs' "
                          f"rows are then not in the new file) or retrain with --overwrite") \
            from None
    return rows


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
            rows = [r for r in read_rows(self.path) if r["epoch"] < first_epoch]
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
