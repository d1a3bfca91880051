"""The repository's tooling is consistent: every install uses the pinned
constraints, the constraints pin every declared dependency, the pre-commit
hooks run CI's gates, and the licence file is the one pyproject declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    """PEP 503 normalised project name of a requirement string."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt: not an exact pin: {line!r}"
        pins[_name(name)] = version
    return pins


def test_every_install_of_the_project_uses_the_constraints() -> None:
    files = [*sorted((ROOT / "scripts").iterdir()), ROOT / "ops" / "Dockerfile", ROOT / "README.md",
             *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "ops" / "systemd").iterdir())]
    installs = [(path.name, line) for path in files for line in path.read_text().splitlines()
                if re.search(r"\bpip3? install\b", line)]
    assert installs, "no pip install found: the scan is looking in the wrong place"
    unpinned = [(name, line) for name, line in installs if "-c constraints.txt" not in line]
    assert not unpinned


def test_constraints_pin_every_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = _pins()
    assert "sla-ledger" not in pins
    missing = [r for r in declared if _name(r) not in pins]
    assert not missing
    for requirement in declared:
        exact = re.search(r"==\s*([^,;\s]+)", requirement)
        if exact:
            assert pins[_name(requirement)] == exact.group(1), requirement


def test_pre_commit_runs_the_gates_ci_runs() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = {hook["entry"] for repo in config["repos"] for hook in repo["hooks"]}
    assert "scripts/check" in entries
    test_script = (ROOT / "scripts" / "test").read_text()
    assert "./scripts/check" in test_script
    assert ".venv/bin/pytest -q -rs" in entries
    assert ".venv/bin/pytest -q -rs" in test_script


def test_the_licence_file_is_the_declared_apache_2() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text


def test_buf_breaking_runs_against_a_committed_release_image() -> None:
    match = re.search(r"^api_baseline=(\S+)$", (ROOT / "scripts" / "check").read_text(), re.M)
    assert match
    assert (ROOT / match.group(1)).is_file()


def test_every_complexity_exception_says_why() -> None:
    marks = re.compile(r"#\s*noqa:\s*((?:C901|PLR09\d\d)(?:\s*,\s*[A-Z]+\d+)*)(.*)$")
    unexplained = []
    for top in ("ledger", "projections", "bench", "tests"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                found = marks.search(line)
                if found and len(found.group(2).strip()) < 10:
                    unexplained.append(f"{path.relative_to(ROOT)}:{number}")
    assert not unexplained
