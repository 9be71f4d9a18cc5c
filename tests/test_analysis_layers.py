"""Per-layer statistics of a network: input moments, regimes against the closed forms, window
coverage, and the rule mismatch at a layer's own statistics."""
import json

import pytest
import torch
from torch import nn

from quadfire.analysis.layer_stats import format_layers, layer_statistics, rule_mismatch
from quadfire.cli import main
from quadfire.neurons import LIF, QIF


def test_regimes_follow_the_rheobase_and_the_lif_equilibrium():
    # One input value per neuron, constant over steps and samples: rheobase a d^2/4 = 1/64.
    values = torch.tensor([-0.5, -9.0, 0.01, 0.015, 0.5, 0.02])
    x = values.expand(3, 4, 6).contiguous()                     # [T=3, N=4, 6]
    s = layer_statistics(nn.Sequential(QIF()), [x], None)["0"]
    assert s["regimes"] == pytest.approx({"inhibited": 2 / 6, "excitable": 2 / 6, "tonic": 2 / 6})
    assert s["x_mean"] == pytest.approx(values.mean().item())
    assert s["x_std"] == pytest.approx(values.std(unbiased=False).item())
    assert s["rho"] == pytest.approx(0.99 ** 0.5)  # all variation is drive (capped below 1)
    assert s["floor_fraction"] > 0  # -9 is held at the floor
    # LIF tau = 2: equilibrium I / k = 2 I reaches v_th = 1 for I >= 0.5.
    lif = layer_statistics(nn.Sequential(LIF()), [x], None)["0"]
    assert lif["regimes"] == pytest.approx({"sub-threshold": 5 / 6, "tonic": 1 / 6})
    assert "floor_fraction" not in lif and "QIF" in format_layers({"l": s})


def test_rule_mismatch_at_a_layers_statistics():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, 16, generator=g) * 0.8 + 0.1
    stats = layer_statistics(nn.Sequential(QIF(surrogate="noise")), [x], None)
    m = rule_mismatch(stats, T=4, pairs=600, neurons=8, batches=2, factors=(1.0,))["0"]
    assert set(m["cosine"]) == {"band", "band-below", "noise", "moment", "rect x1",
                                "noise@measured", "moment@measured"}
    assert all(-1 <= c <= 1 for c in m["cosine"].values())
    assert m["setup"]["sigma"] == pytest.approx(stats["0"]["x_std"])


def test_analyze_run_cli(tmp_path, capsys):
    assert main(["train", "digits-qif", "--set", "epochs=1", "--set", f"out_dir={tmp_path}",
                 "--set", "model_kwargs={width: 8, hidden: 32}", "--set", "progress=false",
                 "--set", "tensorboard=false", "--set", "data.batch_size=256"]) == 0
    run = tmp_path / "digits-qif-s0"
    assert main(["analyze", "run", str(run), "--batches", "1"]) == 0
    assert "body.1" in capsys.readouterr().out
    saved = json.loads((run / "layers.json").read_text())
    assert list(saved["layers"]) == ["body.1", "body.3", "body.7"] and saved["mismatch"] is None
    # --mismatch: each window rule's gradient mismatch at every layer's own statistics
    assert main(["analyze", "run", str(run), "--batches", "1", "--mismatch", "--pairs", "200",
                 "--out", str(tmp_path / "m.json")]) == 0
    saved = json.loads((tmp_path / "m.json").read_text())
    assert set(saved["mismatch"]) == {"body.1", "body.3", "body.7"}
    for layer, m in saved["mismatch"].items():
        assert {"band", "band-below", "noise", "moment", "noise@measured",
                "moment@measured"} <= set(m["cosine"]), layer
        assert all(-1 <= c <= 1 for c in m["cosine"].values())
        assert m["setup"]["sigma"] == pytest.approx(saved["layers"][layer]["x_std"])
    assert "noise@measured" in capsys.readouterr().out


@pytest.mark.parametrize("discretization", ["euler", "exact", "hybrid"])
def test_measured_h_agrees_with_the_moment_model_for_iid_input(discretization):
    # i.i.d. Gaussian input is the model's own assumption: measured H moments, rate and floor
    # share must match its stationary law (up to the transient from rest and sampling)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(96, 128, 32, generator=g) * 0.8 + 0.1
    s = layer_statistics(nn.Sequential(QIF(discretization=discretization)), [x], None)["0"]
    p = s["predicted"]
    assert s["h_mean"] == pytest.approx(p["h_mean"], abs=0.03)
    assert s["h_std"] == pytest.approx(p["h_std"], abs=0.03)
    assert s["firing_rate"] == pytest.approx(p["firing_rate"], abs=0.01)
    assert s["floor_fraction"] == pytest.approx(p["floor_fraction"], abs=0.01)
    assert "predicted by the moment rule" in format_layers({"0": s})
