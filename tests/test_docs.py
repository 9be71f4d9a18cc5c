"""Every shell command of README.md and docs/*.md runs, as written.

The commands are read from the ```bash blocks (a trailing backslash continues a line; a `for`
loop runs to its `done`). Each file's commands run in order, in a fresh folder, through
`quadfire.cli.main`, the function the `quadfire` script calls, and must exit with 0; a command
that is neither `quadfire ...` nor in SKIP fails the test. A file that says the sentence in
SMOKE_NOTE (add `--smoke` to any training command) has its `demo`, `train`, `study` and
`compare` commands run with `--smoke`, as it tells its reader to; nothing else is added.

SKIP names the commands too long or too demanding for the suite, each with the reason; every
entry must still match a command of the docs, so the list cannot outlive what it excuses.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from quadfire.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SMOKE_NOTE = "add `--smoke` to any `demo`, `train`, `study` or `compare` command"
TRAINING = ("demo", "train", "study", "compare")

# A pattern (re.search on the command as written) -> why the suite does not run it.
SKIP = {
    r"^make (test|bench)\b": "the test suite and the benchmarks themselves",
    r"^make (demo|fmnist)\b": "make demo sets up .venv, then runs `quadfire demo` (run here); "
                              "make fmnist installs a Debian package as root",
    r"^(pip|python3\.11|/tmp/venv-t/|TORCH_EXTENSIONS_DIR=)": "installs packages from the "
                                                              "network into other environments",
    r"\btorchrun\b": "several processes or GPUs (tests/test_ddp.py runs the 2-process CPU case)",
    r"^quadfire bench\b": "benchmarks run for minutes (tests/test_ops_bench.py and "
                          "tests/test_models_bench.py run tiny ones)",
    r"^(for .* do )?quadfire (study|compare)\b": "a study trains every variant x seed "
                                                 "(tests/test_train_study.py runs small ones; "
                                                 "`quadfire demo` here is the smallest)",
    r"^(\w+=\S+ )*quadfire train (cifar|imagenet|shd|fmnist|nmnist)(?!.*--smoke)":
        "needs a dataset that is not here, and hours (the --smoke runs of these recipes run)",
    r"^quadfire analyze run runs/(study-|sweep-)": "reads the runs of a study skipped above",
    r"^python -m sphinx\b": "builds the API reference (tests/test_docs_api.py builds it, warnings "
                            "as errors)",
    r"^quadfire analyze gradients$": "T up to 1000 for six neurons: minutes "
                                     "(tests/test_neuron_family.py runs a small case)",
}


def commands(path: Path) -> list[str]:
    """The shell commands of `path`'s bash blocks, in order, without their comments (quoted
    as the shell would need them)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        loop = []
        for line in block.replace("\\\n", " ").splitlines():
            line = " ".join(line.split())
            if not line or line.startswith("#"):
                continue
            if loop or line.startswith("for "):
                loop.append(line)
                if line.startswith("done"):
                    found.append(shlex.join(shlex.split(" ".join(loop), comments=True)))
                    loop = []
            else:
                found.append(shlex.join(shlex.split(line, comments=True)))
        assert not loop, f"{path.name}: a for loop without its done"
    return found


def skipped(command: str) -> str | None:
    return next((why for pattern, why in SKIP.items() if re.search(pattern, command)), None)


def test_commands_are_found():
    readme = commands(ROOT / "README.md")
    assert "quadfire demo" in readme and "quadfire info" in readme
    joined = commands(ROOT / "docs" / "training.md")
    assert any(c.startswith("OMP_NUM_THREADS=1 torchrun --nnodes 2") and c.endswith(
        "train digits-qif --resume auto") for c in joined)  # continuation lines are joined


def test_the_skip_list_is_short_and_used():
    every = [c for path in DOCS for c in commands(path)]
    assert len(SKIP) <= 10
    unused = [p for p in SKIP if not any(re.search(p, c) for c in every)]
    assert not unused, f"SKIP entries that match no command of the docs: {unused}"


@pytest.mark.parametrize("path", [p for p in DOCS if commands(p)], ids=lambda p: p.name)
def test_every_command_runs_as_written(path, tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.chdir(tmp_path)
    smoke = SMOKE_NOTE.lower() in " ".join(path.read_text().lower().split())
    for command in commands(path):
        if skipped(command):
            continue
        argv = shlex.split(command)
        while argv and re.fullmatch(r"\w+=\S*", argv[0]):  # VAR=value before the command
            name, value = argv.pop(0).split("=", 1)
            monkeypatch.setenv(name, value)
        assert argv and argv[0] == "quadfire", \
            f"{path.name}: {command!r} is neither a quadfire command nor in SKIP"
        args = argv[1:]
        if smoke and args[0] in TRAINING and "--smoke" not in args:
            args.append("--smoke")
        try:
            code = main(args)
        except SystemExit as e:  # argparse refused it
            code = e.code
        err = capsys.readouterr().err
        assert code == 0, f"{path.name}: {command!r} exited with {code}: {err[-2000:]}"
