"""Beyond one machine, on CPU with gloo: two torchrun agents as two nodes of one job, and a
torchrun job that loses a worker (kill -9) mid-epoch, restarts its worker group and carries
on with `--resume auto` from the last mid-epoch checkpoint to the weights of a run never
interrupted (docs/training.md, "Several machines" and "Elastic restarts")."""
import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quadfire.errors import CheckpointError
from quadfire.train import checkpoint

# 1437 digits images, 16 per rank and step over 2 ranks: 45 steps an epoch, so a checkpoint
# every 10 steps falls inside every epoch
# (progress on: the resumed run's line "resuming from ... at epoch E, step S" is checked)
SETS = ["epochs=2", "model_kwargs={width: 8, hidden: 32}", "data.batch_size=16", "lr=5e-3",
        "tensorboard=false", "checkpoint_every=10"]


def _sets(out_dir: Path, name: str) -> list[str]:
    return sum((["--set", s] for s in SETS + [f"out_dir={out_dir}", f"run_name={name}"]), [])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(torchrun_args: list[str], out_dir: Path, name: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", *torchrun_args, "-m", "quadfire.cli",
           "train", "digits-qif", "--resume", "auto", *_sets(out_dir, name)]
    return subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> str:
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout[-2000:] + stderr[-4000:]
    return stderr


def _report(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text())


def _rows(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """Two torchrun agents on this machine as the two nodes of one job (c10d rendezvous on
    127.0.0.1), one process each: the run's folder."""
    out = tmp_path_factory.mktemp("nodes")
    port = _free_port()
    agents = [_launch(["--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank),
                       "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
                       "--rdzv-id", "two-nodes"], out, "nodes")
              for rank in (0, 1)]
    for agent in agents:
        _finish(agent)
    return out / "nodes"


def test_two_torchrun_agents_as_two_nodes_train_identical_replicas(two_nodes):
    report = _report(two_nodes)
    assert report["world_size"] == 2 and report["epochs_completed"] == 2
    assert len(report["replica_digests"]) == 2 and report["replicas_identical"]
    assert report["accuracy"] > 40  # it trained (chance: 10%)
    state = checkpoint.load(two_nodes / "last.pt")
    assert state["epoch"] == 2 and state["scheduler"]["last_epoch"] == 2 * 45


def _worker_pids(agent: subprocess.Popen) -> dict[int, int]:
    """{rank: pid} of the agent's worker processes (Linux /proc)."""
    pids = {}
    children = Path(f"/proc/{agent.pid}/task/{agent.pid}/children")
    for pid in children.read_text().split() if children.exists() else []:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ranks = [int(e[5:]) for e in env if e.startswith(b"RANK=")]
        if ranks:
            pids[ranks[0]] = int(pid)
    return pids


def _position(path: Path) -> tuple[int, int] | None:
    try:
        state = checkpoint.load(path)
    except CheckpointError:
        return None
    return state["epoch"], state.get("step", 0)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds workers through /proc")
def test_a_worker_killed_mid_epoch_costs_only_the_steps_since_the_last_checkpoint(
        two_nodes, tmp_path):
    """`--max-restarts 2`, rank 1 killed (SIGKILL) once a mid-epoch checkpoint of the second
    (and last) epoch exists: torchrun restarts both workers, the same command resumes from last.pt, and
    the job ends like an uninterrupted run of the same seed and world size (the two-node
    run): exit 0, one metrics row per epoch, the same rows and the same weights bit for bit."""
    agent = _launch(["--standalone", "--nproc_per_node", "2", "--max-restarts", "2"],
                    tmp_path, "elastic")
    ckpt = tmp_path / "elastic" / "last.pt"
    deadline, position = time.time() + 300, None
    while agent.poll() is None and time.time() < deadline:
        position = _position(ckpt) if ckpt.exists() else None
        if position is not None and position[0] == 1 and position[1] > 0:
            break
        time.sleep(0.05)
    assert position is not None and position[0] == 1 and 0 < position[1] < 45, \
        f"no mid-epoch checkpoint of epoch 2 before the run ended: {position}"
    os.kill(_worker_pids(agent)[1], signal.SIGKILL)
    stderr = _finish(agent)
    assert "failed (exitcode: -9) local_rank: 1" in stderr, stderr[-3000:]
    # the restarted round went on from a mid-epoch checkpoint, not from the epoch's start
    resumed = re.findall(r"resuming from \S+ at epoch 2, step (\d+)", stderr)
    assert len(resumed) == 1 and int(resumed[0]) >= position[1], stderr[-3000:]
    report, reference = _report(tmp_path / "elastic"), _report(two_nodes)
    assert report["epochs_completed"] == 2 and not report["interrupted"]
    assert [r["epoch"] for r in _rows(tmp_path / "elastic")] == ["0", "1"]
    assert _rows(tmp_path / "elastic") == _rows(two_nodes)
    assert report["replicas_identical"]
    assert report["replica_digests"] == reference["replica_digests"]


def test_resume_auto_starts_a_run_continues_its_own_and_refuses_another(tmp_path, capsys):
    """What a torchrun restart relies on, in-process: the same command line starts the run
    when there is no last.pt, continues it when there is, and refuses a last.pt of a run with
    other settings as --resume does (one line, exit 2)."""
    from quadfire.cli import main

    argv = ["train", "digits-qif", "--smoke", "--resume", "auto", "--set", f"out_dir={tmp_path}",
            "--set", "progress=true", "--set", "scratch=false"]  # a run kept like a real one
    assert main(argv) == 0
    ckpt = tmp_path / "digits-qif-s0" / "last.pt"
    assert "resuming" not in capsys.readouterr().err and checkpoint.load(ckpt)["epoch"] == 1
    assert main(argv) == 0  # a finished run: evaluated again, nothing trained
    assert f"resuming from {ckpt} a finished run (1 epochs): evaluating only" in \
        capsys.readouterr().err
    assert checkpoint.load(ckpt)["epoch"] == 1
    assert main(argv + ["--set", "T=2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume continues the run" in err[0] and \
        "T: 4 in the run, 2 given" in err[0], err
    assert main(argv + ["--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite starts a new run" in err[0], err
    # a scratch run (a plain smoke run) of other settings is replaced, as by any new run
    assert main(["train", "digits-qif", "--smoke", "--set", f"out_dir={tmp_path / 'b'}"]) == 0
    ckpt = tmp_path / "b" / "digits-qif-s0" / "last.pt"
    assert checkpoint.load(ckpt)["scratch"]
    real = ["train", "digits-qif", "--resume", "auto", "--set", f"out_dir={tmp_path / 'b'}",
            "--set", "epochs=1", "--set", "progress=false", "--set", "tensorboard=false",
            "--set", "model_kwargs={width: 4, hidden: 8}"]
    assert main(real) == 0
    assert not checkpoint.load(ckpt)["scratch"]
    assert checkpoint.load(ckpt)["config"]["data"]["synthetic"] is False
