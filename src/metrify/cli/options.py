"""Command-line options shared by every command that reads files (ingest, produce).

One definition, so ``metrify ingest`` and ``metrify produce`` read a file the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Paths = Annotated[
    list[Path], typer.Argument(help="CSV (.csv, .csv.gz), Parquet or JSON Lines files")
]
Maps = Annotated[
    list[str],
    typer.Option(
        "--map",
        help=(
            "FIELD=COLUMN: read FIELD from the file's COLUMN (readings also take"
            " estimated=COLUMN: the values the source estimated)"
        ),
    ),
]
Sets = Annotated[
    list[str],
    typer.Option(
        "--set",
        help="FIELD=VALUE: a constant for every row (readings: also commodity=... and "
        "unit=... of the meters the load registers)",
    ),
]
Scales = Annotated[
    list[str], typer.Option("--scale", help="FIELD=FACTOR: multiply a field (unit change)")
]
Interval = Annotated[
    int | None,
    typer.Option("--interval", help="interval length in seconds where the file has none"),
]
Tz = Annotated[
    str | None,
    typer.Option(
        "--tz",
        help="time zone of naive timestamps: an IANA name, or a fixed offset such as "
        "+10:00 for a file in standard time all year (default UTC)",
    ),
]
TsEnd = Annotated[bool, typer.Option("--ts-end", help="timestamps mark the END of each interval")]
TsFormat = Annotated[
    str | None,
    typer.Option(
        "--ts-format",
        help="the timestamps' format (strftime, e.g. '%d/%m/%Y %H:%M'); default: read "
        "ISO 8601, epoch numbers and day- or month-first dates as they come",
    ),
]
Units = Annotated[
    list[str],
    typer.Option(
        "--unit",
        help="FIELD=UNIT: the file's unit of FIELD, converted to the contract's "
        "(degF, Wh, MWh, GJ, W, kV...)",
    ),
]
NoHeader = Annotated[
    bool,
    typer.Option("--no-header", help="the CSV file has no header line; columns are #1, #2, ..."),
]
SkipLines = Annotated[
    int,
    typer.Option(
        "--skip-lines",
        help="lines above a CSV file's header to pass over (an export's title, account, ...)",
    ),
]
Wide = Annotated[
    str | None,
    typer.Option(
        "--wide",
        help="a row per day and a column per interval (00:15, 00:30, ...) holding FIELD; "
        "--map ts=COLUMN names the date column",
    ),
]
Channels = Annotated[
    str | None,
    typer.Option(
        "--channels",
        help="CHANNEL=VALUE: a row per value, COLUMN CHANNEL naming its channel (an OBIS "
        "code, a name for --map) and VALUE holding it; a reading's rows are gathered",
    ),
]
Sheet = Annotated[
    str | None,
    typer.Option(
        "--sheet", help="a spreadsheet's sheet to read, by name or number (default: the first)"
    ),
]
Encoding = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="the CSV file's character set when it is not UTF-8 (e.g. cp1252, latin-1)",
    ),
]
RegisterDigits = Annotated[
    int | None,
    typer.Option(
        "--register-digits",
        help="digits of the cumulative register (it rolls over at 10^N of its unit); "
        "default: detected at a wrap",
    ),
]
