"""What ``metrify ingest`` prints while it runs, when nobody watches a terminal.

Real data: the GB national demand file raises medium alerts by the hundred (unusual
national load); each used to print as one JSON line into the progress output. Now the
console gets a count per severity and a few lines, and plain progress lines appear
although stderr is not a terminal (CliRunner captures it).
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from metrify.cli import app
from metrify.cli.progress import ALERT_LINES
from metrify.settings import Settings
from support.realdata import shared_data

runner = CliRunner()
GB_MAP = [
    "--set",
    "node_id=GB",
    "--map",
    "ts=TIMESTAMP",
    "--map",
    "load_mw=ND",
    "--interval",
    "1800",
]
#: rows of the GB file per part: two parts, a few months each
ROWS = 6000


def _parts(tmp_path: Path) -> list[Path]:
    (source,) = sorted((shared_data() / "gb-national-demand").glob("*.csv"))
    header, *rows = source.read_text().splitlines()
    parts = []
    for i in range(2):
        part = tmp_path / f"gb-{i}.csv"
        part.write_text("\n".join([header, *rows[i * ROWS : (i + 1) * ROWS]]) + "\n")
        parts.append(part)
    return parts


def test_alerts_are_counted_not_printed_and_progress_shows_without_a_terminal(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    parts = _parts(tmp_path)
    result = runner.invoke(app, ["ingest", "grid", *map(str, parts), *GB_MAP, "--json"])
    assert result.exit_code == 0, result.stderr
    alerted = dict(
        conn.execute(
            "SELECT severity, count(*) FROM anomalies WHERE alerted_at IS NOT NULL GROUP BY 1"
        ).fetchall()
    )
    assert sum(alerted.values()) > ALERT_LINES  # the data does raise alerts
    err = result.stderr.splitlines()
    assert not [line for line in err if "anomaly {" in line]  # no alert as a JSON line
    (counts,) = [line for line in err if line.startswith("alerts: ")]
    shown = re.findall(r"(\d[\d,]*) (\w+)", counts.split("(", 1)[1])
    assert {severity: int(n.replace(",", "")) for n, severity in shown} == alerted
    at = err.index(counts)
    assert len([line for line in err[at + 1 :] if line.startswith("  ")]) == ALERT_LINES
    assert err[at + ALERT_LINES + 1].startswith("see them all: metrify anomalies list")
    # plain progress: the start, the end of the reading, nothing per alert
    progress = [line for line in err if line.startswith("ingest grid: ")]
    assert progress[0].startswith(f"ingest grid: {len(parts)} file(s), ")
    assert progress[-1].startswith(f"ingest grid: all {len(parts)} file(s) read, ")
    assert len(err) < 20
    # stdout is the summary alone
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("{")
