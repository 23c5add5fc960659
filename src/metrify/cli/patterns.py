"""``metrify patterns``: consumption patterns from the 30-minute aggregates.

``run`` analyses a period and stores it (:mod:`metrify.batch.patterns`, the same code as
the daily job); ``show`` prints a meter's or a segment's figures and typical day,
``clusters`` the household clusters and how stable they are, ``compare`` segments
side by side with bootstrap intervals, and what the time-of-use households did
differently at peak. Each reads the newest stored run unless ``--run`` names one.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import polars as pl
import typer
from rich.table import Table

from metrify.analytics.patterns import Definitions, PeakHours
from metrify.batch import patterns as job
from metrify.cli.apps import patterns_app
from metrify.cli.common import UserError, console, friendly, load_settings
from metrify.cli.progress import heartbeat
from metrify.pipeline.session import open_session
from metrify.stores import aggregates
from metrify.stores import patterns as store
from metrify.stores.pools import Connection

__all__ = ["clusters", "compare", "run", "run_line", "show", "year_before"]

_CRITERIA = {"silhouette": "silhouette", "calinski-harabasz": "calinski_harabasz"}
_KINDS = ("weekday", "weekend", "holiday")
_SEASONS = ("all", "winter", "spring", "summer", "autumn")

RunOption = Annotated[int | None, typer.Option("--run", help="a stored run (default: newest)")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON on stdout")]


def _emit(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str).decode() + "\n")


def _run_of(conn: Connection, run_id: int | None) -> dict[str, Any]:
    found = store.latest_run(conn, run_id)
    if found is None:
        raise UserError(
            f"no pattern run {run_id}"
            if run_id
            else "no patterns stored yet: run `metrify patterns run`"
        )
    return found


@patterns_app.command("run")
@friendly
def run(
    start: Annotated[
        str | None, typer.Option("--from", help="first local date (default: a year before --to)")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="end local date, exclusive (default: today)")
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="local clock of the days (default: the meters' own, if one)"),
    ] = None,
    peak: Annotated[
        str, typer.Option("--peak", help="peak hours, local, on half-hours")
    ] = "16:00-19:00",
    k: Annotated[
        int | None, typer.Option("--k", min=1, help="clusters (default: chosen by --criterion)")
    ] = None,
    criterion: Annotated[
        str, typer.Option("--criterion", help="silhouette or calinski-harabasz")
    ] = "silhouette",
    min_days: Annotated[
        int, typer.Option("--min-days", min=1, help="complete days a meter needs to be clustered")
    ] = 30,
    resamples: Annotated[
        int, typer.Option("--resamples", min=0, help="bootstrap refits for cluster stability")
    ] = 50,
    households: Annotated[
        Path | None,
        typer.Option("--households", help="CSV of meter id, tariff and ACORN group"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Analyse a period of measured half-hours and store the patterns."""
    if criterion not in _CRITERIA:
        raise UserError(f"--criterion {criterion}: use silhouette or calinski-harabasz")
    try:
        definitions = Definitions(peak=PeakHours.parse(peak))
    except ValueError as exc:
        raise UserError(f"--peak: {exc}") from None
    settings = load_settings()
    homes = job.read_households(households) if households else None
    try:
        zone = aggregates.zone_of(tz or settings.fleet_timezone)
        last = (
            aggregates.local_instant(end, zone)
            if end
            else dt.datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        )
        first = aggregates.local_instant(start, zone) if start else year_before(last)
    except aggregates.BadQuery as exc:
        raise UserError(str(exc)) from None
    if last <= first:
        raise UserError("--to must be after --from")
    with open_session(settings) as session, heartbeat("patterns run"):
        try:
            done = job.compute(
                session.conn,
                first,
                last,
                settings.fleet_timezone,
                tz=tz,
                definitions=definitions,
                k=k,
                criterion=_CRITERIA[criterion],  # type: ignore[arg-type]
                min_days=min_days,
                resamples=resamples,
                households=homes,
                calendar=settings.holidays,
            )
        except job.NoData as exc:
            raise UserError(str(exc)) from None
    if as_json:
        _emit(done.__dict__)
        return
    console.print(run_line(done, min_days), highlight=False)


def year_before(t: dt.datetime) -> dt.datetime:
    """The same local date and time a calendar year earlier (29 February: the 28th).

    ``--from`` defaults to "a year before --to": 365 days before 2013-02-01 is 2012-02-02
    (2012 is a leap year), so the run's period missed a day and did not match a
    ``--from 2012-02-01`` run of the same year."""
    try:
        return t.replace(year=t.year - 1)
    except ValueError:
        return t.replace(year=t.year - 1, day=28)


