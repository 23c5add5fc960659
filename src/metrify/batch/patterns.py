"""The patterns job: read a period's measured half-hours from the store, find the
patterns (:mod:`metrify.analytics.patterns`) and keep them (:mod:`metrify.stores.patterns`).

``metrify patterns run`` calls :func:`compute` for the period asked; the daily batch job
(:func:`run`) for the trailing year up to the end of its data interval, so the stored
patterns always describe the last twelve months (a year covers every season and holiday
once). Either replaces a run of the same period.

Segments are the groups the aggregates know (``segment``: the meters' tariff, ``region``,
``fleet``) and, when a households file is given, ``acorn``: the meters contract has no
place for a socio-demographic group, and one analysis that needs it does not justify a
column every loader must carry; the file (the London trial's
``household_information.csv``, or any CSV with a meter id and an ACORN column) is read
where it is asked for. A meter with no tariff in the store takes the file's.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from metrify.analytics.holidays import DEFAULT_CALENDAR
from metrify.analytics.patterns import (
    Definitions,
    Patterns,
    PeakHours,
    analyse,
    comparison,
    slot_label,
)
from metrify.analytics.patterns.clusters import Criterion
from metrify.batch.context import JobContext, JobSkipped, Outcome
from metrify.stores import patterns as store
from metrify.stores.pools import Connection

__all__ = ["BY", "Computed", "NoData", "compare", "compute", "read_households", "run"]


class NoData(ValueError):
    """The period holds no measured half-hour: nothing to analyse."""


#: what ``compare`` may group households by: a column of :func:`store.households`
BY: Final = ("tariff", "acorn", "region", "cluster")
#: the trailing window of the daily job
YEAR: Final = dt.timedelta(days=365)
#: how many of its own runs the daily job keeps (a week of them)
KEEP_BATCH_RUNS: Final = 7
#: accepted names of a households file's columns, first match wins
_ID_NAMES: Final = ("meter_id", "LCLid", "id")
_TARIFF_NAMES: Final = ("tariff", "stdorToU")
_ACORN_NAMES: Final = ("acorn", "Acorn_grouped", "acorn_group")


@dataclass(frozen=True)
class Computed:
    """What a run stored: its id, period, zone and counts: ``shaped`` meters had enough
    complete days to be clustered, ``clustered`` were (the others' shapes were unusual);
    ``no_clustering`` says why there are no clusters when there are none."""

    run_id: int
    start: dt.datetime
    end: dt.datetime
    tz: str
    meters: int
    half_hours: int
    shaped: int
    clustered: int
    k: int | None
    segments: int
    #: why no clustering was made (too few households, no k worth the name); None with one
    no_clustering: str | None = None


def read_households(path: Path) -> pl.DataFrame:
    """(id, tariff, acorn) from a households CSV; ValueError naming what is missing."""
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ValueError(f"cannot read households file {path}: {exc}") from None

    def pick(names: tuple[str, ...], what: str, required: bool) -> pl.Expr:
        for name in names:
            if name in raw.columns:
                return pl.col(name).str.strip_chars().alias(what)
        if required:
            raise ValueError(
                f"households file {path}: no {what} column (one of {', '.join(names)})"
            )
        return pl.lit(None, pl.String).alias(what)

    return raw.select(
        pick(_ID_NAMES, "id", True),
        pick(_TARIFF_NAMES, "tariff", False),
        pick(_ACORN_NAMES, "acorn", False),
    ).unique("id", keep="first")


def _zone(attributes: pl.DataFrame, ids: list[str], fleet_tz: str) -> str:
    """The meters' own zone when they all share one, else the fleet's."""
    zones = attributes.filter(pl.col("id").is_in(ids))["timezone"].drop_nulls().unique()
    return str(zones[0]) if len(zones) == 1 else fleet_tz


def _members(attrs: pl.DataFrame) -> pl.DataFrame:
    parts = [
        attrs.select("id", pl.lit(dim).alias("dim"), pl.col(col).alias("key"))
        for dim, col in (("segment", "tariff"), ("region", "region"), ("acorn", "acorn"))
    ]
    parts.append(attrs.select("id", pl.lit("fleet").alias("dim"), pl.lit("all").alias("key")))
    return pl.concat(parts).drop_nulls("key")


def _nested(days: pl.DataFrame) -> dict[str, dict[str, dict[str, list[float | None]]]]:
    """Typical days as id -> kind -> season -> 48 kWh (None where no complete day)."""
    out: dict[str, Any] = defaultdict(lambda: defaultdict(dict))
    if not days.height:
        return out
    for (ident, kind, season), part in days.group_by("id", "kind", "season"):
        values: list[float | None] = [None] * 48
        for slot, kwh in zip(part["slot"].to_list(), part["kwh"].to_list(), strict=True):
            values[slot] = kwh
        out[str(ident)][str(kind)][str(season)] = values
    return out


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {f: row.get(f) for f in store.FIGURES}


def compute(
    conn: Connection,
    start: dt.datetime,
    end: dt.datetime,
    fleet_tz: str,
    *,
    tz: str | None = None,
    definitions: Definitions | None = None,
    k: int | None = None,
    criterion: Criterion = "silhouette",
    min_days: int = 30,
    resamples: int = 50,
    households: pl.DataFrame | None = None,
    source: str = "cli",
    calendar: str = DEFAULT_CALENDAR,
) -> Computed:
    """Analyse the measured half-hours of [start, end) and store the run."""
    d = definitions or Definitions()
    frame = store.half_hours(conn, start, end)
    if not frame.height:
        raise NoData(f"no measured half-hours from {start.isoformat()} to {end.isoformat()}")
    ids = frame["id"].unique().sort().to_list()
    attrs = store.meter_attributes(conn).filter(pl.col("id").is_in(ids))
    attrs = attrs.with_columns(pl.lit(None, pl.String).alias("acorn"))
    if households is not None:
        attrs = (
            attrs.drop("acorn")
            .join(households.rename({"tariff": "file_tariff"}), on="id", how="left")
            .with_columns(pl.coalesce("tariff", "file_tariff").alias("tariff"))
            .drop("file_tariff")
        )
    zone = tz or _zone(attrs, ids, fleet_tz)
    found = analyse(
        frame,
        zone,
        _members(attrs),
        d,
        k=k,
        criterion=criterion,
        min_days=min_days,
        resamples=resamples,
        calendar=calendar,
    )
    run_id = store.save_run(
        conn,
        start,
        end,
        zone,
        _definitions(d, min_days),
        _clustering(found),
        _meter_rows(found, attrs),
        _segment_rows(found, _members(attrs)),
        _centre_rows(found, d),
        source,
    )
    return Computed(
        run_id,
        start,
        end,
        zone,
        len(ids),
        frame.height,
        len(found.shapes[0]),
        int((found.clustering.labels >= 0).sum()) if found.clustering else 0,
        found.clustering.k if found.clustering else None,
        found.segments.height,
        found.no_clustering,
    )


def _definitions(d: Definitions, min_days: int) -> dict[str, Any]:
    return {
        "peak_hours": str(d.peak),
        "base_load": f"p{round(d.base_quantile * 100)} of half-hourly kW,"
        f" {d.night_start:02d}:00-{d.night_end:02d}:00 local",
        "base_quantile": d.base_quantile,
        "night_start_h": d.night_start,
        "night_end_h": d.night_end,
        "min_days_to_cluster": min_days,
    }


def _clustering(found: Patterns) -> dict[str, Any] | None:
    c = found.clustering
    if c is None:
        return {"k": None, "why_none": found.no_clustering}
    return {
        "k": c.k,
        "criterion": c.criterion,
        "scores": {str(k): v for k, v in c.scores.items()},
        "stability": None if c.stability is None else asdict(c.stability),
        "clustered": int((c.labels >= 0).sum()),
        "unusual": [i for i, label in zip(c.ids, c.labels, strict=True) if label < 0],
    }


def _meter_rows(found: Patterns, attrs: pl.DataFrame) -> list[dict[str, Any]]:
    days = _nested(found.meter_days)
    ids, shapes = found.shapes
    shape_of = {i: shapes[n].tolist() for n, i in enumerate(ids)}
    extra = {r["id"]: r for r in attrs.iter_rows(named=True)}
    rows = []
    for row in found.meters.iter_rows(named=True):
        ident = row["id"]
        meta = extra.get(ident, {})
        rows.append(
            {
                "meter_id": ident,
                "tariff": meta.get("tariff"),
                "region": meta.get("region"),
                "acorn": meta.get("acorn"),
                "cluster": row.get("cluster"),
                "shape": shape_of.get(ident),
                "typical_days": days.get(ident, {}),
                **_figures(row),
            }
        )
    return rows


def _segment_rows(found: Patterns, members: pl.DataFrame) -> list[dict[str, Any]]:
    if not found.segments.height:
        return []
    sizes = {
        (str(d), str(k)): int(n) for d, k, n in members.group_by("dim", "key").len().iter_rows()
    }
    by_dim = {
        str(dim): _nested(part.drop("dim")) for (dim,), part in found.segment_days.group_by("dim")
    }
    rows = []
    for row in found.segments.iter_rows(named=True):
        dim, key = row["dim"], row["id"]
        rows.append(
            {
                "dim": dim,
                "key": key,
                "households": sizes.get((dim, key), 0),
                "typical_days": by_dim.get(dim, {}).get(key, {}),
                **_figures(row),
            }
        )
    return rows


def _centre_rows(found: Patterns, d: Definitions) -> list[dict[str, Any]]:
    c = found.clustering
    if c is None:
        return []
    sizes = np.bincount(c.labels[c.labels >= 0], minlength=c.k)
    return [
        {
            "cluster": n,
            "households": int(sizes[n]),
            "peak_time": slot_label(int(np.argmax(centre))),
            "peak_share": float(centre[d.peak.start_slot : d.peak.end_slot].sum()),
            "centre": centre.tolist(),
        }
        for n, centre in enumerate(c.centres)
    ]


def run(ctx: JobContext) -> Outcome:
    """The trailing year (365 UTC days) up to the end of the interval; skipped when it
    holds no measured half-hour. Keeps the newest :data:`KEEP_BATCH_RUNS` runs of the
    job (runs made with ``metrify patterns run`` are kept until replaced)."""
    end = ctx.interval.end
    try:
        done = compute(
            ctx.conn,
            end - YEAR,
            end,
            ctx.settings.fleet_timezone,
            source="batch",
            calendar=ctx.settings.holidays,
        )
    except NoData as exc:
        raise JobSkipped(str(exc)) from None
    pruned = store.prune(ctx.conn, "batch", KEEP_BATCH_RUNS)
    return Outcome(rows=done.meters, details=asdict(done) | {"pruned_runs": pruned})


def compare(
    homes: pl.DataFrame,
    by: str,
    peak_hours: str,
    treated: str | None = None,
    control: str | None = None,
    resamples: int = 2000,
) -> dict[str, Any]:
    """A run's households (:func:`metrify.stores.patterns.households`) compared by
    ``by`` (:data:`BY`); by tariff, ToU against Std unless other groups are named.
    ValueError (the caller's to show) for an unknown ``by``, a grouping no household
    has, or a named group with fewer than two households."""
    if by not in BY:
        raise ValueError(f"by {by!r}: use one of {', '.join(BY)}")
    if by == "tariff" and treated is None and control is None:
        treated, control = "ToU", "Std"
    if (treated is None) != (control is None):
        raise ValueError("name both the treated and the control group, or neither")
    homes = homes.with_columns(pl.col("cluster").cast(pl.String))
    if homes[by].drop_nulls().len() == 0:
        raise ValueError(f"no household of this run has a {by}")
    if treated is not None and control is not None:
        counts = homes.filter(pl.col("peak_share").is_not_null())[by].value_counts()
        have = {r[by]: r["count"] for r in counts.iter_rows(named=True)}
        short = [g for g in (treated, control) if have.get(g, 0) < 2]
        if short:
            raise ValueError(f"{by} {', '.join(short)}: fewer than two households in this run")
    peak = PeakHours.parse(peak_hours)
    result = comparison(
        homes.rename({by: "group"}),
        "group",
        treated,
        control,
        (peak.start_slot, peak.end_slot),
        resamples=resamples,
    )
    return result | {"by": by, "peak_hours": peak_hours}
