"""Install as a user would: build the wheel, install it (not editable) into a fresh venv, and
from a directory outside the repository run `quadfire info`, `quadfire recipes` and one epoch
of digits. This is what notices a kernel source or recipe missing from the package data.

The fresh venv must not download torch again (2 GB), so it sees this interpreter's
site-packages through a .pth file: torch and the other dependencies come from there, quadfire
from the wheel alone (the wheel is installed with --no-deps, and the test checks that
`quadfire` is imported from the fresh venv). A .pth line only adds the folder to sys.path; the
.pth files inside it (an editable quadfire among them) are not run.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # Built from a copy: setuptools builds in the source folder, and a build/ left there
    # from an earlier build could put files into the wheel that the sources no longer have.
    source = out / "source"
    top = {".git", ".venv", "build", "runs", "data", ".hypothesis", ".pytest_cache"}

    def ignore(folder, names):  # the checkout's own outputs, at its top level only
        local = top if Path(folder) == ROOT else set()
        return [n for n in names if n in local or n == "__pycache__" or n.endswith(".egg-info")]
    shutil.copytree(ROOT, source, ignore=ignore)
    # --no-build-isolation: build with this environment's setuptools instead of fetching one
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(source)], check=True, cwd=out,
                   env={**os.environ, "PIP_NO_INPUT": "1"})
    (path,) = out.glob("quadfire-*.whl")
    return path


def test_wheel_holds_the_shipped_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "quadfire").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules <= names, sorted(modules - names)
    csrc = {p.name for p in (ROOT / "quadfire/ops/csrc").iterdir() if p.suffix in (".cpp", ".h")}
    assert {f"quadfire/ops/csrc/{n}" for n in csrc} <= names
    recipes = {p.name for p in (ROOT / "quadfire/train/recipes").glob("*.yaml")}
    assert {f"quadfire/train/recipes/{n}" for n in recipes} <= names
    assert f"quadfire-{VERSION}.dist-info/licenses/LICENSE" in names
    meta = zipfile.ZipFile(wheel).read(f"quadfire-{VERSION}.dist-info/METADATA").decode()
    assert f"Version: {VERSION}" in meta and "License-Expression: MIT" in meta
    assert "Requires-Dist: torch<3,>=2.14" in meta or "Requires-Dist: torch>=2.14,<3" in meta


@pytest.mark.timeout(900)
def test_installed_wheel_runs_outside_the_repository(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.check_output(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, env=env)
    work = tmp_path / "elsewhere"
    work.mkdir()

    def quadfire(*args) -> str:
        done = subprocess.run([env_dir / "bin" / "quadfire", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    where = subprocess.check_output([py, "-c", "import quadfire; print(quadfire.__file__)"],
                                    cwd=work, env=env, text=True)
    assert where.startswith(str(env_dir)), where
    # The CPU kernel is built (or found in the build cache, whose key hashes the installed
    # sources) from the files in the wheel.
    info = quadfire("info", "--seconds", "0")
    assert info.startswith(f"quadfire {VERSION},") and "fused C++ kernels (built)" in info, info
    recipes = quadfire("recipes")
    assert "digits-qif" in recipes and "cifar10-resnet19-t4-qif" in recipes
    out = quadfire("train", "digits-qif", "--quiet", "--set", "epochs=1", "--set",
                   "model_kwargs={width: 4, hidden: 16}", "--set", "tensorboard=false")
    assert "digits-qif-s0: test accuracy" in out
    assert (work / "runs" / "digits-qif-s0" / "report.json").is_file()
