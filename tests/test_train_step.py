"""The loop's pieces on their own: a training step's verdict, the position a checkpoint
carries, and the smoke dataset."""
import math

import pytest
import torch

from quadfire.data import DataConfig, build_loaders, get_dataset
from quadfire.errors import CheckpointError, ConfigError
from quadfire.train import distributed, engine
from quadfire.train.config import load_config
from quadfire.train.position import Position
from quadfire.train.recipes import read_recipe
from quadfire.train.step import train_step


@pytest.fixture
def run():
    cfg = load_config(read_recipe("digits-qif"), ["model_kwargs={width: 4, hidden: 8}",
                                                  "data.batch_size=8", "data.synthetic=true"])
    run = engine.build(cfg, distributed.DistInfo())
    yield run
    run.close()


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_finite_step_is_applied_and_reports_its_batch(run):
    x, y = next(iter(run.train_loader))
    before = _snapshot(run.model)
    verdict = train_step(run, x, y, engine.loss_fn(run.cfg))
    assert verdict.applied and verdict.problem == "" and verdict.samples == 8
    assert math.isfinite(verdict.loss) and 0 <= verdict.correct <= 8
    assert any(not torch.equal(before[k], v) for k, v in run.model.state_dict().items())
    assert run.scheduler.last_epoch == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_step_is_refused_and_changes_nothing(run, bad):
    x, y = next(iter(run.train_loader))
    x = x.clone()
    x.view(-1)[0] = bad
    before = _snapshot(run.model)
    verdict = train_step(run, x, y, engine.loss_fn(run.cfg))
    assert not verdict.applied and verdict.problem in ("loss", "BN statistics", "gradients")
    after = run.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN buffers
    assert run.scheduler.last_epoch == 0


def test_the_position_survives_a_checkpoint():
    pos = Position(epoch=3, best=71.5, skipped=2)
    pos.lr = 0.01
    pos.count(True, loss=0.5, correct=3, samples=4)
    pos.count(False)
    state = pos.state(sums=(4.0, 6.0, 8.0))  # summed over ranks
    assert (state["epoch"], state["step"], state["skipped"]) == (3, 2, 3)
    main = Position.from_state(state, main=True, source="x")
    assert (main.epoch, main.step, main.best, main.skipped, main.lr) == (3, 2, 71.5, 3, 0.01)
    assert main.sums == (4.0, 6.0, 8.0)
    assert Position.from_state(state, main=False, source="x").sums == (0.0, 0.0, 0.0)
    main.next_epoch(accuracy=80.0)
    assert (main.epoch, main.step, main.best, main.lr, main.sums) == (4, 0, 80.0, None,
                                                                      (0.0, 0.0, 0.0))
    assert main.state(sums=(0.0, 0.0, 0.0))["partial"] == {}
    with pytest.raises(CheckpointError, match="x: entry 'step' must be a non-negative int, "
                                              "got -1"):
        Position.from_state({**state, "step": -1}, main=True, source="x")


def test_the_smoke_dataset_has_the_shape_of_the_one_it_stands_for():
    train, test, info = build_loaders(DataConfig(dataset="fashion-mnist", batch_size=3,
                                                 synthetic=True, root="/nonexistent"))
    assert info == get_dataset("fashion-mnist").info(DataConfig(dataset="fashion-mnist"), None)
    assert len(train) == 2 and len(train.dataset) == 6
    x, y = next(iter(train))
    assert x.shape == (3, 1, 28, 28) and y.max() < 10
    assert get_dataset("synthetic:digits").name == "synthetic:digits"
    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        get_dataset("synthetic:nope")
