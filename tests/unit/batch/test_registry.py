"""The list of batch jobs, data intervals, and the report's Markdown: no database."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from metrify.batch import registry
from metrify.batch.context import interval_of
from metrify.batch.quality_report import markdown
from metrify.batch.runner import days, select


def test_each_need_is_an_earlier_job() -> None:
    """The CLI runs jobs in list order and holds back a job whose need failed before it;
    a need listed after its job would never be checked."""
    names = registry.job_names()
    assert len(set(names)) == len(names)
    for i, job in enumerate(registry.JOBS):
        assert set(job.needs) <= set(names[:i]), job


def test_the_registry_imports_only_the_standard_library() -> None:
    """Airflow's environment reads it by path, without Metrify's dependencies."""
    tree = ast.parse(Path(registry.__file__).read_text())
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported <= {"__future__", "dataclasses"}


def test_select_keeps_the_run_order_and_refuses_unknown_jobs() -> None:
    assert [j.name for j in select(["quality", "aggregates"])] == ["aggregates", "quality"]
    assert [j.name for j in select(None)] == registry.job_names()
    with pytest.raises(ValueError, match="unknown job 'vacuum'"):
        select(["vacuum"])


def test_intervals_are_whole_utc_days() -> None:
    got = interval_of("2013-03-05T00:00:00+00:00")
    assert got.start == dt.datetime(2013, 3, 5, tzinfo=dt.UTC)
    assert got.end == dt.datetime(2013, 3, 6, tzinfo=dt.UTC)
    # midnight in another zone is not a UTC day's start
    assert interval_of("2013-03-05T01:00:00+01:00").day == dt.date(2013, 3, 5)
    with pytest.raises(ValueError, match="UTC midnight"):
        interval_of("2013-03-05T00:00:00+01:00")
    assert interval_of(dt.date(2013, 3, 5)) == got
    assert [i.day for i in days(dt.date(2013, 3, 30), dt.date(2013, 4, 1))] == [
        dt.date(2013, 3, 30),
        dt.date(2013, 3, 31),
        dt.date(2013, 4, 1),
    ]


def test_markdown_escapes_free_text_and_lists_each_region() -> None:
    row = {
        "meters": 1, "expected": 48, "present": 47, "valid": 46, "estimated": 1,
        "suspect": 0, "rejected": 0, "missing": 1, "completeness": 47 / 48, "score": 96.9,
        "import_kwh": 12.5,
    }  # fmt: skip
    page = markdown(
        {
            "day": "2013-03-05",
            "fleet": row,
            "regions": [{**row, "region": "north|east"}],
            "worst": [{**row, "meter_id": "M1", "region": "north|east"}],
        }
    )
    assert "| north\\|east | 1 | 48 | 46 | 1 | 0 | 0 | 1 | 97.9 % | 96.9 | 12.500 |" in page
    assert "| `M1` | north\\|east |" in page


def test_a_result_is_described_as_json_safe_values() -> None:
    """Airflow hands a task's return value on as JSON: a path in a job's result (dbt's
    target folder) once failed every dbt task after the job itself had succeeded."""
    import dataclasses
    import json
    from pathlib import Path

    from metrify.batch.context import describe

    @dataclasses.dataclass
    class Result:
        target_path: Path
        nodes: list[dict[str, object]]

    described = describe(Result(Path("/w/dbt/target"), [{"status": "pass", "seconds": 0.5}]))
    assert described == {
        "target_path": "/w/dbt/target",
        "nodes": [{"status": "pass", "seconds": 0.5}],
    }
    assert json.loads(json.dumps(described)) == described
