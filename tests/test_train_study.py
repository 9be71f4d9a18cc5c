"""`quadfire study`: variants change only the neuron, finished runs are reused, interrupted
ones resumed, and the table and figures come from the runs' own reports."""
import dataclasses
import json
from pathlib import Path

import pytest

from quadfire.cli import main
from quadfire.errors import ConfigError
from quadfire.train import checkpoint
from quadfire.train.config import OVERWRITE
from quadfire.train.report import RunReport
from quadfire.train.study import plan, run_study
from quadfire.train.typed_yaml import to_dict
from quadfire.train.variants import STUDY, VARIANTS

PER_RUN = {"neuron", "neuron_kwargs", "seed", "run_name", "paper_accuracy", "paper_reference"}


def test_variants_change_only_the_neuron(tmp_path):
    setting, folder, runs = plan("digits", list(STUDY), [0, 1], [f"out_dir={tmp_path}"])
    assert setting == "digits" and folder == tmp_path / "study-digits"
    assert len(runs) == len(STUDY) * 2
    cfgs = {(v, s): c for v, s, c in runs}
    first = to_dict(runs[0][2])
    for cfg in cfgs.values():
        differs = {k for k, v in to_dict(cfg).items() if v != first[k]}
        assert differs <= PER_RUN | {"run_name"}
        assert cfg.run_dir == folder / f"{cfg.run_name}"
    kw = {v: cfgs[(v, 0)].neuron_kwargs for v in STUDY}
    assert kw["qif-band-below"]["surrogate"] == "band-below" and kw["qif-noise"]["surrogate"] == "noise"
    assert kw["qif-learnable"]["learnable"] == "channel"
    # QIF's rest slope 1 - a (u2 - u1) = 1 - 0.25 * 0.5: a LIF leak of 1/8.
    assert kw["lif-matched"]["tau"] == pytest.approx(8.0) and kw["lif-matched"]["v_rest"] == 0.0
    assert kw["lif-tau2"]["tau"] == 2.0 and cfgs[("plif", 1)].neuron == "plif"
    assert cfgs[("lif-tau2", 0)].neuron_kwargs["surrogate"] == "triangle"


def test_study_refuses_per_run_overrides_and_bad_variants(tmp_path):
    with pytest.raises(ConfigError, match="sets .*seed.* for every run"):
        plan("digits", ["qif"], [0], ["seed=3"])
    with pytest.raises(ConfigError, match="unknown study variant 'qif-x'"):
        plan("digits", ["qif-x"], [0], [])
    with pytest.raises(ConfigError, match="monotone QIF rest"):
        plan("digits", ["lif-matched"], [0], ["neuron_kwargs={a: 3.0, u2: 0.5}"])
    with pytest.raises(ConfigError, match="must not repeat"):
        plan("digits", ["qif", "qif"], [0], [])


def _fake_fit(calls, interrupt_at=None):
    """A stand-in for engine.fit that writes what a finished run leaves on disk."""
    def fit(cfg, resume=None):
        calls.append((cfg.run_name, resume not in (None, OVERWRITE)))
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        if interrupt_at == cfg.run_name:
            checkpoint.save({"model": {}, "optimizer": {}, "epoch": 0, "rng": {},
                             "config": dataclasses.asdict(cfg)}, cfg.run_dir / "last.pt")
            return RunReport(accuracy=float("nan"), epochs_completed=0, settings=to_dict(cfg),
                             interrupted=True, signal=15)
        acc = 50.0 + cfg.seed + (10 if cfg.neuron == "qif" else 0)
        (cfg.run_dir / "metrics.csv").write_text(
            "epoch,test_acc\n" + "".join(f"{e},{acc - 5 + e}\n" for e in range(cfg.epochs)))
        report = {"accuracy": acc, "best_accuracy": acc, "firing_rate": 0.1, "interrupted": False,
                  "epochs_completed": cfg.epochs, "energy_pj": {"total": 2e6}, "rank": 0,
                  "measure": {"ops": {"sops": 3e6}}, "wall_s": 1.0, "settings": to_dict(cfg),
                  "layer_firing_rates": {"body.1": 0.1, "body.3": 0.2}, "paper_accuracy": None}
        (cfg.run_dir / "report.json").write_text(json.dumps(report))
        return RunReport.from_json(report)
    return fit


