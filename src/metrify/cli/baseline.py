"""``metrify baseline``: weather-normalised baselines of meters linked to a station.

* ``fit``: CalTRACK's daily degree-day model and/or the hourly TOWT model over a period,
  with CV(RMSE) and NMBE (``--save`` keeps them in the store, as the batch job does);
* ``weather-effect``: how much of a month's change in use is the weather, for a meter,
  a tariff segment or the fleet;
* ``savings``: savings after a change, with ASHRAE Guideline 14's 90 % uncertainty;
* ``show``: the fits stored for a meter.

The answers are :mod:`metrify.batch.baselines`', the same as the API's.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from metrify.analytics.baselines import ModelKind
from metrify.batch import baselines as answers
from metrify.cli.apps import baseline_app
from metrify.cli.common import UserError, console, friendly, load_settings
from metrify.pipeline.session import open_session
from metrify.stores import baselines as store

__all__ = ["fit", "savings", "show", "weather_effect"]

AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
Meter = Annotated[str | None, typer.Option("--meter", help="one meter")]


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: use a date, YYYY-MM-DD") from None


def _models(model: str) -> tuple[ModelKind, ...]:
    if model == "both":
        return answers.MODELS
    if model in answers.MODELS:
        return (model,)
    raise UserError(f"--model {model}: use daily, hourly or both")


_UNITS = {"daily": "days", "hourly": "hours"}


def _emit(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")


def _pct(value: float | None) -> str:
    return "" if value is None or value != value else f"{value * 100:.1f} %"


@baseline_app.command("fit")
@friendly
def fit(
    meter: Annotated[str, typer.Option("--meter", help="the meter")],
    start: Annotated[str | None, typer.Option("--from", help="first local day")] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="end local day, exclusive (default: after the newest reading)"),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="daily, hourly or both")] = "both",
    save: Annotated[bool, typer.Option("--save", help="keep the fits in the store")] = False,
    as_json: AsJson = False,
) -> None:
    """Fit the baselines of a meter (default: the 365 days up to its newest reading)."""
    kinds = _models(model)
    first, last = _date(start, "--from"), _date(end, "--to")
    settings = load_settings()
    with open_session(settings) as session:
        try:
            done = answers.fit_meter(
                session.conn, meter, kinds, first, last, settings.fleet_timezone
            )
        except answers.NotAnswerable as exc:
            raise UserError(str(exc)) from None
        if save:
            store.save_fits(session.conn, done)
    if as_json:
        for row in done:
            _emit(row)
        return
    table = Table(title=f"baselines of {meter}")
    for name in ("model", "from", "to", "n", "p", "CV(RMSE)", "NMBE", "form"):
        table.add_column(name)
    for row in done:
        table.add_row(
            row["model"], row["from"], row["to"], str(row["n"]), str(row["p"]),
            _pct(row["cvrmse"]), _pct(row["nmbe"]), _form(row),
        )  # fmt: skip
    console.print(table)


def _form(row: dict[str, Any]) -> str:
    p = row["params"]
    if row["model"] == "hourly":
        shrunk = ", monthly corrections shrunk" if p.get("shrinkage") else ""
        return (
            f"TOWT, {p['occupied_hours_of_week']} occupied hours/week, {p['segmentation']}" + shrunk
        )
    parts = [f"{p['intercept']:.2f} kWh/d"]
    if p["heating_slope"] is not None:
        parts.append(f"+ {p['heating_slope']:.3f} x HDD({p['heating_balance_c']:g} °C)")
    if p["cooling_slope"] is not None:
        parts.append(f"+ {p['cooling_slope']:.3f} x CDD({p['cooling_balance_c']:g} °C)")
    segments = p.get("segments") or []
    if len(segments) > 1:
        # the whole-year line, then how the predictions are split
        parts.append(f"(year); predicted by {len(segments)} segments: {p['split']}")
    return " ".join(parts)


@baseline_app.command("weather-effect")
@friendly
def weather_effect(
    month: Annotated[str, typer.Option("--month", help="the month, YYYY-MM")],
    against: Annotated[
        str | None,
        typer.Option(
            "--against", help="compare with (default: a year before, else the month before)"
        ),
    ] = None,
    meter: Meter = None,
    segment: Annotated[str | None, typer.Option("--segment", help="a tariff segment")] = None,
    fleet: Annotated[bool, typer.Option("--fleet", help="every meter")] = False,
    as_json: AsJson = False,
) -> None:
    """How much of a month's change in use is the weather (the daily baseline predicted
    with each month's temperatures), and how much is everything else."""
    settings = load_settings()
    with open_session(settings) as session:
        try:
            effect = answers.weather_effect(
                session.conn, month, against, meter=meter, segment=segment, fleet=fleet,
                default_tz=settings.fleet_timezone,
            )  # fmt: skip
        except answers.NotAnswerable as exc:
            raise UserError(str(exc)) from None
    if as_json:
        _emit(effect)
        return
    console.print(
        f"{effect['subject']}, {effect['month']} against {effect['against']}"
        f" ({effect['meters']} meter(s), {effect['days']} days):\n"
        f"  use per day      {effect['actual_against_per_day']:.2f} -> "
        f"{effect['actual_per_day']:.2f} kWh ({effect['change_kwh']:+.1f} kWh over the month)\n"
        f"  mean temperature {effect['mean_temperature_against_c']:.1f} -> "
        f"{effect['mean_temperature_c']:.1f} °C\n"
        f"  weather          {effect['weather_kwh']:+.1f} kWh\n"
        f"  calendar         {effect['calendar_kwh']:+.1f} kWh (weekend days)\n"
        f"  everything else  {effect['other_kwh']:+.1f} kWh",
        soft_wrap=True,  # lines of their own: never folded at a log's 80 columns
    )