def run_line(done: job.Computed, min_days: int) -> str:
    """The one-line summary of a stored run. Without clusters it says why (it said
    "0 of 5 ... clustered into k=None", which reads as if no meter had enough days)."""
    head = (
        f"pattern run {done.run_id}: {done.meters} meters, {done.half_hours:,} measured"
        f" half-hours, {done.start:%Y-%m-%d} to {done.end:%Y-%m-%d} on {done.tz} time;"
    )
    if done.k is None:
        why = done.no_clustering or "no clustering"
        return (
            f"{head} {done.shaped} with {min_days}+ complete days, not clustered: {why};"
            f" {done.segments} segments"
        )
    return (
        f"{head} {done.clustered} of {done.shaped} with {min_days}+ complete days clustered"
        f" into k={done.k}; {done.segments} segments"
    )


def _subject(
    meter: str | None, segment: str | None, region: str | None, acorn: str | None, fleet: bool
) -> tuple[str, str]:
    named = [
        ("meter", meter),
        ("segment", segment),
        ("region", region),
        ("acorn", acorn),
        ("fleet", "all" if fleet else None),
    ]
    chosen = [(d, k) for d, k in named if k is not None]
    if len(chosen) != 1:
        raise UserError("give exactly one of --meter, --segment, --region, --acorn or --fleet")
    return chosen[0][0], str(chosen[0][1])


@patterns_app.command("show")
@friendly
def show(
    meter: Annotated[str | None, typer.Option("--meter", help="one meter")] = None,
    segment: Annotated[str | None, typer.Option("--segment", help="a tariff segment")] = None,
    region: Annotated[str | None, typer.Option("--region", help="a region")] = None,
    acorn: Annotated[
        str | None, typer.Option("--acorn", help="an ACORN group (runs given --households)")
    ] = None,
    fleet: Annotated[bool, typer.Option("--fleet", help="the average household")] = False,
    kind: Annotated[str, typer.Option("--kind", help="weekday, weekend or holiday")] = "weekday",
    season: Annotated[
        str, typer.Option("--season", help="all, winter, spring, summer or autumn")
    ] = "all",
    run_id: RunOption = None,
    as_json: JsonOption = False,
) -> None:
    """A meter's or a segment's figures and typical day (all typical days with --json)."""
    dim, key = _subject(meter, segment, region, acorn, fleet)
    if kind not in _KINDS:
        raise UserError(f"--kind {kind}: use one of {', '.join(_KINDS)}")
    if season not in _SEASONS:
        raise UserError(f"--season {season}: use one of {', '.join(_SEASONS)}")
    settings = load_settings()
    with open_session(settings) as session:
        found_run = _run_of(session.conn, run_id)
        rid = int(found_run["run_id"])
        if dim == "meter":
            row = store.meter_pattern(session.conn, rid, key)
        else:
            row = store.segment_pattern(session.conn, rid, dim, key)
    if row is None:
        raise UserError(f"no {dim} {key} in pattern run {rid}")
    if as_json:
        _emit({"run_id": rid, "tz": found_run["tz"], "dim": dim, "key": key, **row})
        return
    _print_subject(found_run, dim, key, row, kind, season)


def _print_subject(
    found_run: dict[str, Any], dim: str, key: str, row: dict[str, Any], kind: str, season: str
) -> None:
    defs = found_run["definitions"]
    table = Table(title=f"{dim} {key}: pattern run {found_run['run_id']}, {found_run['tz']} time")
    table.add_column("figure")
    table.add_column("value", justify="right")
    labels = {
        "days": "days with data",
        "complete_days": "complete days",
        "mean_daily_kwh": "mean daily energy (kWh)",
        "load_factor": "load factor (mean/peak)",
        "peak_kw": "peak demand (kW)",
        "base_load_kw": f"base load (kW; {defs['base_load']})",
        "peak_time": "peak time (typical day)",
        "peak_share": f"share in peak hours {defs['peak_hours']}",
    }
    for name, label in labels.items():
        value = row.get(name)
        table.add_row(
            label,
            "" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value),
        )
    for extra in ("households", "tariff", "acorn", "cluster"):
        if row.get(extra) is not None:
            table.add_row(extra, str(row[extra]))
    console.print(table)
    day = row["typical_days"].get(kind, {}).get(season)
    if not day:
        console.print(f"no complete {kind} in {season}")
        return
    hours = Table(title=f"typical {kind} ({season}): kWh per half-hour")
    for name in ("hour", ":00", ":30"):
        hours.add_column(name, justify="right")
    for h in range(24):
        hours.add_row(
            f"{h:02d}", *("-" if v is None else f"{v:.3f}" for v in day[2 * h : 2 * h + 2])
        )
    console.print(hours)


