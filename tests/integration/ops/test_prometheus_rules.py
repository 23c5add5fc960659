"""The Prometheus rules in ``deploy/prometheus``: valid, unit-tested with promtool, and
naming only metrics the code exports.

promtool is Debian's ``prometheus`` package. Missing, these tests skip on a workstation
and fail under ``CI=true`` (CI installs it).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from metrify.batch.context import Interval, JobContext, Outcome
from metrify.batch.registry import JobSpec, spec
from metrify.batch.runner import run_jobs
from metrify.contracts.records import READING
from metrify.contracts.summary import Summary
from metrify.ops import metrics
from metrify.pipeline.session import ingest_files, open_session
from metrify.settings import Settings
from metrify.sources.mapping import Mapping
from support.api import running_api
from support.paths import REPO

RULES_DIR = REPO / "deploy" / "prometheus"
RULES = RULES_DIR / "metrify.rules.yml"
#: a metric name in an expression: metrify_ then name characters (recording rules'
#: names have colons, metrify:...)
NAME = re.compile(r"\b(metrify_[a-z0-9_]+)\b(\{[^}]*\})?")
LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (Debian package prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120
    )


def test_rules_and_config_are_valid() -> None:
    done = _run("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    done = _run("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass() -> None:
    tests = sorted(str(p.relative_to(RULES_DIR)) for p in (RULES_DIR / "tests").glob("*.yml"))
    assert tests, "no promtool tests"
    done = _run("test", "rules", *tests)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_unit_test() -> None:
    alerts = {r["alert"] for g in _groups() for r in g["rules"] if "alert" in r}
    tested: set[str] = set()
    for path in (RULES_DIR / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check["exp_alerts"]:  # a test that sees it fire
                    tested.add(check["alertname"])
    assert alerts - tested == set()
    assert len(alerts) >= 9


def _groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def _used() -> dict[str, set[str]]:
    """Each metric the rules' expressions name, with the label names they use on it."""
    used: dict[str, set[str]] = {}
    for group in _groups():
        for rule in group["rules"]:
            expr = rule["expr"]
            grouped = {x.strip() for m in BY.finditer(expr) for x in m.group(1).split(",")}
            for match in NAME.finditer(expr):
                labels = used.setdefault(match.group(1), set())
                if match.group(2):
                    labels.update(LABEL.findall(match.group(2)))
                # labels grouped by in a rule over one metric belong to it
                labels.update(x for x in grouped if x and x != "le")
    return used


def _boom(ctx: JobContext) -> Outcome:
    raise RuntimeError("the job failed on purpose")


class _Consumer:
    """What update_lag asks of a confluent-kafka consumer: one partition, 40 behind."""

    def assignment(self) -> list[Any]:
        from confluent_kafka import TopicPartition

        return [TopicPartition("metrify.readings", 0)]

    def position(self, partitions: list[Any]) -> list[Any]:
        from confluent_kafka import TopicPartition

        return [TopicPartition(tp.topic, tp.partition, 60) for tp in partitions]

    def get_watermark_offsets(self, tp: Any, cached: bool = False) -> tuple[int, int]:
        return (0, 100)


def test_every_metric_the_rules_name_is_exported(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """Run the code of each process (a file load, a batch run, the API, the worker's
    metric updates), then every name and label the rules use must be in the registry."""
    # a file load: two good rows, one without a key (quarantined)
    data = tmp_path / "readings.csv"
    data.write_text(
        "meter_id,ts,interval_s,import_kwh\n"
        "RULE-M1,2024-01-01T00:00:00Z,900,0.5\n"
        "RULE-M1,2024-01-01T00:15:00Z,900,0.6\n"
        ",2024-01-01T00:30:00Z,900,0.7\n"
    )
    day = Interval(dt.date(2024, 1, 1))
    with open_session(settings) as session:
        summary = ingest_files(session, READING, [data], Mapping())
        assert (summary.read, summary.quarantined) == (3, 1)
        runs = run_jobs(
            settings,
            session.conn,
            session.lake,
            [day],
            [spec("aggregates"), JobSpec("rules-boom", f"{__name__}:_boom", "fails")],
        )
    assert [r.status for r in runs] == ["ok", "failed"]
    # the stream worker's updates
    metrics.update_lag(_Consumer())  # type: ignore[arg-type]
    metrics.count_records([Summary(kind="readings", statuses={"valid": 3})])
    # the API: a request to a route
    with running_api(database_url, tmp_path, clean=False) as api:
        assert api.client.get("/health").status_code == 200
        scraped = api.client.get("/metrics").text

    families = list(text_string_to_metric_families(generate_latest(REGISTRY).decode()))
    exported: dict[str, set[str]] = {}
    for family in families:
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    used = _used()
    assert "metrify_job_last_success_timestamp_seconds" in used  # the parse found names
    missing = sorted(set(used) - set(exported))
    assert missing == [], f"rules name metrics the code does not export: {missing}"
    wrong = {n: sorted(labels - exported[n]) for n, labels in used.items() if labels - exported[n]}
    assert wrong == {}, f"rules use labels these metrics lack: {wrong}"
    # values the rules rely on, computed from the input above
    assert (
        REGISTRY.get_sample_value(
            "metrify_consumer_lag", {"topic": "metrify.readings", "partition": "0"}
        )
        == 100 - 60
    )
    assert "metrify_api_requests_total" in scraped  # the API's /metrics shows its own
