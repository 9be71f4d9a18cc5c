"""The models benchmark runs end to end on a tiny configuration and reports sane numbers."""
import json

import pytest

from quadfire.bench import models as bench
from quadfire.cli import main

TINY = ["--T", "1", "--batch", "1", "--size", "8", "--steps", "1", "--warmup", "1", "--threads", "1"]


def test_quadfire_row_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "models", *TINY, "--rows", "quadfire", "--json", str(out)]) == 0
    assert "| quadfire |" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["results"]
    assert row["images_per_s"] > 0 and row["peak_step_mib"] >= 0
    # The model alone (12.7 M float32 parameters and their gradients) is ~97 MiB.
    assert row["peak_mib"] >= 90 and row["peak_mib"] >= row["resident_mib"]
    assert 12.5e6 <= row["params"] <= 12.8e6


def test_spikingjelly_network_mirrors_resnet19():
    pytest.importorskip("spikingjelly")
    import torch
    sj = bench.build_spikingjelly(T=2, num_classes=10)
    qf = bench.build_quadfire(T=2, num_classes=10)
    assert sum(p.numel() for p in sj.parameters()) == sum(p.numel() for p in qf.parameters())
    assert sj(torch.rand(1, 3, 8, 8)).shape == (2, 1, 10)


def test_bad_arguments_are_rejected():
    with pytest.raises(SystemExit):
        main(["bench", "models", "--rows", "snntorch"])
    with pytest.raises(SystemExit):
        main(["bench", "models", "--batch", "0"])
