"""Distributed training on CPU with gloo: a real `torchrun` launch of `quadfire train` with two
processes, and SyncTdBN against single-process tdBN on the whole batch."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from quadfire.layers import TdBN
from quadfire.train import checkpoint
from quadfire.layers.sync_tdbn import SyncTdBN, convert_sync_tdbn


def _torchrun(sets: list[str], *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "quadfire.cli", "train", "digits-qif", *extra,
           *sum((["--set", s] for s in sets), [])]
    return subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _sets(out_dir, name: str) -> list[str]:
    return ["epochs=2", "model_kwargs={width: 8, hidden: 32}", "data.batch_size=16",
            "lr=5e-3", "sync_bn=true", "progress=false", "tensorboard=false",
            f"out_dir={out_dir}", f"run_name={name}"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """An uninterrupted 2-process run: (its folder, its stdout)."""
    out = tmp_path_factory.mktemp("ddp")
    full = _torchrun(_sets(out, "full"))
    stdout, stderr = full.communicate(timeout=600)
    assert full.returncode == 0, stdout[-2000:] + stderr[-3000:]
    return out / "full", stdout


def test_torchrun_two_processes_train_identical_replicas(full_run):
    run_dir, stdout = full_run
    report = json.loads((run_dir / "report.json").read_text())
    assert report["world_size"] == 2
    assert len(report["replica_digests"]) == 2 and report["replicas_identical"]
    assert report["accuracy"] > 40  # it trained (chance: 10%)
    state = checkpoint.load(run_dir / "last.pt")
    assert state["epoch"] == 2
    # 1437 training images, 16 per rank per step: 45 optimizer steps an epoch, not 90
    # (sharded data)
    assert state["scheduler"]["last_epoch"] == 2 * 45
    assert stdout.count("test accuracy") == 1  # rank 0 alone reports


def test_a_distributed_run_stopped_and_resumed_matches_an_uninterrupted_one(full_run):
    """SIGTERM to torchrun (which passes it to both ranks) once the first epoch's checkpoint
    exists: the ranks agree on a step, rank 0 writes last.pt; `--resume` under torchrun then
    ends with the weights of an uninterrupted 2-process run, on every rank."""
    out = full_run[0].parent
    stopped = _torchrun(_sets(out, "stopped"))
    ckpt = out / "stopped" / "last.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and stopped.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    stopped.send_signal(signal.SIGTERM)
    stopped.communicate(timeout=300)
    state = checkpoint.load(ckpt)
    assert state["epoch"] < 2, "the run finished before the signal: make the epochs longer"
    assert json.loads((out / "stopped" / "report.json").read_text())["interrupted"]
    resumed = _torchrun(_sets(out, "stopped"), "--resume")
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stdout[-2000:] + stderr[-3000:]
    reports = [json.loads((out / name / "report.json").read_text())
               for name in ("full", "stopped")]
    assert reports[1]["replicas_identical"] and reports[1]["epochs_completed"] == 2
    assert reports[1]["replica_digests"] == reports[0]["replica_digests"]
    assert reports[1]["best_accuracy"] == reports[0]["best_accuracy"]


def _sync_worker(rank, world, init, x, g, out):
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        bn = convert_sync_tdbn(torch.nn.Sequential(TdBN(3, alpha=0.7, v_th=1.5)))[0]
        assert isinstance(bn, SyncTdBN)
        n = x.shape[1] // world
        xs = x[:, rank * n:(rank + 1) * n].clone().requires_grad_()
        y = bn(xs)
        (y * g[:, rank * n:(rank + 1) * n]).sum().backward()
        torch.save({"y": y.detach(), "x_grad": xs.grad, "w_grad": bn.weight.grad,
                    "b_grad": bn.bias.grad, "mean": bn.running_mean, "var": bn.running_var},
                   f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_sync_tdbn_equals_tdbn_on_the_global_batch(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(4, 6, 3, 5, 5, dtype=torch.float64).float() * 2 + 0.5
    g = torch.randn_like(x)
    mp.spawn(_sync_worker, args=(2, f"file://{tmp_path}/store", x, g, str(tmp_path)), nprocs=2)
    parts = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    ref = TdBN(3, alpha=0.7, v_th=1.5)
    xr = x.clone().requires_grad_()
    y = ref(xr)
    (y * g).sum().backward()
    tol = dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.cat([p["y"] for p in parts], 1), y.detach(), **tol)
    torch.testing.assert_close(torch.cat([p["x_grad"] for p in parts], 1), xr.grad, **tol)
    torch.testing.assert_close(parts[0]["w_grad"] + parts[1]["w_grad"], ref.weight.grad, **tol)
    torch.testing.assert_close(parts[0]["b_grad"] + parts[1]["b_grad"], ref.bias.grad, **tol)
    for p in parts:
        torch.testing.assert_close(p["mean"], ref.running_mean, **tol)
        torch.testing.assert_close(p["var"], ref.running_var, **tol)


def _step_worker(rank, world, init, x, y, out):
    """One training step of the digits convnet as `quadfire train` builds it under DDP
    (SyncTdBN, DistributedDataParallel, the recipe's optimizer and loss) on this rank's half
    of the batch."""
    from quadfire.data import dataset_info
    from quadfire.train import engine
    from quadfire.train.config import load_config
    from quadfire.train.optim import build_optimizer
    from quadfire.train.recipes import read_recipe

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        cfg = load_config(read_recipe("digits-qif"), ["model_kwargs={width: 8, hidden: 32}",
                                                      "optimizer=sgd", "lr=0.5"])
        torch.manual_seed(0)
        model = engine.make_model(cfg, dataset_info(cfg.data, cfg.T))
        if world > 1:
            model = convert_sync_tdbn(model)
        net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
        optimizer = build_optimizer(model, cfg)
        torch.save(model.state_dict(), f"{out}/world{world}-rank{rank}-start.pt")
        n = x.shape[0] // world
        loss = engine.loss_fn(cfg)(net(x[rank * n:(rank + 1) * n]), y[rank * n:(rank + 1) * n])
        loss.backward()
        optimizer.step()
        torch.save(model.state_dict(), f"{out}/world{world}-rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_step_like_one_process_on_the_global_batch(tmp_path):
    """`lr` is for the global batch (docs/training.md): 2 ranks with 16 samples each end a
    step with the weights and BN statistics of 1 process with all 32 (up to rounding)."""
    torch.manual_seed(1)
    x, y = torch.rand(32, 1, 8, 8) * 4, torch.randint(0, 10, (32,))
    mp.spawn(_step_worker, args=(2, f"file://{tmp_path}/store2", x, y, str(tmp_path)), nprocs=2)
    mp.spawn(_step_worker, args=(1, f"file://{tmp_path}/store1", x, y, str(tmp_path)), nprocs=1)
    one = torch.load(tmp_path / "world1-rank0.pt")
    start = torch.load(tmp_path / "world1-rank0-start.pt")
    moved = [k for k, v in one.items()
             if v.is_floating_point() and (v - start[k]).abs().max() > 1e-3]
    assert len(moved) >= 4, moved  # the step changed weights and BN statistics markedly
    for rank in range(2):
        two = torch.load(tmp_path / f"world2-rank{rank}.pt")
        assert two.keys() == one.keys()
        for name, value in one.items():
            torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-5,
                                       msg=lambda m, name=name: f"{name}: {m}")
