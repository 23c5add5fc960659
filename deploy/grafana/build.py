"""Grafana provisioning for Metrify, generated: data sources, the dashboards provider and
the dashboards, written into this folder ready to mount.

    python deploy/grafana/build.py          # write the files
    python deploy/grafana/build.py --check  # exit 1 if a checked-in file differs

The dashboards are written from the panel lists below rather than edited in Grafana's
UI and exported: a panel is a title, a query and a unit, which reads and reviews as
code, and the tests run every PostgreSQL panel's SQL against a real database with
Grafana's macros filled in and check every PromQL expression's metric names against
Metrify's registry, so a renamed column or metric fails CI instead of a dashboard.

PostgreSQL panels query the storage contract's tables (``readings``, ``meters``,
``quality_daily``, ``anomalies``, ``grid_measurements``, ...) and the 30-minute energy
aggregates directly, as BI tools do; Prometheus panels use the ``metrify_*`` metrics
of the stream workers and the API. Standard library only: the file runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent

POSTGRES = {"type": "postgres", "uid": "metrify-postgres"}
PROMETHEUS = {"type": "prometheus", "uid": "metrify-prometheus"}

#: the dashboards provider's folder inside the Grafana container (docs/guides/grafana.md)
DASHBOARDS_PATH = "/var/lib/grafana/dashboards/metrify"

Format = Literal["time_series", "table"]


@dataclass(frozen=True)
class Sql:
    """A PostgreSQL query; ``format`` as Grafana's SQL editor names it."""

    sql: str
    format: Format = "time_series"
    ref: str = "A"


@dataclass(frozen=True)
class PromQL:
    """A PromQL expression and the legend of its series."""

    expr: str
    legend: str = ""
    ref: str = "A"


Query = Sql | PromQL


@dataclass(frozen=True)
class Panel:
    """One panel: its kind (Grafana's panel type), title, queries, unit and width."""

    kind: str
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    width: int = 12
    height: int = 8
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    thresholds: tuple[tuple[float, str], ...] = ()


@dataclass(frozen=True)
class Variable:
    """A template variable filled from a PostgreSQL query (single value)."""

    name: str
    label: str
    sql: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    file: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-30d"
    refresh: str = "5m"


def sql(text: str, fmt: Format = "time_series", ref: str = "A") -> Sql:
    return Sql(" ".join(text.split()), fmt, ref)


# --- the queries ---------------------------------------------------------------------
# Energy of a group is the 30-minute aggregate; demand over a half-hour is kWh / 0.5 h.
FLEET = "dim = 'fleet' AND key = 'all' AND commodity = 'electricity'"
OPEN = "status IN ('open', 'acknowledged')"
SEVERITY_ORDER = "array_position(ARRAY['critical','high','medium','low','info'], severity)"

