"""The optional integrations name the pip extra to install when their package is missing,
and everything else works without them. A missing package is simulated by hiding its module
(``sys.modules[name] = None`` makes importing it fail), so these tests run with or without
Tonic and NeuroBench installed."""
import sys

import pytest

from quadfire.cli import main
from quadfire.data import DataConfig, dataset_info, synthetic_loaders
from quadfire.errors import MissingExtraError, QuadfireError, require_extra


def hide(monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)


def test_require_extra_names_the_extra(monkeypatch):
    hide(monkeypatch, "tonic")
    with pytest.raises(MissingExtraError, match=r"needs the optional package 'tonic'.*"
                                                r"pip install 'quadfire\[dvs\]'") as caught:
        require_extra("tonic", "dvs", "this")
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, QuadfireError)
    assert require_extra("json", "none", "that").dumps([]) == "[]"


def test_tonic_datasets_without_tonic(monkeypatch, capsys):
    hide(monkeypatch, "tonic")
    cfg = DataConfig(dataset="tonic:NMNIST")  # configs load: recipes still list
    with pytest.raises(MissingExtraError, match=r"tonic:<name>.*quadfire\[dvs\]"):
        dataset_info(cfg, 10)
    assert main(["recipes"]) == 0 and "tonic:SHD" in capsys.readouterr().out
    # The other event dataset has its own reader and needs no extra.
    _, _, info = synthetic_loaders(DataConfig(dataset="cifar10dvs", batch_size=1), 2)
    assert info.step_shape == (2, 48, 48)


def test_the_cli_says_which_extra(monkeypatch, tmp_path, capsys):
    hide(monkeypatch, "tonic")
    assert main(["train", "shd-seq-mlp-t100-qif", "--smoke", "--set", f"out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'quadfire[dvs]'" in err


def test_eval_neurobench_without_neurobench(monkeypatch, tmp_path, capsys):
    sets = ["--set", f"out_dir={tmp_path}"]
    assert main(["train", "digits-qif", "--smoke", *sets]) == 0
    run = str(tmp_path / "digits-qif-s0")
    hide(monkeypatch, "neurobench")
    capsys.readouterr()
    assert main(["eval", run, "--smoke", "--neurobench"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'quadfire[neurobench]'" in err
    assert main(["eval", run, "--smoke"]) == 0  # quadfire's own figures need nothing extra
