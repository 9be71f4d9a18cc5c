"""Every shipped recipe: loads, names the paper's accuracy and has its LIF twin; every
CPU-sized recipe and the QIF twin of every paper setting runs ``quadfire train RECIPE
--smoke`` (2 steps on generated data of the recipe's shape; see `_smoked` for the LIF twins).

CPU budget: the digits recipes and the CPU-sized Tonic ones (N-MNIST, SHD; their dataset
description comes from Tonic's classes, no data on disk) run the plain ``--smoke`` (batch 2,
full T); the paper recipes run it with batch 1 and T = 1 (1 frame for event data), their
image sizes, channels, classes, models, losses and AMP settings unchanged. ``quadfire train RECIPE --smoke`` checks
the full T at batch 2 (measured on 2 lightly loaded CPU cores: ResNet-19 CIFAR T = 4 9 s,
SEW ResNet-34 ImageNet 13 s, ResNet-19 CIFAR10-DVS T = 10 41 s, with process start-up).
"""
import json

import pytest

from quadfire.cli import main
from quadfire.errors import ConfigError
from quadfire.train.recipes import config_for, find_recipe, list_recipes, read_recipe, twins

RECIPES = list_recipes()
SETTINGS = sorted({r.removesuffix("-qif").removesuffix("-lif") for r in RECIPES})
TWIN_FIELDS = {"neuron", "neuron_kwargs", "paper_accuracy", "paper_reference"}
# Settings whose dataset comes through Tonic: running them needs the dvs extra, even on
# generated data, since the input description comes from Tonic's classes
# (test_optional_extras.py covers its absence).
TONIC_SETTINGS = {"nmnist-convnet-t10", "shd-seq-mlp-t100"}


# Settings with no published figure to stand beside (their recipes say why).
NO_PUBLISHED_FIGURE = ("digits", "fmnist-rows-t28")
# Small enough for the plain --smoke (batch 2, full T; the -rows datasets need T = 28).
SMALL = ("digits", "fashion-mnist", "fashion-mnist-rows")


def needs_tonic(name: str) -> None:
    if name.removesuffix("-qif").removesuffix("-lif") in TONIC_SETTINGS:
        pytest.importorskip("tonic", reason="the dvs extra (Tonic) is not installed")


def test_the_paper_settings_are_all_shipped():
    assert {"cifar10-resnet19-t4", "cifar10-resnet19-t2", "cifar100-resnet19-t4",
            "cifar100-resnet19-t2", "imagenet-sew-resnet34-t4", "imagenet-spiking-resnet34-t4",
            "cifar10dvs-vggsnn-t10", "cifar10dvs-resnet19-t10", "digits", "fmnist-csnn-t4",
            "fmnist-plifnet-t8", "fmnist-rows-t28",
            *TONIC_SETTINGS} == set(SETTINGS)
    assert find_recipe("recipes/digits-qif.yaml").samefile(find_recipe("digits-qif"))


@pytest.mark.parametrize("setting", SETTINGS)
def test_twins_differ_only_in_the_neuron(setting):
    pair = {n: config_for(p, [], False) for n, p in twins(setting).items()}
    qif, lif = pair["qif"], pair["lif"]
    assert (qif.neuron, lif.neuron) == ("qif", "lif")
    assert qif.name == lif.name == setting
    q, l_ = vars(qif), vars(lif)
    assert {k for k in q if q[k] != l_[k]} <= TWIN_FIELDS
    assert "a" not in lif.neuron_kwargs  # kwargs replaced, not merged, by `extends`
    if setting not in NO_PUBLISHED_FIGURE:
        assert qif.paper_accuracy is not None and lif.paper_accuracy is not None
        assert qif.paper_reference and lif.paper_reference


def test_extends_cycle_and_unknown_recipe(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="extends itself"):
        read_recipe(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="shipped recipes: .*digits-qif"):
        find_recipe("cifar11-qif")


def _smoked(recipe: str) -> bool:
    """Every CPU-sized recipe, and the QIF twin of each paper setting: the LIF twin differs
    only in the neuron (test_twins_differ_only_in_the_neuron), and every model is run with
    every neuron in test_models_registry.py, so its smoke run (20-35 s each) adds nothing."""
    return recipe.endswith("-qif") or config_for(recipe, [], False).data.dataset in SMALL \
        or recipe.removesuffix("-lif") in TONIC_SETTINGS


@pytest.mark.parametrize("recipe", [r for r in RECIPES if _smoked(r)])
def test_smoke(recipe, tmp_path, capsys):
    needs_tonic(recipe)
    dataset = config_for(recipe, [], False).data.dataset
    sets = [f"out_dir={tmp_path}"]
    if dataset not in SMALL and not dataset.startswith("tonic:"):
        sets += ["data.batch_size=1", "T=1"]
    assert main(["train", recipe, "--smoke", *sum((["--set", s] for s in sets), [])]) == 0
    cfg = config_for(recipe, sets, True)
    report = json.loads((cfg.run_dir / "report.json").read_text())
    assert report["smoke"] and report["epochs_completed"] == 1
    assert report["paper_accuracy"] == cfg.paper_accuracy
    assert report["layer_firing_rates"] and 0 <= report["firing_rate"] <= 1
    if cfg.paper_accuracy is not None:
        assert f"(paper: {cfg.paper_accuracy:.2f}%" in capsys.readouterr().out
