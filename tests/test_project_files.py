"""The files a lab checks before adopting a library: licence, citation, changelog, and
dependency metadata that leaves the user's torch alone."""
import re
import tomllib
from importlib import metadata
from pathlib import Path

import torch
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

import quadfire
from quadfire.bench import diagnostics

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _changelog_version() -> str:
    """The newest released version in CHANGELOG.md (the first '## [x.y.z]' heading)."""
    found = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert found, "CHANGELOG.md has no released version heading '## [x.y.z] - date'"
    return found[0]


def test_one_version_everywhere():
    version = PROJECT["version"]
    assert _changelog_version() == version
    assert metadata.version("quadfire") == version == quadfire.__version__
    assert diagnostics.system_report()["versions"]["quadfire"] == version  # `quadfire info`
    assert yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"] == version


def test_license_is_mit_as_the_metadata_says():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the quadfire authors" in text
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]


def test_citation_names_quadfire_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["title"] == "quadfire"
    assert cff["license"] == PROJECT["license"]
    (paper,) = cff["references"]
    assert [a["family-names"] for a in paper["authors"]] == ["Jahns", "Moreno", "Stojkov",
                                                            "Kinsy"]
    assert {"type": "other", "value": "arXiv:2510.05168"} in paper["identifiers"]


def test_torch_is_a_range_and_the_exact_versions_are_constraints():
    """`pip install quadfire` must not replace a lab's torch: the metadata gives a range (with
    the installed torch inside it), the exact test versions live in constraints.txt, which
    every install line of the Makefile uses."""
    requires = {r.name: r for r in map(Requirement, PROJECT["dependencies"])}
    for name in ("torch", "torchvision"):
        spec = requires[name].specifier
        assert not any(s.operator in ("==", "===", "~=") for s in spec), f"{name}: {spec}"
        assert any(s.operator == ">=" for s in spec), f"{name} needs a lower bound: {spec}"
    assert Version(torch.__version__.split("+")[0]) in requires["torch"].specifier
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    for name in ("torch", "torchvision"):
        assert Version(pins[name]) in requires[name].specifier, (name, pins[name])
    installs = [line for line in (ROOT / "Makefile").read_text().splitlines()
                if "pip install" in line and "-e " in line]
    assert installs and all("-c constraints.txt" in line for line in installs), installs


def test_extras_have_no_exact_pins():
    for extra, reqs in PROJECT["optional-dependencies"].items():
        for req in map(Requirement, reqs):
            assert not any(s.operator == "==" for s in req.specifier), (extra, str(req))
