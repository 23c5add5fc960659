"""Property: whatever a CSV file holds, every line ends up stored or in quarantine.

Random rows mixing good readings, garbage fields, ragged lines and repeats go through
the whole CLI path into the real database; the accounting must balance exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner

from metrify.cli import app
from metrify.settings import Settings

meter = st.sampled_from(["M1", "M2", "bad id", "", "M:3"])
stamp = st.one_of(
    st.builds(
        lambda d, h, m: f"2013-01-{d:02d} {h:02d}:{m:02d}:00",
        st.integers(1, 3),
        st.integers(0, 23),
        st.sampled_from([0, 30]),
    ),
    st.text(alphabet="0123456789-: T", max_size=12),
)
value = st.one_of(
    st.floats(min_value=0, max_value=50, allow_nan=False).map(lambda v: f"{v:.3f}"),
    st.sampled_from(["", "Null", "-1", "abc", "nan", "1e999", " 0.5 "]),
)
row = st.one_of(
    st.builds(lambda a, b, c: f"{a},{b},{c}", meter, stamp, value),
    st.text(alphabet="abc,;x1 ", max_size=15).filter(lambda t: t.strip() != ""),
)


@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(row, min_size=1, max_size=40))
def test_every_line_is_stored_or_quarantined(
    rows: list[str], settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("TRUNCATE readings, reading_history, quarantine, meters")
    path = tmp_path / "mixed.csv"
    path.write_text("meter_id,ts,import_kwh\n" + "\n".join(rows) + "\n")
    result = CliRunner().invoke(
        app, ["ingest", "readings", str(path), "--interval", "1800", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    lines = sum(1 for r in rows if r.strip())
    assert summary["read"] == lines
    assert summary["accepted"] + summary["duplicates"] + summary["quarantined"] == lines
    stored = conn.execute("SELECT count(*) FROM readings").fetchone()
    quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    assert stored == (summary["accepted"] + summary["gaps"],)
    assert quarantined == (summary["quarantined"],)
