"""The ``metrify`` Typer app and its sub-apps, with nothing else in them.

Command modules import the app they add to from here, so none of them needs another
command module. Typer lists commands in the order they are declared and sub-apps in the
order they are added: the ``add_typer`` calls below fix the order of ``metrify --help``'s
groups, and the imports in :mod:`metrify.cli` fix the order of its top-level commands.
"""

from __future__ import annotations

import typer

__all__ = [
    "anomalies_app",
    "app",
    "audit_app",
    "baseline_app",
    "batch_app",
    "db_app",
    "forecast_app",
    "grid_app",
    "keys_app",
    "lake_app",
    "patterns_app",
    "quality_app",
    "readings_app",
    "report_app",
    "users_app",
    "vee_app",
    "warehouse_app",
]

app = typer.Typer(
    name="metrify",
    help="Smart-metering data platform: ingest, validate and store meter, grid and weather data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The operational PostgreSQL store.", no_args_is_help=True)
app.add_typer(db_app, name="db")
vee_app = typer.Typer(help="Validation, estimation and editing of readings.", no_args_is_help=True)
app.add_typer(vee_app, name="vee")
readings_app = typer.Typer(help="Stored meter readings.", no_args_is_help=True)
app.add_typer(readings_app, name="readings")
quality_app = typer.Typer(help="Data quality scores.", no_args_is_help=True)
app.add_typer(quality_app, name="quality")
users_app = typer.Typer(help="API users (OAuth2 password sign-in).", no_args_is_help=True)
app.add_typer(users_app, name="users")
keys_app = typer.Typer(help="API keys for machines.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
# no subcommand lists the log, as ``metrify audit`` did before it became a group
audit_app = typer.Typer(help="The audit log: list its rows, verify its hash chain.")
app.add_typer(audit_app, name="audit")
anomalies_app = typer.Typer(
    help="Anomalies found in readings, grid and weather data.", no_args_is_help=True
)
app.add_typer(anomalies_app, name="anomalies")
lake_app = typer.Typer(
    help="The data lake (Delta tables): verify, repair, compact, vacuum, history.",
    no_args_is_help=True,
)
app.add_typer(lake_app, name="lake")
batch_app = typer.Typer(
    help="Batch jobs per day: aggregates, lake compaction, dbt, anomaly model, quality report,"
    " forecasts.",
    no_args_is_help=True,
)
app.add_typer(batch_app, name="batch")
warehouse_app = typer.Typer(
    help="The warehouse: dbt models over the lake and the store.", no_args_is_help=True
)
app.add_typer(warehouse_app, name="warehouse")
grid_app = typer.Typer(
    help="Grid insight per node: loading, peak drivers, losses, EN 50160, flexibility.",
    no_args_is_help=True,
)
app.add_typer(grid_app, name="grid")
patterns_app = typer.Typer(
    help="Consumption patterns: typical days, peak share, household clusters, segments.",
    no_args_is_help=True,
)
app.add_typer(patterns_app, name="patterns")
baseline_app = typer.Typer(
    help="Weather-normalised baselines: fit, weather's share of a change, savings.",
    no_args_is_help=True,
)
app.add_typer(baseline_app, name="baseline")
forecast_app = typer.Typer(
    help="Demand forecasts with quantiles: run and store them, backtest the models.",
    no_args_is_help=True,
)
app.add_typer(forecast_app, name="forecast")
report_app = typer.Typer(
    help="Reports with plots: a month of the fleet or a region as PDF or HTML.",
    no_args_is_help=True,
)
app.add_typer(report_app, name="report")
