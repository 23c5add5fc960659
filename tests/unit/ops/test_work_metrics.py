"""The metrics of file loads and batch jobs: counted once, and summed right when several
processes write into one ``PROMETHEUS_MULTIPROC_DIR``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from metrify.contracts.summary import Summary
from metrify.ops import exposition, metrics
from support.server import free_port


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_load_counts_what_was_added_since_the_last_update() -> None:
    kind = "unit-load"  # a kind of its own: the registry is shared by every test
    counter = metrics.LoadCounter(kind)
    summary = Summary(kind=kind, read=100, inserted=60, updated=5, unchanged=30, quarantined=5)
    counter.update(summary)
    counter.update(summary)  # nothing new: nothing counted again
    summary.read, summary.inserted, summary.quarantined = 250, 180, 12
    counter.update(summary)
    counter.file_done(True)
    counter.file_done(False)
    assert _value("metrify_load_rows_total", kind=kind, outcome="read") == 250
    assert _value("metrify_load_rows_total", kind=kind, outcome="stored") == 180 + 5
    assert _value("metrify_load_rows_total", kind=kind, outcome="unchanged") == 30
    assert _value("metrify_load_rows_total", kind=kind, outcome="quarantined") == 12
    assert _value("metrify_load_files_total", kind=kind, outcome="ok") == 1
    assert _value("metrify_load_files_total", kind=kind, outcome="failed") == 1


def test_a_job_run_is_counted_timed_and_its_success_stamped() -> None:
    job = "unit-job"
    metrics.observe_job(job, "ok", 2.0, interval_end=86_400 * 3, now=1_000.0)
    metrics.observe_job(job, "failed", 0.5, interval_end=86_400 * 4, now=2_000.0)
    # a re-run of an older day: counted, stamped, but the newest interval stays
    metrics.observe_job(job, "ok", 1.0, interval_end=86_400 * 1, now=3_000.0)
    metrics.observe_job(job, "done", 0.0, interval_end=86_400 * 5, now=4_000.0)  # not a run
    assert _value("metrify_job_runs_total", batch_job=job, status="ok") == 2
    assert _value("metrify_job_runs_total", batch_job=job, status="failed") == 1
    assert _value("metrify_job_duration_seconds_count", batch_job=job) == 3
    assert _value("metrify_job_duration_seconds_sum", batch_job=job) == 3.5
    assert _value("metrify_job_last_success_timestamp_seconds", batch_job=job) == 3_000.0
    assert _value(
        "metrify_job_last_success_interval_end_timestamp_seconds", batch_job=job
    ) == float(86_400 * 3)


#: one process's work: a load of ``n`` hundred rows and a job run that ends at ``n`` days
_WORKER = textwrap.dedent(
    """
    import sys
    from metrify.contracts.summary import Summary
    from metrify.ops import metrics
    n = int(sys.argv[1])
    counter = metrics.LoadCounter("readings")
    counter.update(Summary(kind="readings", read=100 * n, inserted=90 * n, quarantined=10 * n))
    counter.file_done(True)
    metrics.observe_job("aggregates", "ok", float(n), interval_end=86400.0 * n, now=1000.0 * n)
    metrics.count_records([Summary(kind="readings", statuses={"valid": 7 * n})])
    """
)


def test_processes_sharing_a_directory_are_summed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three real processes write into one multiprocess directory at once; the scrape
    text any process builds from it holds their sums (counters, histograms) and the
    newest stamp (gauges in ``max`` mode)."""
    env = {**os.environ, exposition.ENV: str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(n)], env=env, stderr=subprocess.PIPE)
        for n in (1, 2, 3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert len(list(tmp_path.glob("*.db"))) >= 3  # each process its own files
    monkeypatch.setenv(exposition.ENV, str(tmp_path))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition.latest().decode())
        for s in family.samples
    }

    def at(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    total = 1 + 2 + 3
    assert at("metrify_load_rows_total", kind="readings", outcome="read") == 100 * total
    assert at("metrify_load_rows_total", kind="readings", outcome="stored") == 90 * total
    assert at("metrify_load_rows_total", kind="readings", outcome="quarantined") == 10 * total
    assert at("metrify_load_files_total", kind="readings", outcome="ok") == 3
    assert at("metrify_records_total", kind="readings", status="valid") == 7 * total
    assert at("metrify_job_runs_total", batch_job="aggregates", status="ok") == 3
    assert at("metrify_job_duration_seconds_count", batch_job="aggregates") == 3
    assert at("metrify_job_duration_seconds_sum", batch_job="aggregates") == total
    # durations 1, 2, 3 s: one at or under each of the 1 s, 5 s buckets' bounds
    assert at("metrify_job_duration_seconds_bucket", batch_job="aggregates", le="1.0") == 1
    assert at("metrify_job_duration_seconds_bucket", batch_job="aggregates", le="5.0") == 3
    assert at("metrify_job_last_success_timestamp_seconds", batch_job="aggregates") == 3000.0
    assert (
        at("metrify_job_last_success_interval_end_timestamp_seconds", batch_job="aggregates")
        == 86400.0 * 3
    )
    # a worker's --metrics-port endpoint serves the same sums from the shared directory
    port = free_port()
    metrics.serve(port, "127.0.0.1")
    served = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    line = 'metrify_load_rows_total{kind="readings",outcome="read"} '
    assert f"{line}{100.0 * total}" in served.splitlines()