@patterns_app.command("clusters")
@friendly
def clusters(run_id: RunOption = None, as_json: JsonOption = False) -> None:
    """Household clusters of day shapes: the choice of k, stability, sizes, peak times."""
    settings = load_settings()
    with open_session(settings) as session:
        found_run = _run_of(session.conn, run_id)
        rows = store.clusters(session.conn, int(found_run["run_id"]))
        members = store.households(session.conn, int(found_run["run_id"]))
    info = found_run["clustering"]
    if info is None or info.get("k") is None:
        why = (info or {}).get("why_none") or "too few meters"
        raise UserError(f"pattern run {found_run['run_id']} has no clusters: {why}")
    by_cluster = {
        int(c): part["meter_id"].to_list()
        for (c,), part in members.filter(pl.col("cluster").is_not_null()).group_by("cluster")
    }
    if as_json:
        _emit(
            {
                "run_id": found_run["run_id"],
                **info,
                "clusters": [r | {"meters": by_cluster.get(r["cluster"], [])} for r in rows],
            }
        )
        return
    stab = info["stability"]
    console.print(
        f"k={info['k']} by {info['criterion']} over {info['clustered']} households"
        + (
            f"; stability: adjusted Rand index median {stab['ari_median']:.2f}"
            f" (5-95%: {stab['ari_p05']:.2f} to {stab['ari_p95']:.2f}) over"
            f" {stab['resamples']} bootstrap refits"
            if stab
            else ""
        )
    )
    table = Table(title=f"clusters of pattern run {found_run['run_id']}")
    for name in ("cluster", "households", "peak time", "share in peak hours", "shape by 3 h"):
        table.add_column(name, justify="right")
    for r in rows:
        centre = r["centre"]
        blocks = " ".join(f"{48 * sum(centre[s : s + 6]) / 6:.2f}" for s in range(0, 48, 6))
        table.add_row(
            str(r["cluster"]),
            str(r["households"]),
            r["peak_time"],
            f"{r['peak_share']:.3f}",
            blocks,
        )
    console.print(table)
    if info["unusual"]:
        console.print(f"unusual shapes, not clustered: {', '.join(info['unusual'])}")


@patterns_app.command("compare")
@friendly
def compare(
    by: Annotated[str, typer.Option("--by", help="tariff, acorn, region or cluster")],
    households: Annotated[
        Path | None,
        typer.Option("--households", help="CSV of meter id, tariff and ACORN group"),
    ] = None,
    treated: Annotated[
        str | None, typer.Option("--treated", help="group compared (tariff: ToU)")
    ] = None,
    control: Annotated[
        str | None, typer.Option("--control", help="group compared with (tariff: Std)")
    ] = None,
    resamples: Annotated[
        int, typer.Option("--resamples", min=100, help="bootstrap resamples")
    ] = 2000,
    run_id: RunOption = None,
    as_json: JsonOption = False,
) -> None:
    """Segments side by side with 95% intervals; by tariff, ToU minus Std at peak."""
    settings = load_settings()
    with open_session(settings) as session:
        found_run = _run_of(session.conn, run_id)
        homes = store.households(session.conn, int(found_run["run_id"]))
    if households is not None:
        extra = job.read_households(households).rename({"id": "meter_id"})
        homes = (
            homes.join(extra, on="meter_id", how="left", suffix="_file")
            .with_columns(
                pl.coalesce("tariff", "tariff_file").alias("tariff"),
                pl.coalesce("acorn_file", "acorn").alias("acorn"),
            )
            .drop("tariff_file", "acorn_file")
        )
    elif by == "acorn" and homes["acorn"].drop_nulls().len() == 0:
        raise UserError("no ACORN group in this run: give --households FILE")
    try:
        result = job.compare(
            homes, by, found_run["definitions"]["peak_hours"], treated, control, resamples
        )
    except ValueError as exc:
        raise UserError(f"--by {by}: {exc}") from None
    result["run_id"] = found_run["run_id"]
    if as_json:
        _emit(result)
        return
    _print_comparison(result, by)


def _print_comparison(result: dict[str, Any], by: str) -> None:
    level = round(100 * float(result["level"]))
    table = Table(title=f"by {by}: mean per household [{level}% bootstrap interval]")
    table.add_column(by)
    table.add_column("households", justify="right")
    names = ("peak_share", "load_factor", "base_load_kw", "mean_daily_kwh")
    for name in names:
        table.add_column(name, justify="right")
    for g in result["groups"]:
        table.add_row(
            str(g["group"]),
            str(g["households"]),
            *(
                "" if g[n] is None else f"{g[n]:.3f} [{g[n + '_low']:.3f}, {g[n + '_high']:.3f}]"
                for n in names
            ),
        )
    console.print(table)
    diff = result.get("difference")
    if diff:
        console.print(
            f"{diff['treated']} minus {diff['control']} in share of energy in peak hours"
            f" {result['peak_hours']}: {diff['difference']:+.4f}"
            f" [{level}% CI {diff['low']:+.4f}, {diff['high']:+.4f}]"
            f" ({diff['n_treated']} vs {diff['n_control']} households)"
        )
