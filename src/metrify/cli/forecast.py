"""``metrify forecast run|backtest``: demand forecasts with quantiles from what is stored.

``run`` forecasts one subject (a meter, a grid node, a region, a tariff segment or the
fleet), or every meter, and stores the issue (re-running the same issue replaces it);
``backtest`` scores the models on the stored history with rolling origins, each
forecast made only from the data before its issue time. Both go through
:mod:`metrify.batch.forecasting`, as the ``forecast`` batch job does.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from metrify.batch import forecasting
from metrify.cli.apps import forecast_app
from metrify.cli.common import UserError, console, err, friendly, load_settings, parse_time
from metrify.cli.progress import heartbeat
from metrify.pipeline.session import open_session
from metrify.stores import aggregates
from metrify.stores.series import Subject

__all__ = ["forecast_backtest", "forecast_run"]

HORIZONS = ("day-ahead", "intraday")
#: the scores a backtest shows, in order
SCORES = ("mae", "mape", "mase", "rmae", "pinball", "coverage_p10_p90", "n")

MeterOpt = Annotated[str | None, typer.Option("--meter", help="one meter")]
NodeOpt = Annotated[str | None, typer.Option("--node", help="a grid node or feeder")]
RegionOpt = Annotated[str | None, typer.Option("--region", help="a region")]
SegmentOpt = Annotated[str | None, typer.Option("--segment", help="a tariff segment")]
FleetOpt = Annotated[bool, typer.Option("--fleet", help="every meter, summed")]
HorizonOpt = Annotated[
    str, typer.Option("--horizon", help="day-ahead (the next local day) or intraday (6 h)")
]
HolidaysOpt = Annotated[
    str | None,
    typer.Option(
        "--holidays",
        help="public-holiday calendar: country code, optionally -SUBDIVISION (GB-ENG, DE-BY);"
        " default: the holidays setting",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON lines on stdout")]


def _subject(
    meter: str | None, node: str | None, region: str | None, segment: str | None, fleet: bool
) -> Subject | None:
    """The one subject named, or None when none is; a one-line error for several."""
    if not any((meter, node, region, segment, fleet)):
        return None
    try:
        dim, key = aggregates.subject(meter, node, region, segment, fleet)
    except aggregates.BadQuery:
        raise UserError(
            "give exactly one of --meter, --node, --region, --segment or --fleet"
        ) from None
    return Subject(dim, key)


def _horizon(text: str) -> str:
    if text not in HORIZONS:
        raise UserError(f"--horizon {text}: use day-ahead or intraday")
    return text


def _date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text}: expected a date like 2013-06-01") from None


def _emit(row: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(row, default=str).decode() + "\n")
    sys.stdout.flush()


@forecast_app.command("run")
@friendly
def forecast_run(
    meter: MeterOpt = None,
    node: NodeOpt = None,
    region: RegionOpt = None,
    segment: SegmentOpt = None,
    fleet: FleetOpt = False,
    all_meters: Annotated[
        bool, typer.Option("--all-meters", help="every registered meter (one model across them)")
    ] = False,
    all_nodes: Annotated[
        bool, typer.Option("--all-nodes", help="the fleet and every grid node")
    ] = False,
    issue: Annotated[
        str | None,
        typer.Option(
            "--issue",
            help="issue time, ISO (naive: UTC); default now, or the end of the stored data",
        ),
    ] = None,
    horizon: HorizonOpt = "day-ahead",
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="model to run and store (repeatable; default metrify)"),
    ] = None,
    holidays: HolidaysOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forecast a subject, every meter or every node, and store it with its quantiles."""
    subject = _subject(meter, node, region, segment, fleet)
    if (subject is not None) + all_meters + all_nodes != 1:
        raise UserError(
            "give exactly one of --meter, --node, --region, --segment, --fleet, --all-meters"
            " or --all-nodes"
        )
    horizon = _horizon(horizon)
    issued = parse_time(issue, "--issue") if issue is not None else None
    names = tuple(model or (forecasting.DEFAULT_MODEL,))
    settings = load_settings()
    with open_session(settings) as session:
        try:
            if subject is None:
                _many(session.conn, "meters" if all_meters else "nodes", issued, horizon, names,
                      settings.fleet_timezone, holidays or settings.holidays, as_json)  # fmt: skip
                return
            done = forecasting.forecast_subject(
                session.conn,
                subject,
                horizon=horizon,
                issue=issued,
                model_names=names,
                fleet_tz=settings.fleet_timezone,
                holidays=holidays or settings.holidays,
            )
        except forecasting.ForecastError as exc:
            raise UserError(str(exc)) from None
    if as_json:
        for row in done.frame.iter_rows(named=True):
            _emit(row)
        return
    _forecast_table(done)


