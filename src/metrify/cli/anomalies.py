"""The ``metrify anomalies`` commands: list, change status (ack, resolve, false-positive,
reopen), train the daily model and run the daily job.

scikit-learn loads only when a command that uses it runs.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer

from metrify.cli.apps import anomalies_app
from metrify.cli.common import (
    UserError,
    audit_act,
    console,
    friendly,
    load_settings,
    parse_time,
)
from metrify.contracts.anomalies import SEVERITIES, Kind, Status
from metrify.pipeline.session import open_session

KINDS = [k.value for k in Kind]
STATUSES = [s.value for s in Status]

__all__ = [
    "ack_cmd",
    "daily_cmd",
    "false_positive_cmd",
    "list_cmd",
    "reopen_cmd",
    "resolve_cmd",
    "train_cmd",
]

Operator = Annotated[
    str, typer.Option("--operator", envvar="USER", help="who changes it (default $USER)")
]
Note = Annotated[str | None, typer.Option("--note", help="why, for the record")]


def _anomaly_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{text}: expected an anomaly id (a whole number)") from None
    if value < 1:
        raise UserError(f"{text}: expected an anomaly id (a whole number >= 1)")
    return value


#: the audit action of each status change (``anomalies.acknowledge`` is the API's own)
ACTIONS = {
    Status.ACKNOWLEDGED: "anomalies.acknowledge",
    Status.RESOLVED: "anomalies.resolve",
    Status.FALSE_POSITIVE: "anomalies.false_positive",
    Status.OPEN: "anomalies.reopen",
}


def _change(text: str, status: Status, operator: str, note: str | None) -> None:
    anomaly_id = _anomaly_id(text)
    with open_session(load_settings()) as session:
        from metrify.stores.anomalies import change_status

        # the change and its audit row commit together, or neither does
        with session.conn.transaction():
            row = change_status(session.conn, anomaly_id, status, operator, note)
            audit_act(
                session.conn,
                ACTIONS[status],
                str(anomaly_id),
                {"note": note, "operator": operator},
            )
    console.print(
        f"anomaly {row['id']} ({row['kind']} on {row['subject_type']} {row['subject_id']})"
        f" is now {row['status']} by {row['changed_by']}",
        highlight=False,
    )


@anomalies_app.command("list")
@friendly
def list_cmd(
    kind: Annotated[str | None, typer.Option("--kind", help=", ".join(KINDS))] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO time: anomalies ending after it")
    ] = None,
    meter: Annotated[
        str | None, typer.Option("--meter", help="a meter (or node, station) id")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="open, acknowledged, resolved, false_positive"),
    ] = None,
    severity: Annotated[
        str | None, typer.Option("--severity", help="at least: " + ", ".join(SEVERITIES))
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="at most this many")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Newest anomalies first."""
    from rich.table import Table

    from metrify.contracts.anomalies import to_json
    from metrify.stores.anomalies import AnomalyQuery, list_anomalies

    if kind is not None and kind not in KINDS:
        raise UserError(f"--kind {kind}: expected one of {', '.join(KINDS)}")
    if status is not None and status not in {s.value for s in Status}:
        raise UserError(f"--status {status}: expected one of {', '.join(s.value for s in Status)}")
    if severity is not None and severity not in SEVERITIES:
        raise UserError(f"--severity {severity}: expected one of {', '.join(SEVERITIES)}")
    when = parse_time(since, "--since") if since else None
    with open_session(load_settings()) as session:
        query = AnomalyQuery(
            kind=kind,
            status=status,
            min_severity=severity,
            subject_id=meter,
            ending_after=when,
            limit=limit,
        )
        rows = list_anomalies(session.conn, query)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(to_json(row), sort_keys=True))
        return
    table = Table("id", "kind", "subject", "from", "to", "severity", "score", "status", "evidence")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["kind"],
            f"{r['subject_type']} {r['subject_id']}",
            _short(r["ts_start"]),
            _short(r["ts_end"]),
            r["severity"],
            f"{r['score']:g}",
            r["status"],
            json.dumps(r["evidence"], sort_keys=True),
        )
    console.print(table)
    if not rows:
        console.print("no anomalies match")


@anomalies_app.command("ack")
@friendly
def ack_cmd(
    anomaly_id: Annotated[str, typer.Argument(metavar="ID", help="anomaly id")],
    operator: Operator = "operator",
    note: Note = None,
) -> None:
    """Acknowledge: someone is on it; the incident keeps growing but never re-alerts."""
    _change(anomaly_id, Status.ACKNOWLEDGED, operator, note)


@anomalies_app.command("resolve")
@friendly
def resolve_cmd(
    anomaly_id: Annotated[str, typer.Argument(metavar="ID", help="anomaly id")],
    operator: Operator = "operator",
    note: Note = None,
) -> None:
    """Resolve: dealt with; if it comes back, that is a new incident."""
    _change(anomaly_id, Status.RESOLVED, operator, note)


@anomalies_app.command("false-positive")
@friendly
def false_positive_cmd(
    anomaly_id: Annotated[str, typer.Argument(metavar="ID", help="anomaly id")],
    operator: Operator = "operator",
    note: Note = None,
) -> None:
    """Not an anomaly: extended silently, never alerts; re-sent readings lose the bit."""
    _change(anomaly_id, Status.FALSE_POSITIVE, operator, note)


@anomalies_app.command("reopen")
@friendly
def reopen_cmd(
    anomaly_id: Annotated[str, typer.Argument(metavar="ID", help="anomaly id")],
    operator: Operator = "operator",
    note: Note = None,
) -> None:
    """Back to open (it will not alert again: its alert has gone out once)."""
    _change(anomaly_id, Status.OPEN, operator, note)


@anomalies_app.command("train")
@friendly
def train_cmd(
    until: Annotated[
        str | None, typer.Option("--until", help="last day (exclusive), default today")
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="days to learn from")] = 28,
) -> None:
    """Fit the daily pattern model on stored readings and save it under METRIFY_HOME."""
    from metrify.batch.daily import model_path, train

    end = _day(until, "--until") if until else dt.datetime.now(dt.UTC).date()
    settings = load_settings()
    with open_session(settings) as session:
        model = train(session.conn, settings.home, end, days)
    console.print(
        f"trained on {model.trained_rows:,} meter-days over {model.trained_days} days;"
        f" saved to {model_path(settings.home)}",
        highlight=False,
    )


@anomalies_app.command("daily")
@friendly
def daily_cmd(
    date: Annotated[str, typer.Option("--date", help="the UTC day to check (YYYY-MM-DD)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The daily job: feeder energy balance and, once trained, the pattern model."""
    from metrify.batch.daily import run_daily

    day = _day(date, "--date")
    settings = load_settings()
    with open_session(settings) as session:
        result = run_daily(session.conn, settings.home, day, settings.anomaly)
    if as_json:
        typer.echo(result.as_json())
    else:
        console.print(
            f"{day}: {sum(result.incidents.values())} incidents"
            f" {dict(result.incidents)}; {result.alerts} alerts",
            highlight=False,
        )


def _day(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text}: expected a day like 2013-03-01") from None


def _short(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, dt.datetime) else str(value)
