"""The set-up files agree with each other: pyproject pins == lock pins, and conda installs the lock."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lock_pins() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    return {name.lower(): version for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}


def test_every_direct_dependency_is_pinned_to_the_locked_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = project["dependencies"] + [d for deps in project["optional-dependencies"].values() for d in deps]
    locked = lock_pins()
    for requirement in direct:
        requirement = requirement.split(";", 1)[0].strip()  # uvloop==0.23.0; sys_platform != 'win32': the marker
        name, sep, version = requirement.partition("==")
        name = name.split("[", 1)[0]  # psycopg[binary]: the lock lists the distribution without its extras
        assert sep, f"{requirement!r} in pyproject.toml is not pinned with ==: pin it, then run `make lock`"
        assert locked.get(name.lower()) == version, (
            f"{name} is pinned to {version} in pyproject.toml but {locked.get(name.lower())} "
            "in requirements.lock: run `make lock`"
        )


def test_conda_environment_installs_the_lock():
    env = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in env
    assert "-r requirements.lock" in env, "environment.yml must install the same pins as the Makefile"