def _many(
    conn: Any,
    what: str,
    issue: dt.datetime | None,
    horizon: str,
    names: tuple[str, ...],
    fleet_tz: str,
    holidays: str,
    as_json: bool,
) -> None:
    """Every meter, or the fleet and every node, at one issue time (default: the fleet's
    :func:`default_issue`)."""
    if issue is None:
        issue = forecasting.default_issue(
            conn, forecasting.describe(conn, Subject("fleet", aggregates.FLEET_KEY))
        )
    started = time.monotonic()
    err.print(f"forecast of every {what[:-1]} issued {issue.isoformat()}", highlight=False)
    last = [started]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= 5.0:
            last[0] = now
            err.print(f"  {done:,}/{total:,} {what}, {now - started:.0f} s", highlight=False)

    run = forecasting.forecast_meters if what == "meters" else forecasting.forecast_groups
    batch = run(
        conn,
        issue=issue,
        horizon=horizon,
        model_names=names,
        fleet_tz=fleet_tz,
        holidays=holidays,
        progress=progress,
    )
    summary = {"issued_at": issue.isoformat(), "horizon": horizon, **batch.as_dict()}
    if as_json:
        _emit(summary)
        return
    console.print(
        f"{batch.done:,} {what if what == 'meters' else 'subjects'} forecast"
        f" ({batch.rows:,} rows stored), "
        f"{len(batch.skipped):,} skipped, in {batch.seconds:.1f} s",
        highlight=False,
    )
    for meter, why in list(batch.skipped.items())[:5]:
        err.print(f"[yellow]skipped[/yellow] {escape(meter)}: {escape(why)}", highlight=False)


def _forecast_table(done: forecasting.Issued) -> None:
    table = Table(
        title=f"{done.subject}, {done.horizon} issued {done.issued_at.isoformat()} (stored)"
    )
    for name in ("model", "target (UTC)", "p10", "p50", "p90"):
        table.add_column(name, justify="left" if name in ("model", "target (UTC)") else "right")
    for row in done.frame.iter_rows(named=True):
        table.add_row(
            row["model"],
            f"{row['target_ts']:%Y-%m-%d %H:%M}",
            *(f"{row[q]:.3f}" if row[q] is not None else "" for q in ("p10", "p50", "p90")),
        )
    console.print(table)


@forecast_app.command("backtest")
@friendly
def forecast_backtest(
    start: Annotated[str, typer.Option("--from", help="first local day forecast")],
    end: Annotated[str, typer.Option("--to", help="last local day forecast, included")],
    meter: MeterOpt = None,
    node: NodeOpt = None,
    region: RegionOpt = None,
    segment: SegmentOpt = None,
    fleet: FleetOpt = False,
    horizon: HorizonOpt = "day-ahead",
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="model to score (repeatable; default: metrify and seasonal_naive_weekly;"
            " also lightgbm, lightgbm_linear)",
        ),
    ] = None,
    holidays: HolidaysOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per model")] = False,
) -> None:
    """Score the models on the stored history: rolling origin, each forecast made only
    from the data before its issue time (day-ahead: 10:00 local the day before)."""
    subject = _subject(meter, node, region, segment, fleet)
    if subject is None:
        raise UserError("give exactly one of --meter, --node, --region, --segment or --fleet")
    horizon = _horizon(horizon)
    first, last = _date(start, "--from"), _date(end, "--to")
    if last < first:
        raise UserError("--to must not be before --from")
    if (last - first).days > 3700:
        raise UserError("at most ten years per backtest")
    settings = load_settings()
    began = time.monotonic()
    with open_session(settings) as session:
        try:
            # the zone whose local days are forecast: a node without meters follows
            # fleet_timezone (UTC by default), which a GB analyst would not guess
            zone = forecasting.zone_of(
                forecasting.describe(session.conn, subject), settings.fleet_timezone
            )
        except forecasting.ForecastError as exc:
            raise UserError(str(exc)) from None
        err.print(
            f"backtest of {subject}, {horizon}, local days {first} to {last} in {zone}"
            f" ({(last - first).days + 1} days)",
            highlight=False,
            soft_wrap=True,
        )
        try:
            with heartbeat(f"backtest of {subject}"):
                scores = forecasting.backtest_subject(
                    session.conn,
                    subject,
                    start=first,
                    end=last,
                    horizon=horizon,
                    model_names=model,
                    fleet_tz=settings.fleet_timezone,
                    holidays=holidays or settings.holidays,
                )
        except forecasting.ForecastError as exc:
            raise UserError(str(exc)) from None
    err.print(f"backtest done in {time.monotonic() - began:.1f} s", highlight=False)
    if as_json:
        for row in scores:
            _emit(row)
        return
    table = Table(title=f"{subject}, {horizon}, local days {first} to {last} in {zone}")
    table.add_column("model")
    for name in SCORES:
        table.add_column(name, justify="right")
    for row in scores:
        table.add_row(
            str(row["model"]),
            *(
                f"{row[name]:.4g}" if isinstance(row.get(name), float) else str(row.get(name, ""))
                for name in SCORES
            ),
        )
    console.print(table)
