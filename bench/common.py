"""What every benchmark script reports the same way: the machine, and run statistics."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil


def machine() -> dict[str, object]:
    """The facts a reader needs to compare figures across machines."""
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


@contextlib.contextmanager
def server_home(home: Path | None, prefix: str) -> Iterator[tuple[Path, str]]:
    """(folder, database URL) of a migrated embedded PostgreSQL. A given ``home`` keeps
    the server running and its data between runs (a warmed fleet is reused); without
    one, a temporary folder is used and removed afterwards."""
    from metrify.stores import database, embedded

    folder = home or Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        url = embedded.start(folder, keep_running=home is not None)
        database.upgrade(url)
        yield folder, url
    finally:
        if home is None:
            embedded.stop(folder)
            shutil.rmtree(folder, ignore_errors=True)


def stats(values: list[float]) -> dict[str, float]:
    """Median of several runs, with min and max so the spread is visible."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# Spawns the measured command and reports its own peak RSS. A child forked straight from
# a large process starts with that process's high-water mark (Linux carries ``maxrss``
# over ``fork`` + ``exec``), so a measured child must come from a small process.
# With a timeout it kills the command when the time is up, and still reports its memory.
_LAUNCHER = """
import json, os, signal, sys, time
timed_out = False
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[3], sys.argv[3:])
    finally:
        os._exit(127)
def stop(*_):
    global timed_out
    timed_out = True
    os.kill(pid, signal.SIGKILL)
if float(sys.argv[2]) > 0:
    signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, float(sys.argv[2]))
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
signal.setitimer(signal.ITIMER_REAL, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    json.dump({"seconds": seconds, "status": code, "maxrss_kib": usage.ru_maxrss,
               "timed_out": timed_out}, out)
sys.exit(code if 0 <= code < 256 else 1)
"""


def run_child(
    command: list[str],
    env: dict[str, str] | None = None,
    *,
    quiet: bool = False,
    timeout: float = 0,
) -> dict[str, Any]:
    """Run one measured process; return its seconds, exit status, output and peak RSS.

    The peak RSS is the child's own high-water mark (``ru_maxrss`` from ``os.wait4``, as
    ``bench/ingest.py`` does), read by a small launcher process so that the driver's own
    memory does not leak into the figure. Output goes to temporary files (no pipe to
    drain while the clock runs); ``quiet`` keeps the child's stderr off the console (it
    is returned either way when captured). ``timeout`` > 0 kills the command after that
    many seconds (``timed_out`` is then true).
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(suffix=".json") as report,
    ):
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, report.name, str(timeout), *command]
        proc = subprocess.Popen(launcher, env=env, stdout=out, stderr=err if quiet else None)
        proc.wait()
        facts = json.loads(Path(report.name).read_text() or "{}")
        out.seek(0)
        err.seek(0)
        return {
            "seconds": facts.get("seconds", 0.0),
            "status": facts.get("status", proc.returncode),
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace") if quiet else "",
            "peak_rss_mib": facts.get("maxrss_kib", 0) / 1024,
            "timed_out": facts.get("timed_out", False),
        }


def ensure_venv(venv: Path, requirements: Path, base: str, log: Any) -> Path:
    """A peer tool's own venv, (re)built with ``base`` (a Python interpreter) from its
    pinned ``requirements`` when they change; its interpreter. Peers live apart from the
    project's venv because their pins clash with ours (and some need another Python)."""
    import hashlib

    python = venv / "bin" / "python"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".requirements.sha256"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    log(f"building {venv.name} from {requirements.name} with {base} ...")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    with open(venv / "install.log", "w") as logfile:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r",
             str(requirements)],
            stdout=logfile, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"installing {requirements.name} failed; see {venv / 'install.log'}")
    stamp.write_text(digest + "\n")
    return python


def base_python(version: str = "3.11") -> str:
    """The interpreter a peer venv is built from: this one's base for 3.11, else the
    newest ``python<version>`` found (pyenv first)."""
    if version == f"{sys.version_info[0]}.{sys.version_info[1]}":
        return getattr(sys, "_base_executable", None) or sys.executable
    found = sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))
    return str(found[-1]) if found else shutil.which(f"python{version}") or f"python{version}"


def byte_compiled(src: Path) -> None:
    """Byte-compile a source tree once per process before it is timed.

    pip byte-compiles what it installs, so a user's ``metrify`` starts from cached
    bytecode, as the peers' packages do here; a source tree on a machine that sets
    ``PYTHONDONTWRITEBYTECODE`` (this one does) would otherwise compile all of
    Metrify's modules on every run (about 0.25 s of each command's start)."""
    if src in _COMPILED:
        return
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=False)
    _COMPILED.add(src)


_COMPILED: set[Path] = set()


def timed_child(
    python: str, code: str, *args: str, pythonpath: str | None = None
) -> tuple[float, int]:
    """Run ``code`` in a fresh ``python``; it prints its own seconds and row count."""
    env = {**os.environ}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run(
        [python, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def rotated_rounds(
    cases: dict[str, Any], runs: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Each case run ``runs`` times, the order rotating each round (so no case always
    runs first on a cold cache); each case returns ``(seconds, rows)``."""
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    rows: dict[str, int] = {}
    names = list(cases)
    for run in range(runs):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            took, count = cases[name]()
            seconds[name].append(took)
            rows[name] = count
            print(f"run {run + 1} {name}: {took:.2f} s, {count:,} rows", flush=True)
    return seconds, rows


def timing_table(
    lines: list[str],
    seconds: dict[str, list[float]],
    cells: Any,
    out: Path | None,
) -> None:
    """Finish a results page of :func:`rotated_rounds`: a row per case (median and span,
    then ``cells(name, median)``, the case's own rate and output columns), printed,
    written to ``out`` if given, and the medians as one JSON line."""
    for name, runs in seconds.items():
        median = statistics.median(runs)
        span = f"{min(runs):.2f}..{max(runs):.2f}"
        lines.append(f"| {name} | {median:.2f} ({span}) | {cells(name, median)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        out.write_text(text)
    print(json.dumps({n: statistics.median(r) for n, r in seconds.items()}))