FLEET_OVERVIEW = Dashboard(
    uid="metrify-fleet",
    file="fleet-overview.json",
    title="Metrify: fleet overview",
    description="Energy and demand of the fleet, data completeness and quality, open"
    " anomalies by severity, ingest lag.",
    panels=(
        Panel(
            "stat",
            "Meters",
            (sql("SELECT count(*) AS meters FROM meters WHERE status <> 'removed'", "table"),),
            width=4,
            height=5,
        ),
        Panel(
            "stat",
            "Energy in range",
            (
                sql(
                    'SELECT coalesce(sum(import_kwh), 0) AS "energy" FROM agg_group_30m'
                    f" WHERE {FLEET} AND $__timeFilter(bucket)",
                    "table",
                ),
            ),
            unit="kwatth",
            width=4,
            height=5,
        ),
        Panel(
            "stat",
            "Coincident peak in range",
            (
                sql(
                    'SELECT coalesce(max(peak_kw), 0) AS "peak" FROM agg_group_30m'
                    f" WHERE {FLEET} AND $__timeFilter(bucket)",
                    "table",
                ),
            ),
            unit="kwatt",
            width=4,
            height=5,
        ),
        Panel(
            "stat",
            "Open anomalies",
            (sql(f"SELECT count(*) AS open FROM anomalies WHERE {OPEN}", "table"),),
            width=4,
            height=5,
            thresholds=((0, "green"), (1, "orange"), (20, "red")),
        ),
        Panel(
            "stat",
            "Newest reading",
            (
                sql(
                    'SELECT extract(epoch FROM now() - max(ts))::float8 AS "age" FROM readings'
                    " WHERE ts > now() - interval '2 days'",
                    "table",
                ),
            ),
            unit="s",
            width=4,
            height=5,
            description="How long ago the newest stored interval started (within two days;"
            " empty: nothing in two days).",
            thresholds=((0, "green"), (3600, "orange"), (4 * 3600, "red")),
        ),
        Panel(
            "stat",
            "Consumer lag",
            (PromQL("sum(metrify_consumer_lag)", "lag"),),
            width=4,
            height=5,
            description="Kafka messages the stream workers are behind, all partitions.",
            thresholds=((0, "green"), (10_000, "orange"), (100_000, "red")),
        ),
        Panel(
            "timeseries",
            "Fleet demand",
            (
                sql(
                    "SELECT $__timeGroupAlias(bucket, $__interval),"
                    ' avg(import_kwh / 0.5) AS "mean kW", max(peak_kw) AS "peak kW"'
                    f" FROM agg_group_30m WHERE {FLEET} AND $__timeFilter(bucket)"
                    " GROUP BY 1 ORDER BY 1"
                ),
            ),
            unit="kwatt",
            width=12,
        ),
        Panel(
            "timeseries",
            "Energy per day by region",
            (
                sql(
                    "SELECT $__timeGroupAlias(bucket, '1d'), key AS metric,"
                    " sum(import_kwh) AS kwh FROM agg_group_30m"
                    " WHERE dim = 'region' AND commodity = 'electricity'"
                    " AND $__timeFilter(bucket) GROUP BY 1, 2 ORDER BY 1"
                ),
            ),
            unit="kwatth",
            width=12,
            options={"drawStyle": "bars"},
        ),
        Panel(
            "timeseries",
            "Data completeness and estimation per day",
            (
                sql(
                    "SELECT day::timestamp AT TIME ZONE 'UTC' AS \"time\","
                    ' 100 * sum(present)::float8 / nullif(sum(expected), 0) AS "complete %",'
                    ' 100 * sum(estimated)::float8 / nullif(sum(expected), 0) AS "estimated %",'
                    ' avg(score)::float8 AS "mean score"'
                    " FROM quality_daily"
                    " WHERE day >= $__timeFrom()::date AND day <= $__timeTo()::date"
                    " GROUP BY 1 ORDER BY 1"
                ),
            ),
            unit="percent",
            width=12,
        ),
        Panel(
            "barchart",
            "Open anomalies by severity",
            (
                sql(
                    "SELECT severity, count(*) AS anomalies FROM anomalies"
                    f" WHERE {OPEN} GROUP BY severity ORDER BY {SEVERITY_ORDER}",
                    "table",
                ),
            ),
            width=12,
        ),
    ),
)

