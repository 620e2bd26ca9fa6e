"""environment.yml (conda) and pyproject.toml (pip) must list the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells a few packages differently from PyPI
CONDA_NAMES = {"torch": "pytorch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(requirement: str) -> str:
    return requirement.strip()[len(_name(requirement)):].strip()


def _pip_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    return {_name(r): _spec(r) for r in reqs}


def _conda_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    found = {}
    for item in env["dependencies"]:
        entries = item["pip"] if isinstance(item, dict) else [item]
        for r in entries:
            if r.startswith("-e") or _name(r) in ("python", "pip"):
                continue
            found[_name(r)] = _spec(r)
    return found


def test_same_packages_and_ranges():
    pip = {CONDA_NAMES.get(k, k): v for k, v in _pip_requirements().items()}
    conda = _conda_requirements()
    assert sorted(pip) == sorted(conda), (
        f"only in pyproject: {sorted(set(pip) - set(conda))}, "
        f"only in environment.yml: {sorted(set(conda) - set(pip))}")
    assert pip == conda


def test_ranges_not_pins():
    for name, spec in _pip_requirements().items():
        assert "==" not in spec and "<" in spec and ">=" in spec, f"{name}{spec} is not a range"
