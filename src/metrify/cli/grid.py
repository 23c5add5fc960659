"""``metrify grid``: grid insight per node or feeder from the stored measurements.

``loading`` (utilisation against capacity, headroom, load-duration curve),
``peak-drivers`` (which meters make the peak: coincidence factors and shares),
``losses`` (feeder energy against its meters', with how much data was missing),
``compliance`` (EN 50160 voltage and frequency counts) and ``flex`` (the peak after
moving a share of peak-hour load, by default the share time-of-use households moved).
The answers are :mod:`metrify.api.grid`'s, the same as the API's ``/v1/grid/nodes/...``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from metrify.api import grid as answers
from metrify.cli.apps import grid_app
from metrify.cli.common import UserError, console, friendly, load_settings
from metrify.pipeline.session import open_session
from metrify.stores.pools import Connection

__all__ = ["compliance", "flex", "loading", "losses", "peak_drivers"]

Node = Annotated[str, typer.Option("--node", help="a grid node or feeder (with the nodes below)")]
From = Annotated[str, typer.Option("--from", help="first local date (or ISO time)")]
To = Annotated[str, typer.Option("--to", help="end local date, exclusive")]
Tz = Annotated[
    str | None,
    typer.Option("--tz", help="zone of the dates (default: the meters', else the fleet's)"),
]
Json = Annotated[bool, typer.Option("--json", help="the whole answer as one JSON object")]


def _run(call: Callable[[Connection, str], dict[str, Any]]) -> dict[str, Any]:
    settings = load_settings()
    with open_session(settings) as session:
        try:
            return call(session.conn, settings.fleet_timezone)
        except (answers.BadGridQuery, answers.UnknownNode) as exc:
            # the message as raised: it quotes the asker's text ("'x': expected a date"),
            # and stripping quotes off the whole line used to cut the opening one only
            raise UserError(str(exc)) from None


def _emit(answer: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(answer, option=orjson.OPT_NAIVE_UTC).decode() + "\n")


def _fmt(v: Any) -> str:
    """One cell. A list (the ``top`` peak times of peak-drivers) is its items, one per
    line: printing nothing for it hid when the peak was."""
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return "\n".join(_fmt(item) for item in v)
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1 else f"{v:,.2f}"
    return str(v)


def _facts(title: str, answer: dict[str, Any], keys: list[str]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key in keys:
        table.add_row(key, _fmt(answer.get(key)))
    console.print(table)


def _span(answer: dict[str, Any]) -> str:
    return f"{answer['from']:%Y-%m-%d %H:%M} to {answer['to']:%Y-%m-%d %H:%M} UTC"


def _nothing(node: str, answer: dict[str, Any], what: str) -> None:
    """One line for a range without data, as ``metrify energy`` says it: a table of
    empty cells looked like an answer whose figures were lost."""
    console.print(f"node {node}: {what} from {_span(answer)}", highlight=False, soft_wrap=True)


def _rows(title: str, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    table = Table(title=title)
    for key in keys:
        table.add_column(key, justify="left" if key in ("meter_id", "day") else "right")
    for row in rows:
        table.add_row(*(_fmt(row.get(k)) for k in keys))
    console.print(table)


@grid_app.command("loading")
@friendly
def loading(
    node: Node,
    start: From,
    end: To,
    tz: Tz = None,
    percentile: Annotated[
        float, typer.Option("--percentile", help="headroom also at this load quantile")
    ] = 0.99,
    points: Annotated[int, typer.Option("--points", help="load-duration curve points")] = 21,
    as_json: Json = False,
) -> None:
    """Utilisation against capacity: hours above 80% and 100%, headroom, duration curve."""
    answer = _run(
        lambda conn, fleet_tz: answers.loading(
            conn,
            node,
            start,
            end,
            tz=tz,
            fleet_tz=fleet_tz,
            percentile=percentile,
            points=points,
        )
    )
    if as_json:
        return _emit(answer)
    if not answer["intervals"]:
        return _nothing(node, answer, "no measured load and no meter readings")
    basis = "" if answer["basis"] == "node" else ", the sum of its meters (no measured load)"
    _facts(
        f"node {node} loading{basis}, {_span(answer)}",
        answer,
        [
            "capacity_mw",
            "hours",
            "missing",
            "peak_mw",
            "peak_ts",
            "mean_mw",
            "load_factor",
            "peak_utilisation",
            "hours_above_80",
            "hours_above_100",
            "headroom_mw",
            "percentile",
            "load_at_percentile_mw",
            "headroom_at_percentile_mw",
        ],
    )
    _rows(
        "load-duration curve",
        answer["duration_curve"],
        ["time_share", "hours", "load_mw", "utilisation"],
    )


@grid_app.command("peak-drivers")
@friendly
def peak_drivers(
    node: Node,
    start: From,
    end: To,
    tz: Tz = None,
    top: Annotated[int, typer.Option("--top", help="peak intervals averaged over")] = 1,
    limit: Annotated[int, typer.Option("--limit", help="meters listed")] = 20,
    as_json: Json = False,
) -> None:
    """Which meters drive the peak: demand at the peak, coincidence factor, share."""
    answer = _run(
        lambda conn, fleet_tz: answers.peak_drivers(
            conn, node, start, end, tz=tz, fleet_tz=fleet_tz, top=top, limit=limit
        )
    )
    if as_json:
        return _emit(answer)
    if answer["peak_kw"] is None:
        return _nothing(node, answer, "no measured load and no meter readings")
    _facts(
        f"node {node} peak ({answer['basis']})",
        answer,
        [
            "peak_kw",
            "peak_ts",
            "meters_peak_kw",
            "sum_of_peaks_kw",
            "group_coincidence",
            "meters_count",
        ],
    )
    _rows(
        "meters by share of the peak",
        answer["meters"],
        [
            "meter_id",
            "at_peak_kw",
            "own_peak_kw",
            "coincidence_factor",
            "share_of_peak",
            "at_peak_intervals",
        ],
    )


@grid_app.command("losses")
@friendly
def losses(node: Node, start: From, end: To, tz: Tz = None, as_json: Json = False) -> None:
    """Feeder energy against the sum of its meters, per local day, with missing data."""
    answer = _run(
        lambda conn, fleet_tz: answers.losses(conn, node, start, end, tz=tz, fleet_tz=fleet_tz)
    )
    if as_json:
        return _emit(answer)
    if not answer["days"]:
        return _nothing(node, answer, "no measured load and no meter readings")
    _facts(
        f"node {node} losses (complete days only)",
        answer,
        [
            "complete_days",
            "incomplete_days",
            "node_kwh",
            "meters_kwh",
            "loss_kwh",
            "loss_share",
            "raw_loss_kwh",
            "raw_loss_share",
        ],
    )
    _rows(
        f"per day ({answer['tz']})",
        answer["days"],
        [
            "day",
            "node_kwh",
            "meters_kwh",
            "loss_kwh",
            "loss_share",
            "meters",
            "meters_missing",
            "missing_readings",
            "estimated_readings",
            "complete",
        ],
    )


@grid_app.command("compliance")
@friendly
def compliance(
    node: Node,
    start: From,
    end: To,
    tz: Tz = None,
    lv_nominal: Annotated[
        float, typer.Option("--lv-nominal", help="meters' nominal voltage (V)")
    ] = 230.0,
    nominal_hz: Annotated[float, typer.Option("--nominal-hz", help="nominal frequency")] = 50.0,
    as_json: Json = False,
) -> None:
    """EN 50160: voltage per week (node and meters), frequency per year."""
    answer = _run(
        lambda conn, fleet_tz: answers.compliance(
            conn,
            node,
            start,
            end,
            tz=tz,
            fleet_tz=fleet_tz,
            lv_nominal_v=lv_nominal,
            nominal_hz=nominal_hz,
        )
    )
    if as_json:
        return _emit(answer)
    console.print(answer["method"], highlight=False)
    _rows(
        f"node {node} voltage per week (nominal {_fmt(answer['nominal_kv'])} kV)",
        answer["node_voltage_weeks"],
        ["week", "values", "coverage", "within_10", "min_v", "max_v", "compliant", "exact"],
    )
    mv = answer["meter_voltage"]
    console.print(
        f"meters with voltage: {mv['meters']}; meter-weeks compliant "
        f"{mv['meter_weeks_compliant']} of {mv['meter_weeks']}"
    )
    _rows(
        "meters, least compliant first",
        mv["per_meter"][:20],
        ["meter_id", "weeks", "weeks_compliant", "worst_within_10", "min_v", "max_v", "exact"],
    )
    _rows(
        "frequency per year",
        answer["frequency_years"],
        [
            "year",
            "hours",
            "coverage",
            "resolution_s",
            "within_1pct",
            "within_4_6pct",
            "min_hz",
            "max_hz",
            "compliant_995",
            "compliant_all",
        ],
    )


def _observed(effect: dict[str, Any], window: str, tou: str, std: str) -> str:
    """The observed tariff effect in words. ``relative`` is the share LESS of their
    energy the ToU meters used in the window; a negative one is said as "more" (with
    the interval turned round), not as "-42% less"."""
    rel, low, high = effect["relative"], effect["relative_low"], effect["relative_high"]
    if rel < 0:
        word, rel, low, high = "more", -rel, -high, -low
    else:
        word = "less"
    return (
        f"observed: {effect['n_tou']} {tou} meters used {rel:.1%} {word} of their energy"
        f" in {window} than {effect['n_std']} {std} meters (95% interval"
        f" {low:.1%} to {high:.1%} {word})"
    )


@grid_app.command("flex")
@friendly
def flex(
    node: Node,
    start: From,
    end: To,
    tz: Tz = None,
    shift: Annotated[
        float | None,
        typer.Option(
            "--shift",
            help="share of peak-window energy moved (default: what ToU meters moved vs Std)",
        ),
    ] = None,
    window: Annotated[str, typer.Option("--window", help="peak hours, local")] = "16-20",
    into: Annotated[str, typer.Option("--into", help="hours the load moves to")] = "20-24",
    tou: Annotated[str, typer.Option("--tou-tariff", help="time-of-use tariff name")] = "ToU",
    std: Annotated[str, typer.Option("--std-tariff", help="standard tariff name")] = "Std",
    as_json: Json = False,
) -> None:
    """The node's peak after moving a share of its meters' peak-hour load elsewhere."""
    answer = _run(
        lambda conn, fleet_tz: answers.flex(
            conn,
            node,
            start,
            end,
            tz=tz,
            fleet_tz=fleet_tz,
            share=shift,
            window=window,
            into=into,
            tou=tou,
            std=std,
        )
    )
    if as_json:
        return _emit(answer)
    if answer["peak_kw"] is None:
        return _nothing(node, answer, "no meter readings")
    effect = answer["tariff_effect"]
    if effect:
        console.print(_observed(effect, answer["window"], tou, std), highlight=False)
    _facts(
        f"node {node}: moving {answer['share']:.1%} of {answer['window']} into "
        f"{answer['into']} ({answer['tz']})",
        answer,
        [
            "moved_kwh",
            "peak_kw",
            "peak_ts",
            "new_peak_kw",
            "new_peak_ts",
            "reduction_kw",
            "reduction_share",
            "new_peak_in_window",
        ],
    )