METER = Dashboard(
    uid="metrify-meter",
    file="meter.json",
    title="Metrify: meter",
    description="One meter's readings with estimates, suspect values and gaps marked, its"
    " quality per day, edit history and anomalies.",
    variables=(
        Variable(
            "meter",
            "meter",
            "SELECT meter_id FROM meters WHERE status <> 'removed' ORDER BY 1",
        ),
    ),
    panels=(
        Panel(
            "timeseries",
            "Demand (kW) by status",
            (
                sql(
                    'SELECT ts AS "time", import_kwh * 3600.0 / interval_s AS "valid kW"'
                    " FROM readings WHERE meter_id = ${meter:sqlstring} AND $__timeFilter(ts)"
                    " AND status = 'valid' ORDER BY 1",
                    ref="A",
                ),
                sql(
                    'SELECT ts AS "time", import_kwh * 3600.0 / interval_s AS "estimated kW"'
                    " FROM readings WHERE meter_id = ${meter:sqlstring} AND $__timeFilter(ts)"
                    " AND status = 'estimated' ORDER BY 1",
                    ref="B",
                ),
                sql(
                    'SELECT ts AS "time", import_kwh * 3600.0 / interval_s AS "suspect kW"'
                    " FROM readings WHERE meter_id = ${meter:sqlstring} AND $__timeFilter(ts)"
                    " AND status = 'suspect' ORDER BY 1",
                    ref="C",
                ),
            ),
            unit="kwatt",
            width=24,
            height=9,
            description="Rejected readings are left out; estimated and suspect values are"
            " their own series, so they show in their own colour.",
            options={"drawStyle": "points"},
        ),
        Panel(
            "table",
            "Gaps (missing intervals)",
            (
                sql(
                    'SELECT ts AS "start", interval_s, status,'
                    " CASE WHEN quality & 256 <> 0 THEN 'estimated' ELSE 'open' END AS gap"
                    " FROM readings WHERE meter_id = ${meter:sqlstring} AND $__timeFilter(ts)"
                    " AND quality & 1 <> 0 ORDER BY ts LIMIT 500",
                    "table",
                ),
            ),
            width=12,
        ),
        Panel(
            "timeseries",
            "Quality score per day",
            (
                sql(
                    "SELECT day::timestamp AT TIME ZONE 'UTC' AS \"time\", score,"
                    ' 100 * completeness AS "complete %" FROM quality_daily'
                    " WHERE meter_id = ${meter:sqlstring}"
                    " AND day >= $__timeFrom()::date AND day <= $__timeTo()::date ORDER BY 1"
                ),
            ),
            unit="percent",
            width=12,
        ),
        Panel(
            "table",
            "Edit history",
            (
                sql(
                    'SELECT replaced_at AS "replaced", ts AS "interval", import_kwh AS'
                    ' "old kWh", status AS "old status", source AS "old source",'
                    ' replaced_by AS "by", reason FROM reading_history'
                    " WHERE meter_id = ${meter:sqlstring} AND $__timeFilter(ts)"
                    " ORDER BY replaced_at DESC LIMIT 500",
                    "table",
                ),
            ),
            width=12,
        ),
        Panel(
            "table",
            "Anomalies",
            (
                sql(
                    'SELECT id, kind, severity, status, ts_start AS "from",'
                    ' ts_end AS "to", round(score::numeric, 2) AS score, note FROM anomalies'
                    " WHERE subject_type = 'meter' AND subject_id = ${meter:sqlstring}"
                    " AND ts_start <= $__timeTo() AND ts_end >= $__timeFrom()"
                    " ORDER BY ts_start DESC LIMIT 200",
                    "table",
                ),
            ),
            width=12,
        ),
    ),
)

NODE_FILTER = "node_id = ${node:sqlstring} AND $__timeFilter(ts) AND status <> 'rejected'"

GRID = Dashboard(
    uid="metrify-grid",
    file="grid-loading.json",
    title="Metrify: grid loading",
    description="A node's load against its capacity, voltage and frequency against their"
    " EN 50160 bands, and every node's peak utilisation.",
    variables=(Variable("node", "node", "SELECT node_id FROM grid_nodes ORDER BY 1"),),
    panels=(
        Panel(
            "timeseries",
            "Load against capacity",
            (
                sql(
                    'SELECT g.ts AS "time", g.load_mw AS "load MW",'
                    ' n.capacity_mw AS "capacity MW", 0.8 * n.capacity_mw AS "80% MW"'
                    " FROM grid_measurements g JOIN grid_nodes n ON n.node_id = g.node_id"
                    " WHERE g.node_id = ${node:sqlstring} AND $__timeFilter(g.ts)"
                    " AND g.status <> 'rejected' ORDER BY 1"
                ),
            ),
            unit="megwatt",
            width=24,
            height=9,
        ),
        Panel(
            "timeseries",
            "Voltage against its band (nominal ±10%)",
            (
                sql(
                    'SELECT g.ts AS "time", g.voltage_kv AS "voltage kV",'
                    ' 0.9 * n.nominal_kv AS "low kV", 1.1 * n.nominal_kv AS "high kV"'
                    " FROM grid_measurements g JOIN grid_nodes n ON n.node_id = g.node_id"
                    " WHERE g.node_id = ${node:sqlstring} AND $__timeFilter(g.ts)"
                    " AND g.status <> 'rejected' AND g.voltage_kv IS NOT NULL ORDER BY 1"
                ),
            ),
            unit="volt",
            width=12,
            description="Values in kV; the band is EN 50160's ±10% of the node's nominal.",
        ),
        Panel(
            "timeseries",
            "Frequency against its band (49.5 to 50.5 Hz)",
            (
                sql(
                    'SELECT ts AS "time", frequency_hz AS "frequency Hz",'
                    ' 49.5 AS "low Hz", 50.5 AS "high Hz" FROM grid_measurements'
                    f" WHERE {NODE_FILTER} AND frequency_hz IS NOT NULL ORDER BY 1"
                ),
            ),
            unit="hertz",
            width=12,
        ),
        Panel(
            "table",
            "Nodes: peak against capacity in range",
            (
                sql(
                    'SELECT n.node_id AS node, n.kind, n.capacity_mw AS "capacity MW",'
                    ' max(g.load_mw) AS "peak MW",'
                    " round((100 * max(g.load_mw) / nullif(n.capacity_mw, 0))::numeric, 1)"
                    ' AS "peak % of capacity",'
                    " sum(g.interval_s) FILTER (WHERE g.load_mw > 0.8 * n.capacity_mw)"
                    ' / 3600.0 AS "hours above 80%"'
                    " FROM grid_nodes n JOIN grid_measurements g ON g.node_id = n.node_id"
                    " WHERE $__timeFilter(g.ts) AND g.status <> 'rejected'"
                    " GROUP BY n.node_id, n.kind, n.capacity_mw ORDER BY 5 DESC NULLS LAST",
                    "table",
                ),
            ),
            width=24,
        ),
    ),
)

