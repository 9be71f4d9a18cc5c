"""Every command, fed bad arguments, ends the same way: exit code 2 and exactly one line on
stderr that starts with ``quadfire``, never a traceback.

The property test draws, for each command and subcommand, an argument list that holds at
least one mistake (a wrong type, a number out of range, nan or inf, a missing file, a file
where a folder is meant, a folder where a file is meant, a config value that cannot be, a dict
set whole and by one of its keys, a model too large for memory, a resume that changes a
setting the run cannot change, a run whose metrics.csv or report.json is damaged) among
otherwise valid arguments. Every drawn call fails before any training, analysis or benchmark
starts; it runs in-process through `quadfire.cli.main`.
"""
import contextlib
import io
import os
import shutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quadfire.cli import main

from system import always_overcommit

# "cuda" is a mistake only where there is no GPU; elsewhere it would start real work.
NO_CUDA = [] if torch.cuda.is_available() else ["cuda"]


# A model too large for memory (100 TB for one weight): refused at once by the allocator,
# except where the kernel grants any allocation and filling it would meet the OOM killer.
TOO_LARGE = [] if always_overcommit() else ["{width: 8, hidden: 100000000000}"]
ARGV_CHARACTERS = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
NUMBERS = ["nan", "inf", "-inf", "abc", "", "1e999", "0x10", "1,5", "[1]", "None"]
# --set KEY=VALUE mistakes: each value is wrong for its key.
BAD_SETTINGS = {
    "lr": ["inf", "nan", "-inf", "0", "-1", "abc", "1e999"],
    "weight_decay": ["inf", "nan", "-1e-3", "abc"],
    "momentum": ["1", "1.5", "-0.1", "nan"],
    "T": ["0", "-1", "10001", "2.5", "abc", "1e999"],
    "epochs": ["0", "-3", "2.5", "abc", "1000001"],
    "seed": ["-1", "4294967296", "abc"],
    "warmup_epochs": ["-1", "nan", "1e9"],
    "label_smoothing": ["1", "-0.1", "nan"],
    "grad_clip": ["-1", "inf"],
    "tet_lambda": ["2", "-1"],
    "min_lr": ["-1", "1e9"],
    "paper_accuracy": ["101", "nan", "abc"],
    "device": ["xyz", "cuda:abc", "", *NO_CUDA],
    "amp": ["fp8"], "optimizer": ["rmsprop"], "loss": ["mse"], "nonfinite": ["ignore"],
    "model": ["nope", "[1]"], "neuron": ["nope"],
    "neuron_kwargs": ["{a: -1}", "{aa: 1}", "{surrogate_width: x}", "{a: [1}", "[1]",
                      "{v_th: abc}", "{surrogate: noise, sigma: '1'}", "{learnable: maybe}",
                      "{a: 0.001, learnable: scalar, u2: 1.5}", "{1: 2, b: 3}"],
    "model_kwargs": ["{width: '8'}", "{width: 0}", "{nope: 1}", "{width: [}", "{width: 1.5}",
                     *TOO_LARGE],
    "data.batch_size": ["0", "-1", "1.5", "99999999999"],
    "data.workers": ["-1", "1000", "x"],
    "data.seed": ["-1"], "data.dataset": ["nope", "[1]"], "data.download": ["maybe"],
    "data.frame_size": ["0"], "data.cutout": ["-1"],
    "lrr": ["1"], "data.nope": ["1"], "data": ["5"], "lr.x": ["1"],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A smoke run to point commands at, and paths of every wrong kind."""
    root = tmp_path_factory.mktemp("cli")
    assert main(["train", "digits-qif", "--smoke", "--set", f"out_dir={root / 'runs'}"]) == 0
    (root / "file.txt").write_text("not a folder")
    (root / "garbage.pt").write_bytes(b"\x00garbage" * 10)
    (root / "empty").mkdir()
    (root / "bad.yaml").write_text("extends: 5\n")
    (root / "list.yaml").write_text("- a\n- b\n")
    # a copy of the run whose metrics.csv is damaged: resuming it must name the file
    damaged = root / "damaged"
    shutil.copytree(root / "runs" / "digits-qif-s0", damaged)
    (damaged / "metrics.csv").write_bytes(b"\x00\xff not a metrics file\n1,2\n")
    # a study whose one finished run has a damaged report.json
    report = root / "damaged-study" / "study-digits" / "qif-s0" / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text('{"accuracy": 50, "settings": ')
    return {"run": str(root / "runs" / "digits-qif-s0"), "root": root,
            "damaged": str(damaged / "last.pt"), "damaged_study": str(root / "damaged-study"),
            "file": str(root / "file.txt"), "in_file": str(root / "file.txt" / "x.png"),
            "folder": str(root / "empty"), "garbage": str(root / "garbage.pt"),
            "missing": str(root / "missing" / "nothing.pt"), "out": str(root / "out" / "o.png"),
            "outdir": str(root / "outdir"), "json": str(root / "bench.json"),
            "long": str(root / ("x" * 300) / "o.png")}  # a name too long for the file system


def bad_set(draw):
    key = draw(st.sampled_from(sorted(BAD_SETTINGS)))
    value = draw(st.sampled_from(BAD_SETTINGS[key]))
    return ["--set", f"{key}={value}"]


def bad_sets(draw, w, writes_runs=True):
    """At least one bad --set (or a malformed one, or, for commands that write run
    directories, out_dir pointing at a file)."""
    first = draw(st.sampled_from(["bad", "bad", "bad", "nokey", "whole-and-key"]
                                 + ["outfile"] * writes_runs))
    # a dict set both whole and by one of its keys, in either order
    both = draw(st.permutations(["neuron_kwargs.u2=0.6", "neuron_kwargs={a: 0.2}"]))
    parts = {"bad": bad_set(draw), "nokey": ["--set", "lr"],
             "whole-and-key": ["--set", both[0], "--set", both[1]],
             "outfile": ["--set", f"out_dir={w['file']}"]}[first]
    # then maybe anything at all for some key: the first mistake guarantees a failure, this
    # one explores what else a value can be (argv strings hold no NUL)
    key = draw(st.sampled_from(sorted(BAD_SETTINGS)))
    anything = ["--set", f"{key}={draw(st.text(ARGV_CHARACTERS, max_size=12))}"]
    return parts + draw(st.sampled_from([[], ["--set", "epochs=1"], bad_set(draw), anything]))


def train_args(draw, w):
    recipe = draw(st.sampled_from(["digits-qif", "digits-qif", "nope", w["missing"],
                                   str(w["root"] / "bad.yaml"), str(w["root"] / "list.yaml"),
                                   w["file"]]))
    valid = recipe == "digits-qif"
    extra = draw(st.sampled_from([[], ["--smoke"], ["--overwrite"]]))
    if valid or draw(st.booleans()):
        extra += bad_sets(draw, w) if draw(st.integers(0, 3)) else \
            ["--resume", draw(st.sampled_from([w["missing"], w["garbage"], w["folder"]]))]
    return ["train", recipe, *extra]


# Settings a resumed run may not change (docs/training.md), each with a value other than the
# world's smoke run has.
RESUME_CHANGES = ["neuron=lif", "epochs=5", "T=2", "data.batch_size=3", "model=csnn",
                  "data.dataset=fashion-mnist", "lr=0.5", "neuron_kwargs.a=0.5", "seed=1"]


def train_resume_args(draw, w):
    if draw(st.booleans()):  # the world's own run, continued with a setting it cannot change
        change = draw(st.sampled_from(RESUME_CHANGES))
        return ["train", "--resume", os.path.join(w["run"], "last.pt"), "--set", change]
    if draw(st.booleans()):  # the damaged copy, resumed in its own folder
        return ["train", "--resume", w["damaged"], "--set", f"out_dir={w['root']}", "--set",
                "run_name=damaged"]
    return ["train", "--resume", draw(st.sampled_from([w["missing"], w["garbage"], w["folder"],
                                                      w["file"], w["long"]]))]


def eval_args(draw, w):
    path = draw(st.sampled_from([w["run"], w["run"], w["missing"], w["folder"], w["garbage"],
                                 w["file"], w["long"]]))
    extra = draw(st.sampled_from([[], ["--smoke"]]))
    if path == w["run"] or draw(st.booleans()):
        mistakes = [["--batches", draw(st.sampled_from(["0", "-1", "x", "1e3"]))],
                    bad_sets(draw, w, writes_runs=False), ["--set", "model=vggsnn"],
                    ["--set", "model_kwargs={width: 4}"]]
        if not extra:  # --smoke evaluates on random inputs: the dataset does not matter
            mistakes.append(["--set", "data.dataset=cifar10", "--set", f"data.root={w['folder']}"])
        extra += draw(st.sampled_from(mistakes))
    return ["eval", path, *extra]


def study_mistakes(draw, w, command: str, extra_mistakes=()):
    """`quadfire compare|study RECIPE` with a wrong recipe or a bad option (study and compare
    share one code path, so they share one set of mistakes)."""
    recipe = draw(st.sampled_from(["digits", "nope"]))
    extra = []
    if recipe == "digits" or draw(st.booleans()):
        extra = draw(st.sampled_from([
            ["--seeds", draw(st.sampled_from(["-1", "x", "4294967296", "1.5"]))],
            ["--seeds", "0", "0"], *extra_mistakes, bad_sets(draw, w)]))
    return [command, recipe, *extra]


def compare_args(draw, w):
    return study_mistakes(draw, w, "compare")


def recipes_args(draw, w):
    return ["recipes", draw(st.sampled_from(["extra", "--smoke", "--set", "-x"]))]


QIF = {"--a": ["0.25", "0.1"], "--u1": ["0", "-0.1"], "--u2": ["0.5", "0.4"],
       "--v-th": ["1", "1.2"]}
BAD_QIF = {"--a": NUMBERS + ["5", "-1", "0"], "--u1": NUMBERS + ["0.7", "2"],
           "--u2": NUMBERS + ["1.5", "-0.5"], "--v-th": NUMBERS + ["0.3", "-1"]}


def options(draw, good: dict, bad: dict):
    """Some options from `good`, and at least one from `bad`."""
    chosen = draw(st.lists(st.sampled_from(sorted(good)), unique=True, max_size=len(good))) \
        if good else []
    wrong = draw(st.lists(st.sampled_from(sorted(bad)), unique=True, min_size=1, max_size=2))
    out = []
    for name in chosen:
        if name not in wrong:
            out += [name, draw(st.sampled_from(good[name]))]
    for name in wrong:
        out += [name, draw(st.sampled_from(bad[name]))]
    return out


def neuron_args(draw, w):
    out = draw(st.sampled_from([[], ["--out", w["outdir"]]]))
    bad = dict(BAD_QIF, **{"--out": [w["file"], w["in_file"], w["long"]]})
    return ["analyze", "neuron", *options(draw, QIF, bad), *out]


def mismatch_args(draw, w):
    good = dict(QIF, **{"--T": ["2"], "--neurons": ["8"], "--pairs": ["100"], "--batches": ["2"],
                        "--batch": ["4"], "--shape": ["rect", "atan"], "--seed": ["1"],
                        "--sigma": ["0.5"], "--rho": ["0.3"]})
    bad = dict(BAD_QIF, **{
        "--sigma": NUMBERS + ["0", "-1"], "--rho": NUMBERS + ["1", "-0.1"],
        "--T": NUMBERS + ["0", "1001", "-1"], "--neurons": NUMBERS + ["0", "999999"],
        "--batch": ["0", "x"], "--batches": ["0", "-2"], "--pairs": ["0", "1e9"],
        "--seed": ["-1", "x"], "--shape": ["box"], "--out": [w["file"], w["in_file"]]})
    extra = draw(st.sampled_from([[], ["--factors", draw(st.sampled_from(["0", "-1", "nan", "x"]))],
                                  ["--T", "1000", "--neurons", "100000"]]))
    return ["analyze", "mismatch", *options(draw, good, bad), *extra]


def analyze_run_args(draw, w):
    run = draw(st.sampled_from([w["run"], w["run"], w["missing"], w["folder"], w["garbage"],
                                w["file"], w["long"]]))
    good = {"--batches": ["1"], "--pairs": ["100"], "--out": [str(w["root"] / "layers.json")]}
    bad = {"--batches": ["0", "-1", "x", "1e3"], "--pairs": ["1", "0", "x"],
           "--out": [w["folder"], w["in_file"], w["long"]]}
    smoke = ["--smoke"] if draw(st.booleans()) else []
    extra = options(draw, good, bad) if run == w["run"] or draw(st.booleans()) else []
    return ["analyze", "run", run, *smoke, *extra]


def study_args(draw, w):
    damaged = ["--variants", "qif", "--seeds", "0", "--set", f"out_dir={w['damaged_study']}"]
    return study_mistakes(draw, w, "study", (["--variants", "qif", "nope"],
                                             ["--variants", "lif", "lif"], damaged,
                                             damaged + ["--report"]))


def plot_args(draw, w):
    what = draw(st.sampled_from(["raster", "traces", "curves"]))
    run = draw(st.sampled_from([w["run"], w["run"], w["missing"], w["folder"], w["file"],
                                w["long"]]))
    if what == "curves":
        bad = {"--out": [w["folder"], w["in_file"], w["long"]]}
        extra = [] if run != w["run"] else options(draw, {}, bad)
        return ["plot", "curves", run, *extra]
    good = {"--sample": ["0", "1"], "--out": [w["out"]]}
    bad = {"--sample": ["-1", "x", "99999", "1.5"],
           "--out": [w["folder"], w["in_file"], w["long"]]}
    if what == "raster":
        good["--max-neurons"] = ["8"]
        bad.update({"--max-neurons": ["0", "-1", "x"], "--layers": ["nope", "body.0"]})
    else:
        good["--layer"] = ["body.1"]
        bad.update({"--neurons": ["-1", "x", "999999"], "--layer": ["nope", "body.0"]})
    smoke = ["--smoke"] if draw(st.booleans()) else []
    extra = options(draw, good, bad) if run == w["run"] or draw(st.booleans()) else []
    return ["plot", what, run, *smoke, *extra]


def export_args(draw, w):
    run = draw(st.sampled_from([w["run"], w["run"], w["missing"], w["folder"], w["garbage"]]))
    good = {"--out": [str(w["root"] / "net.nir")], "--dt": ["1", "0.5"],
            "--input-shape": ["1,8,8"]}
    bad = {"--out": [w["folder"], w["in_file"], w["long"]], "--dt": NUMBERS + ["0", "-1"],
           "--input-shape": ["abc", "0,8,8", "1,2,3,4,5", "3,8,8", "1,16,16", "1,8", ""],
           "--format": ["onnx", "NIR"]}
    extra = options(draw, good, bad) if run == w["run"] or draw(st.booleans()) else []
    return ["export", run, "--format", "nir", *extra]


def bench_args(draw, w):
    which = draw(st.sampled_from(["neurons", "models"]))
    if which == "neurons":
        good = {"--neurons": ["4096"], "--steps": ["2"], "--repeats": ["1"], "--threads": ["1"],
                "--rows": ["copy"], "--budget": ["1"], "--timeout": ["10"]}
        bad = {"--neurons": NUMBERS + ["0", "-1", "999999999999", "268435457"],
               "--steps": ["0", "-1", "4097", "x"], "--repeats": ["0", "x"],
               "--budget": ["nan", "-1", "inf"], "--threads": ["0", "x"],
               "--device": ["xyz", *NO_CUDA], "--timeout": ["0", "nan"],
               "--json": [w["folder"], w["in_file"], w["missing"], w["long"]],
               "--rows": ["nope"]}
    else:
        good = {"--T": ["1"], "--batch": ["1"], "--size": ["8"], "--steps": ["1"],
                "--warmup": ["1"], "--threads": ["1"], "--rows": ["quadfire"]}
        bad = {"--T": ["0", "257", "x"], "--batch": ["0", "-1", "5000"],
               "--size": ["0", "3", "99999"], "--steps": ["0"], "--warmup": ["0"],
               "--threads": ["0"], "--rows": ["nope", ""],
               "--json": [w["folder"], w["in_file"], w["missing"]]}
    return ["bench", which, *options(draw, good, bad)]


COMMANDS = {"train": train_args, "train --resume": train_resume_args, "eval": eval_args,
            "compare": compare_args, "recipes": recipes_args, "analyze neuron": neuron_args,
            "analyze mismatch": mismatch_args, "analyze run": analyze_run_args,
            "study": study_args, "plot": plot_args, "export": export_args,
            "bench": bench_args}


@st.composite
def bad_command(draw, w):
    return COMMANDS[draw(st.sampled_from(sorted(COMMANDS)))](draw, w)


def run_cli(argv):
    """(exit code, stdout, stderr) of ``quadfire ARGV`` run in-process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse
            code = e.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(argv):
    code, out, err = run_cli(argv)
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err[-3000:])
    assert len(lines) == 1 and lines[0].startswith("quadfire"), (argv, err[-3000:])
    assert "Traceback" not in err + out, argv


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_arguments_end_in_one_line_and_exit_2(world, tmp_path_factory, data):
    argv = data.draw(bad_command(world), label="argv")
    cwd = os.getcwd()
    os.chdir(world["root"])  # default outputs (runs/, analysis/) land in the scratch folder
    try:
        assert_one_line_error(argv)
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("argv", [
    ["analyze", "mismatch", "--T", "0"], ["analyze", "mismatch", "--neurons", "0"],
    ["analyze", "mismatch", "--sigma", "-1"], ["analyze", "mismatch", "--neurons", "999999"],
    ["export", "RUN", "--format", "nir", "--dt", "0"],
    ["export", "RUN", "--format", "nir", "--dt", "nan"],
    ["export", "RUN", "--format", "nir", "--input-shape", "abc"],
    ["plot", "raster", "RUN", "--sample", "-1"],
    ["plot", "raster", "RUN", "--out", "FOLDER"], ["analyze", "neuron", "--out", "FILE"],
    ["bench", "neurons", "--json", "FOLDER"], ["bench", "models", "--json", "FOLDER"],
    ["train", "digits-qif", "--set", "lr=inf"], ["train", "digits-qif", "--set", "device=xyz"],
    ["train", "digits-qif", "--set", "out_dir=FILE"],
    ["train", "digits-qif", "--set", "neuron_kwargs={a: [1}"],
    ["train", "digits-qif", "--set", "neuron_kwargs.u2=0.6", "--set", "neuron_kwargs={a: 0.2}"],
    ["train", "digits-qif", "--set", "neuron_kwargs={a: 0.2}", "--set", "neuron_kwargs.u2=0.6"],
])
def test_the_issue_examples(world, argv):
    """The cases the issue names, each checked by name (the property test draws them too)."""
    for name in ("RUN", "FOLDER", "FILE"):
        argv = [a.replace(name, world[name.lower()]) for a in argv]
    assert_one_line_error(argv)


def test_bench_json_to_a_folder_fails_before_the_benchmark(world, monkeypatch):
    from quadfire.bench import models, neurons
    monkeypatch.setattr(neurons, "_run_row", lambda *a: pytest.fail("benchmark ran"))
    monkeypatch.setattr(models, "run_row", lambda *a: pytest.fail("benchmark ran"))
    for which in ("neurons", "models"):
        assert_one_line_error(["bench", which, "--json", world["folder"]])
