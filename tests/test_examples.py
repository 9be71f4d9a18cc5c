"""Every script in examples/ runs, at tiny sizes, so none rots (each takes seconds)."""
import importlib
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def load(name):
        sys.modules.pop(name, None)
        return importlib.import_module(name)
    return load


def test_every_example_is_run_here():
    tested = {"custom_neuron"}  # tests/test_neuron_family.py runs it
    tested |= {name[len("test_"):] for name in globals() if name.startswith("test_")}
    scripts = {p.stem for p in EXAMPLES.glob("*.py")}
    assert scripts <= tested, f"examples without a test: {sorted(scripts - tested)}"


def test_qif_in_your_model(example):
    accuracy = example("qif_in_your_model").main(["--epochs", "2", "--hidden", "64"])
    assert accuracy > 50  # chance is 10%


def test_study(example, tmp_path):
    study = example("study").main([
        "--epochs", "1", "--out", str(tmp_path), "--variants", "qif", "lif-tau2",
        "--set", "model_kwargs={width: 4, hidden: 16}", "--set", "data.batch_size=256",
        "--set", "tensorboard=false"])
    assert [r.variant for r in study.runs] == ["qif", "lif-tau2"]
    assert {p.name for p in study.folder.iterdir()} >= {"study.md", "study.json",
                                                        "accuracy.png", "firing_rates.png"}


def test_nir_to_other_simulators(example, capsys):
    pytest.importorskip("norse")
    pytest.importorskip("snntorch")
    result = example("nir_to_other_simulators").main(["--epochs", "1", "--hidden", "16"])
    assert result["same"] == {"quadfire (from_nir)": True, "Norse": True, "snnTorch": True}
