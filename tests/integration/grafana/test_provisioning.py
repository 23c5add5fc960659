"""The Grafana provisioning files: the checked-in files are what the generator writes,
the dashboards are well formed, and every PromQL expression names metrics Metrify
exports and evaluates to data under ``promtool test rules`` (Debian's prometheus)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

# the modules that define Metrify's metrics: imported, they register in the registry
from metrify.api import middleware as _api_metrics  # noqa: F401
from metrify.api.auth import throttle as _auth_metrics  # noqa: F401
from metrify.ops import metrics as _worker_metrics  # noqa: F401

from .dashboards import FOLDER, load_build, targets

RATE_WINDOW = "1m"


def test_checked_in_files_are_what_the_generator_writes() -> None:
    build = load_build()
    written = build.files()
    on_disk = {
        str(p.relative_to(FOLDER)): p.read_text()
        for p in FOLDER.rglob("*")
        if p.is_file() and p.suffix in (".json", ".yaml")
    }
    assert set(on_disk) == set(written), "a file without a generator, or one not written"
    for name, text in written.items():
        assert on_disk[name] == text, f"{name} differs: run python deploy/grafana/build.py"
    assert build.main(["--check"]) == 0


def test_dashboards_are_well_formed() -> None:
    uids = set()
    for path in sorted((FOLDER / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, (path.name, panel["title"])
            covered = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not covered & cells, f"{path.name}: {panel['title']} overlaps a panel"
            cells |= covered
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in ("metrify-postgres", "metrify-prometheus")
    assert len(uids) == 5
    sources = (FOLDER / "provisioning" / "datasources" / "metrify.yaml").read_text()
    assert "uid: metrify-postgres" in sources and "uid: metrify-prometheus" in sources
    provider = (FOLDER / "provisioning" / "dashboards" / "metrify.yaml").read_text()
    assert "path: /var/lib/grafana/dashboards/metrify" in provider


def _exported() -> dict[str, tuple[str, list[str]]]:
    """Every ``metrify_*`` series name the registry exports -> (metric, its labels)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }
    out: dict[str, tuple[str, list[str]]] = {}
    for collector in list(REGISTRY._collector_to_names):  # every registered metric
        describe = getattr(collector, "describe", None)
        for family in describe() if describe else []:
            if not family.name.startswith("metrify_"):
                continue
            labels = list(getattr(collector, "_labelnames", ()))
            for suffix in suffixes[family.type]:
                out[family.name + suffix] = (family.name, labels)
    return out


def _expressions() -> list[tuple[str, str, str]]:
    return [(board, panel["title"], t["expr"]) for board, panel, t in targets("prometheus")]


def _metric_names(expr: str) -> set[str]:
    # label names inside by (...) or {...} never start with metrify_
    return set(re.findall(r"\bmetrify_[a-zA-Z0-9_:]*", expr))


def test_promql_names_metrics_that_exist() -> None:
    exported = _exported()
    assert "metrify_records_total" in exported and "metrify_consumer_lag" in exported
    expressions = _expressions()
    assert len(expressions) >= 10
    for board, title, expr in expressions:
        names = _metric_names(expr)
        assert names, f"{board}: {title}: no metrify metric in {expr}"
        unknown = names - set(exported)
        assert not unknown, f"{board}: {title}: {sorted(unknown)} not exported by Metrify"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (Debian package prometheus)")
        pytest.skip("promtool not installed")
    return found


def _series(exported: dict[str, tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """A few minutes of every exported series, scraped every 15 s: counters and
    histograms rising, gauges steady; every label set to a value."""
    out = []
    for name, (_, labels) in sorted(exported.items()):
        if name.endswith("_created"):
            continue
        tags = ",".join(f'{label}="x"' for label in labels)
        if name.endswith("_bucket"):
            for le, step in (("0.1", 3), ("1", 8), ("+Inf", 10)):
                le_tags = ",".join(filter(None, [tags, f'le="{le}"']))
                out.append({"series": f"{name}{{{le_tags}}}", "values": f"0+{step}x40"})
            continue
        values = "7x40" if name in exported and exported[name][0] == name else "0+10x40"
        out.append({"series": f"{name}{{{tags}}}", "values": values})
    return out


def test_promql_evaluates_under_promtool(tmp_path: Path) -> None:
    """Each expression becomes the alert ``absent(expr)``; the unit test expects no
    alert at 10 minutes, which holds only if the expression parses and returns data
    from the metrics as Metrify exports them (names and labels)."""
    promtool = _promtool()
    expressions = _expressions()
    rules = {
        "groups": [
            {
                "name": "grafana-panels",
                "rules": [
                    {
                        "alert": f"panel_{i}",
                        "expr": f"absent({expr.replace('$__rate_interval', RATE_WINDOW)})",
                    }
                    for i, (_, _, expr) in enumerate(expressions)
                ],
            }
        ]
    }
    (tmp_path / "rules.yaml").write_text(json.dumps(rules, indent=1))  # JSON is YAML
    check = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": _series(_exported()),
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": f"panel_{i}", "exp_alerts": []}
                    for i in range(len(expressions))
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(json.dumps(tests, indent=1))
    run = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    names = {f"panel_{i}": f"{b}: {t}: {e}" for i, (b, t, e) in enumerate(expressions)}
    failed = sorted({n for n in re.findall(r"alertname: (panel_\d+)", run.stdout + run.stderr)})
    assert run.returncode == 0, (
        "no data from:\n"
        + "\n".join(names.get(n, n) for n in failed)
        + "\n"
        + run.stdout
        + run.stderr
    )