QUALITY = Dashboard(
    uid="metrify-quality",
    file="data-quality.json",
    title="Metrify: data quality",
    description="Completeness, estimation and scores per day and region, the worst"
    " meters, and what was quarantined.",
    panels=(
        Panel(
            "timeseries",
            "Readings by status per day (% of owed)",
            (
                sql(
                    "SELECT day::timestamp AT TIME ZONE 'UTC' AS \"time\","
                    ' 100 * sum(valid)::float8 / nullif(sum(expected), 0) AS "valid",'
                    ' 100 * sum(estimated)::float8 / nullif(sum(expected), 0) AS "estimated",'
                    ' 100 * sum(suspect)::float8 / nullif(sum(expected), 0) AS "suspect",'
                    ' 100 * sum(rejected)::float8 / nullif(sum(expected), 0) AS "rejected",'
                    ' 100 * sum(missing)::float8 / nullif(sum(expected), 0) AS "missing"'
                    " FROM quality_daily"
                    " WHERE day >= $__timeFrom()::date AND day <= $__timeTo()::date"
                    " GROUP BY 1 ORDER BY 1"
                ),
            ),
            unit="percent",
            width=24,
            options={"drawStyle": "bars", "stacking": "normal"},
        ),
        Panel(
            "timeseries",
            "Mean score per day by region",
            (
                sql(
                    "SELECT q.day::timestamp AT TIME ZONE 'UTC' AS \"time\","
                    " coalesce(m.region, '(none)') AS metric, avg(q.score)::float8 AS score"
                    " FROM quality_daily q LEFT JOIN meters m ON m.meter_id = q.meter_id"
                    " WHERE q.day >= $__timeFrom()::date AND q.day <= $__timeTo()::date"
                    " GROUP BY 1, 2 ORDER BY 1"
                ),
            ),
            width=12,
        ),
        Panel(
            "table",
            "Worst meters in range",
            (
                sql(
                    "SELECT meter_id AS meter, round(avg(score)::numeric, 1) AS score,"
                    " round((100 * sum(present)::float8 / nullif(sum(expected), 0))::numeric,"
                    ' 1) AS "complete %", sum(estimated) AS estimated, sum(suspect) AS'
                    " suspect, sum(rejected) AS rejected, sum(missing) AS missing"
                    " FROM quality_daily"
                    " WHERE day >= $__timeFrom()::date AND day <= $__timeTo()::date"
                    " GROUP BY meter_id ORDER BY 2, 3, 1 LIMIT 20",
                    "table",
                ),
            ),
            width=12,
        ),
        Panel(
            "timeseries",
            "Quarantined records per day by reason",
            (
                sql(
                    "SELECT $__timeGroupAlias(received_at, '1d'), kind || ': ' || reason"
                    " AS metric, count(*) AS records FROM quarantine"
                    " WHERE $__timeFilter(received_at) GROUP BY 1, 2 ORDER BY 1"
                ),
            ),
            width=12,
            options={"drawStyle": "bars"},
        ),
        Panel(
            "timeseries",
            "Records processed by status (stream workers)",
            (
                PromQL(
                    "sum by (status) (rate(metrify_records_total[$__rate_interval]))",
                    "{{status}}",
                ),
            ),
            unit="reqps",
            width=12,
        ),
    ),
)