def test_finished_runs_are_reused_and_interrupted_ones_resumed(tmp_path):
    calls, log = [], []
    args = ("digits", ["qif", "lif"], [0, 1], [f"out_dir={tmp_path}", "epochs=2"])
    study = run_study(*args, fit=_fake_fit(calls, interrupt_at="lif-s0"), log=log.append)
    assert study.interrupted_by == 15 and calls == [("qif-s0", False), ("qif-s1", False),
                                                    ("lif-s0", False)]
    calls.clear()
    study = run_study(*args, fit=_fake_fit(calls), log=log.append)
    assert study.interrupted_by is None
    assert calls == [("lif-s0", True), ("lif-s1", False)]  # resumed, then fresh
    assert sum("reusing" in line for line in log) == 2 and any("ETA" in line for line in log)
    saved = json.loads((study.folder / "study.json").read_text())
    summary = {row["variant"]: row for row in saved["summary"]}
    assert summary["qif"]["accuracy"] == "60.50 +- 0.71" and summary["lif"]["seeds"] == 2
    for name in ("study.md", "accuracy.png", "firing_rates.png"):
        assert (study.folder / name).stat().st_size > 500
    # A finished run of other settings is never overwritten silently, and nothing starts.
    calls.clear()
    with pytest.raises(ConfigError, match="finished run with other settings.*lr.*--overwrite"):
        run_study("digits", ["lif", "qif"], [0, 5], [f"out_dir={tmp_path}", "epochs=2",
                                                     "lr=0.1"], fit=_fake_fit(calls),
                  log=log.append)
    assert calls == []
    run_study("digits", ["qif"], [0], [f"out_dir={tmp_path}", "epochs=2", "lr=0.1"],
              overwrite=True, fit=_fake_fit(calls), log=log.append)
    assert calls == [("qif-s0", False)]


def test_finished_runs_are_reused_after_their_folder_moved(tmp_path):
    calls, log = [], []
    run_study("digits", ["qif", "lif"], [0], [f"out_dir={tmp_path / 'a'}", "epochs=2"],
              fit=_fake_fit(calls), log=log.append)
    (tmp_path / "a").rename(tmp_path / "b")
    calls.clear()
    study = run_study("digits", ["qif", "lif"], [0], [f"out_dir={tmp_path / 'b'}", "epochs=2"],
                      fit=_fake_fit(calls), log=log.append)
    assert calls == [] and len(study.runs) == 2