@baseline_app.command("savings")
@friendly
def savings(
    meter: Annotated[str, typer.Option("--meter", help="the meter")],
    change: Annotated[str, typer.Option("--change", help="local day the change took effect")],
    until: Annotated[
        str | None, typer.Option("--to", help="end of the reporting period (default: a year on)")
    ] = None,
    model: Annotated[str, typer.Option("--model", help="daily or hourly")] = "daily",
    baseline_days: Annotated[
        int, typer.Option("--baseline-days", help="days of baseline before the change")
    ] = 365,
    as_json: AsJson = False,
) -> None:
    """Savings after a change: the baseline fitted before it, predicted with the
    reporting period's weather, minus the actual use; with a 90 % uncertainty."""
    kinds = _models(model)
    if len(kinds) != 1:
        raise UserError("--model: use daily or hourly")
    day = _date(change, "--change")
    assert day is not None
    settings = load_settings()
    with open_session(settings) as session:
        try:
            result = answers.savings(
                session.conn, meter, day, _date(until, "--to"), kinds[0], baseline_days,
                settings.fleet_timezone,
            )  # fmt: skip
        except answers.NotAnswerable as exc:
            raise UserError(str(exc)) from None
    if as_json:
        _emit(result)
        return
    pct = result["savings_pct"]
    console.print(
        f"{meter}: change on {result['change']}, {result['model']} baseline"
        f" {result['baseline_from']}..{result['change']}"
        # the points the fit had: the period asked for may reach before the data (a
        # 365-day baseline of a meter stored from January has half a year)
        f" ({result['baseline_points']} {_UNITS[result['model']]} with data,"
        f" CV(RMSE) {_pct(result['cvrmse'])})\n"
        f"  predicted {result['predicted_kwh']:.1f} kWh, actual {result['actual_kwh']:.1f} kWh"
        f" over {result['reporting_points']} {_UNITS[result['model']]}\n"
        f"  savings   {result['savings_kwh']:+.1f} kWh"
        + (f" ({pct:+.1f} %)" if pct is not None else "")
        + f" ± {result['uncertainty_kwh']:.1f} kWh at 90 %"
        + ("" if result["significant"] else " (not distinguishable from zero)"),
        soft_wrap=True,  # lines of their own: never folded at a log's 80 columns
    )


@baseline_app.command("show")
@friendly
def show(
    meter: Annotated[str, typer.Option("--meter", help="the meter")],
    model: Annotated[str | None, typer.Option("--model", help="daily or hourly")] = None,
    as_json: AsJson = False,
) -> None:
    """The fits stored for a meter, newest period first."""
    if model is not None:
        _models(model)
    settings = load_settings()
    with open_session(settings) as session:
        rows = store.fits(session.conn, meter, model)
    if as_json:
        for row in rows:
            _emit(row)
        return
    if not rows:
        console.print(f"no stored baseline for {meter}")
        return
    table = Table(title=f"stored baselines of {meter}")
    for name in ("model", "from", "to", "n", "p", "CV(RMSE)", "NMBE", "fitted"):
        table.add_column(name)
    for row in rows:
        table.add_row(
            row["model"], row["from"], row["to"], str(row["n"]), str(row["p"]),
            _pct(row["cvrmse"]), _pct(row["nmbe"]), row["fitted_at"][:19],
        )  # fmt: skip
    console.print(table)