# histogram quantiles over every worker's buckets
P95 = "histogram_quantile(0.95, sum by (le) (rate({0}_bucket[$__rate_interval])))"
P50 = "histogram_quantile(0.5, sum by (le) (rate({0}_bucket[$__rate_interval])))"

WORKERS = Dashboard(
    uid="metrify-workers",
    file="stream-workers.json",
    title="Metrify: stream workers and ingest",
    description="Kafka consumer lag, micro-batch size and latency, records by kind and"
    " status, dead letters, worker errors and retries, and the API's ingest and latency.",
    time_from="now-6h",
    refresh="30s",
    panels=(
        Panel(
            "timeseries",
            "Consumer lag by partition",
            (
                PromQL(
                    "sum by (topic, partition) (metrify_consumer_lag)", "{{topic}}/{{partition}}"
                ),
            ),
            width=12,
        ),
        Panel(
            "timeseries",
            "Records per second by kind and status",
            (
                PromQL(
                    "sum by (kind, status) (rate(metrify_records_total[$__rate_interval]))",
                    "{{kind}} {{status}}",
                ),
            ),
            unit="reqps",
            width=12,
        ),
        Panel(
            "timeseries",
            "Batch latency",
            (
                PromQL(P50.format("metrify_batch_latency_seconds"), "p50", "A"),
                PromQL(P95.format("metrify_batch_latency_seconds"), "p95", "B"),
            ),
            unit="s",
            width=8,
        ),
        Panel(
            "timeseries",
            "Batch size",
            (
                PromQL(P95.format("metrify_batch_records"), "records p95", "A"),
                PromQL(P95.format("metrify_batch_messages"), "messages p95", "B"),
                PromQL(
                    "sum(rate(metrify_batch_records_sum[$__rate_interval]))"
                    " / sum(rate(metrify_batch_records_count[$__rate_interval]))",
                    "records mean",
                    "C",
                ),
            ),
            width=8,
        ),
        Panel(
            "timeseries",
            "Errors, retries and dead letters",
            (
                PromQL(
                    "sum by (error) (rate(metrify_worker_errors_total[$__rate_interval]))",
                    "error {{error}}",
                    "A",
                ),
                PromQL("sum(rate(metrify_worker_retries_total[$__rate_interval]))", "retries", "B"),
                PromQL(
                    "sum by (topic) (rate(metrify_dead_letters_total[$__rate_interval]))",
                    "dead letters {{topic}}",
                    "C",
                ),
            ),
            unit="ops",
            width=8,
        ),
        Panel(
            "timeseries",
            "API requests per second by status",
            (
                PromQL(
                    "sum by (status) (rate(metrify_api_requests_total[$__rate_interval]))",
                    "{{status}}",
                ),
            ),
            unit="reqps",
            width=12,
        ),
        Panel(
            "timeseries",
            "API latency p95 by route",
            (
                PromQL(
                    "histogram_quantile(0.95, sum by (le, route)"
                    " (rate(metrify_api_request_seconds_bucket[$__rate_interval])))",
                    "{{route}}",
                ),
            ),
            unit="s",
            width=12,
        ),
        Panel(
            "timeseries",
            "API refusals (401, 403, 429) and sign-in throttling",
            (
                PromQL(
                    "sum by (status) (rate(metrify_api_denied_total[$__rate_interval]))",
                    "{{status}}",
                    "A",
                ),
                PromQL(
                    "sum by (scope) (rate(metrify_auth_throttled_total[$__rate_interval]))",
                    "throttled {{scope}}",
                    "B",
                ),
            ),
            unit="reqps",
            width=24,
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (FLEET_OVERVIEW, METER, GRID, QUALITY, WORKERS)


# --- the JSON model --------------------------------------------------------------------


def _target(query: Query) -> dict[str, Any]:
    if isinstance(query, Sql):
        return {
            "datasource": POSTGRES,
            "editorMode": "code",
            "format": query.format,
            "rawQuery": True,
            "rawSql": query.sql,
            "refId": query.ref,
        }
    return {
        "datasource": PROMETHEUS,
        "editorMode": "code",
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": True,
        "refId": query.ref,
    }


def _panel(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    source = POSTGRES if isinstance(panel.queries[0], Sql) else PROMETHEUS
    steps: list[dict[str, Any]] = [
        {"color": colour, "value": None if i == 0 else value}
        for i, (value, colour) in enumerate(panel.thresholds or ((0, "green"),))
    ]
    custom: dict[str, Any] = {}
    if panel.kind == "timeseries":
        custom = {
            "drawStyle": panel.options.get("drawStyle", "line"),
            "lineWidth": 1,
            "fillOpacity": 10 if panel.options.get("drawStyle") != "bars" else 80,
            "showPoints": "auto",
            "spanNulls": False,
            "stacking": {"group": "A", "mode": panel.options.get("stacking", "none")},
        }
    out: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": source,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {
                "unit": panel.unit,
                "custom": custom,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": {},
        "targets": [_target(q) for q in panel.queries],
    }
    if panel.kind == "stat":
        out["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
        }
    elif panel.kind == "timeseries":
        out["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        }
    return out


def _variable(var: Variable) -> dict[str, Any]:
    return {
        "name": var.name,
        "label": var.label,
        "type": "query",
        "datasource": POSTGRES,
        "query": var.sql,
        "definition": var.sql,
        "refresh": 1,
        "sort": 1,
        "multi": False,
        "includeAll": False,
        "current": {},
        "options": [],
        "hide": 0,
    }


def dashboard_model(board: Dashboard) -> dict[str, Any]:
    """The dashboard's JSON model, panels laid out left to right in rows of 24."""
    panels = []
    x = y = row_height = 0
    for pid, panel in enumerate(board.panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(panel, pid, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": board.uid,
        "title": board.title,
        "description": board.description,
        "tags": ["metrify"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": board.refresh,
        "time": {"from": board.time_from, "to": "now"},
        "templating": {"list": [_variable(v) for v in board.variables]},
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": ["metrify"], "asDropdown": True, "title": "Metrify"}
        ],
        "panels": panels,
    }


DATASOURCES = """\
# Metrify's data sources for Grafana (generated by deploy/grafana/build.py).
# Grafana expands $VARIABLES from its own environment when it reads this file.
apiVersion: 1
datasources:
  - name: Metrify PostgreSQL
    uid: metrify-postgres
    type: postgres
    access: proxy
    url: ${METRIFY_GRAFANA_PG_HOST}
    user: ${METRIFY_GRAFANA_PG_USER}
    secureJsonData:
      password: ${METRIFY_GRAFANA_PG_PASSWORD}
    jsonData:
      database: ${METRIFY_GRAFANA_PG_DATABASE}
      sslmode: ${METRIFY_GRAFANA_PG_SSLMODE}
      postgresVersion: 1500
      timescaledb: false
      maxOpenConns: 10
    isDefault: true
    editable: false
  - name: Metrify Prometheus
    uid: metrify-prometheus
    type: prometheus
    access: proxy
    url: ${METRIFY_GRAFANA_PROMETHEUS_URL}
    jsonData:
      httpMethod: POST
      timeInterval: 15s
    editable: false
"""

PROVIDER = f"""\
# Metrify's dashboards provider for Grafana (generated by deploy/grafana/build.py).
apiVersion: 1
providers:
  - name: metrify
    folder: Metrify
    type: file
    disableDeletion: true
    allowUiUpdates: false
    updateIntervalSeconds: 60
    options:
      path: {DASHBOARDS_PATH}
"""


def files() -> dict[str, str]:
    """Every generated file, by its path relative to this folder."""
    out = {
        "provisioning/datasources/metrify.yaml": DATASOURCES,
        "provisioning/dashboards/metrify.yaml": PROVIDER,
    }
    for board in DASHBOARDS:
        text = json.dumps(dashboard_model(board), indent=2, ensure_ascii=False) + "\n"
        out[f"dashboards/{board.file}"] = text
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, text in files().items():
        path = HERE / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if stale:
        print("out of date (run python deploy/grafana/build.py):", *stale, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
