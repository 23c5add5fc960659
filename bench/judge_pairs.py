"""The detectors' weekly passes over the London year: old code against new, in one process.

A year's load is paced by the detectors, which judge it week by week (53 passes over
the 100 households). This loads the London files once with the working tree into a
private embedded PostgreSQL, keeping every ``judge`` call's inputs (the part's rows,
the profile and running state it starts from), then replays those calls with the old
tree's ``anomaly/baseline.py`` (``git show REV:...``) and the working tree's,
alternating, so drift on a shared machine falls on both. Each replay of the new code is
checked against the old: the same judged rows, the same profile slots (hours of the week
in the same order) and the same running state, or the script says what differs.

    .venv/bin/python bench/judge_pairs.py --old REV [--runs 5] [--files 100]

Only ``baseline.py`` is swapped: the rest of the package is the working tree's for both.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from common import server_home
from suite import LONDON_ARGS, SHARED

REPO = Path(__file__).resolve().parent.parent

Call = tuple[tuple[Any, ...], dict[str, Any]]


def captured_calls(files: list[Path], work: Path) -> list[Call]:
    """Every ``judge`` call of one London load by the working tree."""
    from metrify.anomaly import meters
    from metrify.cli import load_commands

    calls: list[Call] = []
    judge = meters.judge

    def keep(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return judge(*args, **kwargs)

    argv = ["ingest", "readings", *map(str, files), *LONDON_ARGS, "--json"]
    saved = sys.argv
    with server_home(None, "jpairs-pg") as (_, url):
        os.environ.update(
            METRIFY_DATABASE_URL=url,
            METRIFY_LAKE_URL=str(work / "lake"),
            METRIFY_VEE__ENABLED="true",
            METRIFY_ANOMALY__ENABLED="true",
        )
        meters.judge = keep  # type: ignore[assignment]
        sys.argv = ["metrify", *argv]
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
                contextlib.suppress(SystemExit),
            ):
                load_commands(argv)()
        finally:
            sys.argv = saved
            meters.judge = judge
    return calls


def old_module(rev: str, work: Path) -> ModuleType:
    """``metrify/anomaly/baseline.py`` as of ``rev``, loaded beside the current one."""
    source = subprocess.run(
        ["git", "show", f"{rev}:src/metrify/anomaly/baseline.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = work / "baseline_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("metrify.anomaly.baseline_old", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replay(module: ModuleType, calls: list[Call]) -> tuple[float, list[Any]]:
    """Seconds to judge every call with ``module``, and what it returned."""
    start = time.perf_counter()
    out = [module.judge(*args, **kwargs) for args, kwargs in calls]
    return time.perf_counter() - start, out


def differences(old: list[Any], new: list[Any]) -> list[str]:
    """What the new code returned unlike the old (nothing when the same)."""
    found = []
    hours = pl.col("how") < 168
    for number, (a, b) in enumerate(zip(old, new, strict=True)):
        if not a.rows.equals(b.rows):
            found.append(f"call {number}: judged rows")
        if not a.profile.filter(hours).equals(b.profile.filter(hours)) or not a.profile.sort(
            "subject_id", "how"
        ).equals(b.profile.sort("subject_id", "how")):
            found.append(f"call {number}: profile slots")
        if not a.scalars.sort("subject_id").equals(b.scalars.sort("subject_id")):
            found.append(f"call {number}: running state")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="a git revision")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()
    files = sorted((SHARED / "london-smart-meters-2013").glob("*.csv.gz"))[: args.files]
    if not files:
        sys.exit(f"no London files under {SHARED}")
    work = Path(tempfile.mkdtemp(prefix="jpairs", dir="/tmp"))
    try:
        calls = captured_calls(files, work)
        weeks = sum(
            args[0].select(pl.col("ts").dt.truncate("1w").n_unique()).item() for args, _ in calls
        )
        print(f"{len(calls)} judge calls, {weeks} weekly passes", flush=True)
        from metrify.anomaly import baseline

        old = old_module(args.old, work)
        times: dict[str, list[float]] = {"old": [], "new": []}
        for run in range(args.runs):
            seconds_old, out_old = replay(old, calls)
            seconds_new, out_new = replay(baseline, calls)
            times["old"].append(seconds_old)
            times["new"].append(seconds_new)
            print(f"run {run + 1}: old {seconds_old:.2f} s, new {seconds_new:.2f} s", flush=True)
            for problem in differences(out_old, out_new):
                print(f"  differs: {problem}")
        faster = sum(n < o for o, n in zip(times["old"], times["new"], strict=True))
        print(
            f"median old {statistics.median(times['old']):.2f} s, new "
            f"{statistics.median(times['new']):.2f} s; new faster in {faster} of {args.runs}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
