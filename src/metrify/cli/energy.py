"""``metrify energy``: energy, peak demand and interval counts from the aggregates.

One subject (a meter, a grid node, a region, a tariff segment or the fleet), one
resolution, a local date range, one commodity (a group sums its electricity meters
unless ``--commodity`` names gas, heat or water; a meter answers in its own); the
answer comes from the 30-minute aggregates (:mod:`metrify.stores.aggregates`), rebuilt
first where writes marked them.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from metrify.cli.apps import app
from metrify.cli.common import UserError, console, friendly, load_settings
from metrify.pipeline.session import open_session
from metrify.stores import aggregates

__all__ = ["energy"]

RESOLUTIONS = tuple(aggregates.UNITS)


@app.command("energy")
@friendly
def energy(
    start: Annotated[str, typer.Option("--from", help="first local date (or ISO time)")],
    end: Annotated[str, typer.Option("--to", help="end local date, exclusive")],
    resolution: Annotated[
        str, typer.Option("--resolution", help="30m, 1h, 1d, 1w (ISO weeks) or 1mo")
    ] = "1d",
    meter: Annotated[str | None, typer.Option("--meter", help="one meter")] = None,
    node: Annotated[str | None, typer.Option("--node", help="a grid node or feeder")] = None,
    region: Annotated[str | None, typer.Option("--region", help="a region")] = None,
    segment: Annotated[str | None, typer.Option("--segment", help="a tariff segment")] = None,
    fleet: Annotated[bool, typer.Option("--fleet", help="every meter")] = False,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="zone of the buckets (default: the meter's, or the fleet's)"),
    ] = None,
    commodity: Annotated[
        str | None,
        typer.Option(
            "--commodity",
            help="electricity, gas, heat or water: which meters a group sums"
            " (default electricity; a meter answers in its own)",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="one JSON object per bucket, with commodity and unit"),
    ] = False,
) -> None:
    """Energy (kWh), peak demand (kW) and interval counts per local bucket."""
    try:
        dim, key = aggregates.subject(meter, node, region, segment, fleet)
    except aggregates.BadQuery:
        raise UserError(
            "give exactly one of --meter, --node, --region, --segment or --fleet"
        ) from None
    if resolution not in RESOLUTIONS:
        raise UserError(f"--resolution {resolution}: use one of {', '.join(RESOLUTIONS)}")
    settings = load_settings()
    with open_session(settings) as session:
        try:
            answered = aggregates.answer(
                session.conn,
                dim,
                key,
                resolution,  # type: ignore[arg-type]
                start,
                end,
                tz,
                settings.fleet_timezone,
                commodity,
            )
        except aggregates.BadQuery as exc:
            raise UserError(str(exc)) from None
    rows: list[dict[str, Any]] = orjson.loads(answered.buckets)
    if as_json:
        for row in rows:
            row = {**row, "commodity": answered.commodity, "unit": answered.unit}
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        return
    _table(
        f"{dim} {key}, {answered.commodity} ({answered.unit}), {resolution} in {answered.zone}",
        rows,
    )


def _table(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print(f"{title}: no data in that range")
        return
    table = Table(title=title)
    for name in rows[0]:
        table.add_column(name, justify="left" if name == "start" else "right")
    for row in rows:
        table.add_row(
            *(
                "" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
                for v in row.values()
            )
        )
    console.print(table)