def test_study_cli_smoke(tmp_path, capsys):
    assert main(["study", "digits", "--smoke", "--seeds", "0", "--variants", "qif-noise",
                 "lif-matched", "--set", f"out_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "qif-noise" in out and "lif-matched" in out and "study.md" in out
    assert set(VARIANTS) >= set(STUDY)


def test_one_qif_parameter_set_by_a_dotted_key_moves_the_matched_lif_along(tmp_path):
    _, _, runs = plan("fmnist-rows-t28", ["qif-noise", "lif-matched", "lif-tau2"], [0],
                      [f"out_dir={tmp_path}", "neuron_kwargs.a=0.125"])
    kw = {v: c.neuron_kwargs for v, _, c in runs}
    assert kw["qif-noise"] == {"a": 0.125, "u1": 0.0, "u2": 0.5, "v_th": 1.0, "surrogate": "noise"}
    assert kw["lif-matched"]["tau"] == pytest.approx(16.0)  # 1 / (0.125 * 0.5)
    assert "a" not in kw["lif-tau2"] and kw["lif-tau2"]["tau"] == 2.0


def test_a_report_trains_nothing_and_names_the_runs_it_left_out(tmp_path, capsys):
    calls, log = [], []
    args = ("digits", ["qif", "lif"], [0, 1], [f"out_dir={tmp_path}", "epochs=2"])
    with pytest.raises(ConfigError, match="no finished run of this study"):
        run_study(*args, fit=_fake_fit(calls), log=log.append, report_only=True)
    run_study("digits", ["qif", "lif"], [0], args[3], fit=_fake_fit(calls), log=log.append)
    calls.clear()
    study = run_study(*args, fit=_fake_fit(calls), log=log.append, report_only=True)
    assert calls == [] and study.missing == ["qif-s1", "lif-s1"] and len(study.runs) == 2
    md = (study.folder / "study.md").read_text()
    assert "left out: qif-s1, lif-s1" in md and "| qif | qif | 1 | 60.00 |" in md
    assert "- `lif`: lif {" in md and "'tau': 2.0" in md
    with pytest.raises(ConfigError, match="cannot be combined with --overwrite"):
        run_study(*args, overwrite=True, fit=_fake_fit(calls), report_only=True)
    # The CLI: a study with nothing finished is one line and exit code 2.
    assert main(["study", "digits", "--report", "--seeds", "7", "--variants", "qif",
                 "--set", f"out_dir={tmp_path}"]) == 2
    assert "no finished run" in capsys.readouterr().err


def test_a_finished_study_rerun_with_other_epochs_is_refused_and_rewrites_nothing(tmp_path):
    """It used to 'resume' every run with nothing to train and rewrite each report.json with
    the new epochs beside the old accuracies."""
    calls, log = [], []
    args = ("digits", ["qif", "lif"], [0], [f"out_dir={tmp_path}", "epochs=2"])
    study = run_study(*args, fit=_fake_fit(calls), log=log.append)
    reports = {p: p.read_bytes() for p in study.folder.glob("*/report.json")}
    calls.clear()
    for epochs in (1, 3):
        with pytest.raises(ConfigError, match=r"finished run with other settings \(\['epochs'\]\)"):
            run_study("digits", ["qif", "lif"], [0], [f"out_dir={tmp_path}", f"epochs={epochs}"],
                      fit=_fake_fit(calls), log=log.append)
        with pytest.raises(ConfigError, match=r"other settings \(\['epochs'\]\)"):
            run_study("digits", ["qif", "lif"], [0], [f"out_dir={tmp_path}", f"epochs={epochs}"],
                      fit=_fake_fit(calls), log=log.append, report_only=True)
    assert calls == [] and reports == {p: p.read_bytes() for p in reports}


def test_an_interrupted_run_of_other_settings_is_refused_before_any_run_starts(tmp_path):
    calls, log = [], []
    args = ("digits", ["qif", "lif"], [0], [f"out_dir={tmp_path}", "epochs=2"])
    run_study(*args, fit=_fake_fit(calls, interrupt_at="lif-s0"), log=log.append)
    calls.clear()
    with pytest.raises(ConfigError, match=r"lr: 0\.002 in the run, 0\.1 given"):
        # lif-s1 (new) comes first: it would train before lif-s0's turn without the early check
        run_study("digits", ["lif"], [1, 0], [f"out_dir={tmp_path}", "epochs=2", "lr=0.1"],
                  fit=_fake_fit(calls), log=log.append)
    assert calls == []


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", ""])
def test_a_damaged_report_is_one_line_naming_it(tmp_path, capsys, content):
    calls, log = [], []
    run_study("digits", ["qif", "lif"], [0], [f"out_dir={tmp_path}", "epochs=2"],
              fit=_fake_fit(calls), log=log.append)
    damaged = tmp_path / "study-digits" / "lif-s0" / "report.json"
    damaged.write_text(content)
    base = ["study", "digits", "--seeds", "0", "--variants", "qif", "lif", "--set",
            f"out_dir={tmp_path}", "--set", "epochs=2"]
    for argv in (base, base + ["--report"]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{damaged} " in err[0] and "delete it" in err[0], err
    assert damaged.read_text() == content


def test_published_runs_of_an_earlier_version_are_reused(tmp_path):
    # runs trained before settings such as checkpoint_every, scratch and data.synthetic existed
    # (their reports lack them) are the same runs: a report over them trains nothing
    import shutil
    src = Path(__file__).resolve().parents[1] / "docs/results/studies/study-fmnist-rows-t28"
    shutil.copytree(src, tmp_path / "study-fmnist-rows-t28")
    settings = json.loads((src / "qif-band-s0" / "report.json").read_text())["settings"]
    assert "checkpoint_every" not in settings and "synthetic" not in settings["data"]
    calls = []
    study = run_study("fmnist-rows-t28", ["qif-band", "lif-matched"], [0, 1, 2],
                      [f"out_dir={tmp_path}"], fit=_fake_fit(calls), report_only=True)
    assert calls == [] and study.missing == [] and len(study.runs) == 6
