"""`quadfire bench neurons` on a tiny layer: the worker, the table and one real run."""
from __future__ import annotations

import math

import pytest

from quadfire.bench import neurons as bench
from quadfire.cli import main


@pytest.mark.parametrize("row", ["copy", "quadfire-reference", "quadfire-fused", "quadfire-fused-exact",
                                 "quadfire-fused-sum"])
def test_worker_times_and_measures_a_row(row):
    r = bench.worker(row, steps=3, neurons=5000, repeats=2, device="cpu", budget=5.0)
    assert r["row"] == row and r["runs"] == 2 and r["time_s"] > 0
    assert r["time_s"] == min(r["times_s"])
    assert math.isnan(r["peak_bytes"]) or r["peak_bytes"] >= 0


def test_table_ratios_are_to_fused_qif():
    results = [{"row": "quadfire-fused", "steps": 4, "time_s": 0.1, "peak_bytes": 2**20},
               {"row": "sj-qif", "steps": 4, "time_s": 0.9, "peak_bytes": 3 * 2**20},
               {"row": "copy", "steps": 4, "time_s": 0.05, "peak_bytes": 0},
               {"row": "norse-lif", "steps": 4, "error": "norse not installed"}]
    text = bench.table(results, neurons=1000)
    assert "| 4 | SpikingJelly QIFNode | 900.0 | 9.00 | 3 |  |" in text
    assert "| 4 | quadfire QIF fused | 100.0 | 1.00 | 1 | 0.00 |" in text
    assert "norse not installed" in text


def test_bad_arguments_are_named():
    with pytest.raises(SystemExit):
        main(["bench", "neurons", "--neurons", "0"])
    with pytest.raises(ValueError, match="unknown row"):
        bench._layer("brian2", "cpu")


def test_main_runs_rows_in_subprocesses(capsys):
    assert main(["bench", "neurons", "--neurons", "4096", "--steps", "2", "--rows", "copy",
                 "quadfire-fused", "--repeats", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 2 | quadfire QIF fused |" in out and "| 2 | tensor copy (same bytes) |" in out
    assert "| 1.00 |" in out


def test_rounds_keep_each_rows_fastest_run(capsys):
    runs = [{"row": "copy", "steps": 4, "time_s": 0.3}, {"row": "quadfire-fused", "steps": 4,
                                                        "error": "timed out"},
            {"row": "copy", "steps": 4, "time_s": 0.1},
            {"row": "quadfire-fused", "steps": 4, "time_s": 0.2}]
    best = bench.fastest_rounds(runs)
    assert [(r["row"], r["time_s"], r["round_times_s"]) for r in best] == [
        ("copy", 0.1, [0.3, 0.1]), ("quadfire-fused", 0.2, [0.2])]
    assert main(["bench", "neurons", "--neurons", "4096", "--steps", "2", "--rows", "copy",
                 "--repeats", "1", "--threads", "1", "--rounds", "2"]) == 0
    out = capsys.readouterr()
    assert "fastest of 2 interleaved rounds" in out.out and out.err.count("T=2 tensor copy") == 2
