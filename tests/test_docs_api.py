"""The API reference (docs/api, Sphinx autodoc + napoleon) builds from the docstrings with
warnings as errors, documents every module of the package, and docs/index.md gives every
guide in docs/ a place in the reading order."""
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import quadfire

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> set[str]:
    """Every module of the package except ``__main__`` (importing it would run the CLI)."""
    found = {"quadfire"}
    for info in pkgutil.walk_packages(quadfire.__path__, "quadfire."):
        if not info.name.endswith(".__main__"):
            found.add(info.name)
    return found


@pytest.mark.timeout(240)
def test_api_reference_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("sphinx", reason="the docs extra is not installed: "
                                         "pip install -c constraints.txt -e '.[docs]'")
    # A copy: autosummary writes its generated pages into the source folder.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "docs" / "api", src, ignore=shutil.ignore_patterns("generated", "_build"))
    out = tmp_path / "html"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           str(src), str(out)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stderr == "", done.stderr[-4000:]  # -q prints warnings only
    pages = {p.stem for p in (out / "generated").glob("*.html")}
    assert pages == _modules(), {"missing": _modules() - pages, "extra": pages - _modules()}
    # autodoc really read the docstrings, napoleon turned Args/Returns into field lists
    qif = (out / "generated" / "quadfire.neurons.qif.html").read_text()
    assert "Discretized QIF neuron over" in qif and "Parameters" in qif


def test_reading_order_names_every_guide_once():
    index = (ROOT / "docs" / "index.md").read_text()
    linked = re.findall(r"\]\((?:docs/)?([\w-]+\.md)\)", index)
    guides = sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name != "index.md")
    assert sorted(set(linked) - {"README.md"}) == guides
    order = [name for name in linked if name != "README.md"]
    assert len(order) == len(set(order)), f"a guide is listed twice: {order}"
