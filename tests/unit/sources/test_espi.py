"""Green Button (ESPI) XML feeds read as readings rows: flows side by side, Wh and its
power of ten, estimates marked, bad interval readings kept with their place, and
feeds that are no such thing (or declare entities) refused. Expected rows are written
out from the feeds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrify.sources import ReaderError, read_batches

ESPI = 'xmlns="http://naesb.org/espi"'
BASE = "https://u.example/espi/1_1/resource/RetailCustomer/9/UsagePoint/42"
TYPES = "https://u.example/espi/1_1/resource/ReadingType"
T0 = 1_357_000_000 - 1_357_000_000 % 3600  # an hour's start


def _entry(href: str, body: str, related: str | None = None) -> str:
    link = f'<link href="{href}" rel="self"/>'
    if related:
        link += f'<link href="{related}" rel="related"/>'
    return f"<entry>{link}<content>{body}</content></entry>"


def _reading(i: int, value: str | None, quality: int | None = None) -> str:
    q = f"<ReadingQuality><quality>{quality}</quality></ReadingQuality>" if quality else ""
    v = f"<value>{value}</value>" if value is not None else ""
    period = f"<timePeriod><duration>3600</duration><start>{T0 + 3600 * i}</start></timePeriod>"
    return f"<IntervalReading>{q}{period}{v}</IntervalReading>"


def _feed(tmp_path: Path, entries: list[str], name: str = "gb.xml") -> Path:
    path = tmp_path / name
    atom = '<feed xmlns="http://www.w3.org/2005/Atom">' + "".join(entries) + "</feed>"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>' + atom)
    return path


def _type(flow: int, power: int, uom: int = 72) -> str:
    return (
        f"<ReadingType {ESPI}><flowDirection>{flow}</flowDirection>"
        f"<powerOfTenMultiplier>{power}</powerOfTenMultiplier><uom>{uom}</uom></ReadingType>"
    )


def test_a_feed_reads_as_rows_of_the_usage_point(tmp_path: Path) -> None:
    delivered = "".join(_reading(i, str(950 + i), 8 if i == 2 else None) for i in range(3))
    received = "".join(_reading(i, str(i), None) for i in range(3))
    path = _feed(
        tmp_path,
        [
            _entry(BASE, f"<UsagePoint {ESPI}/>"),
            _entry(f"{BASE}/MeterReading/1", f"<MeterReading {ESPI}/>", f"{TYPES}/1"),
            _entry(f"{BASE}/MeterReading/2", f"<MeterReading {ESPI}/>", f"{TYPES}/2"),
            _entry(f"{BASE}/MeterReading/1/IntervalBlock/1", f"<IntervalBlock {ESPI}>"
                   f"{delivered}{_reading(3, None)}{_reading(4, 'n/a')}</IntervalBlock>"),
            _entry(f"{BASE}/MeterReading/2/IntervalBlock/1",
                   f"<IntervalBlock {ESPI}>{received}</IntervalBlock>"),
            # the reading types last: a feed may list them after the blocks
            _entry(f"{TYPES}/1", _type(1, 0)),
            _entry(f"{TYPES}/2", _type(19, -1)),  # tenths of a Wh
        ],
    )  # fmt: skip
    (batch,) = list(read_batches(path, 100))
    start = dt.datetime.fromtimestamp(T0, dt.UTC)
    assert batch.data.rows() == [
        ("42", start + dt.timedelta(hours=i), 3600, (950 + i) / 1000, i / 10_000, i == 2)
        for i in range(3)
    ]
    assert batch.data.columns[3:] == ["import_kwh", "export_kwh", "estimated"]
    assert [(b.reason, b.line) for b in batch.bad] == [
        ("Green Button IntervalReading: no value", 4),
        ("Green Button IntervalReading: value 'n/a' is no number", 5),
    ]
    assert batch.lines is not None and batch.lines.tolist() == [1, 2, 3]


def test_what_is_no_green_button_feed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="no Green Button"):
        list(read_batches(_feed(tmp_path, [_entry(BASE, f"<UsagePoint {ESPI}/>")]), 100))
    broken = tmp_path / "cut.xml"
    broken.write_text('<feed xmlns="http://www.w3.org/2005/Atom"><entry><link')
    with pytest.raises(ReaderError, match="not well-formed XML"):
        list(read_batches(broken, 100))
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><feed>&b;</feed>'
    )
    with pytest.raises(ReaderError, match="declares a document type"):
        list(read_batches(bomb, 100))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    readings=st.lists(
        st.tuples(
            st.integers(0, 5),  # the hour
            st.one_of(st.none(), st.sampled_from(["12", "0", "-3", "1e3", "x", "", " 7 "])),
            st.booleans(),  # has a time period
        ),
        max_size=20,
    )
)
def test_property_every_interval_reading_is_a_row_value_or_a_bad_row(
    tmp_path: Path, readings: list[tuple[int, str | None, bool]]
) -> None:
    body = ""
    for hour, value, timed in readings:
        period = f"<timePeriod><duration>3600</duration><start>{T0 + 3600 * hour}</start>"
        v = f"<value>{value}</value>" if value is not None else ""
        body += f"<IntervalReading>{period + '</timePeriod>' if timed else ''}{v}</IntervalReading>"
    block = _entry(
        f"{BASE}/MeterReading/1/IntervalBlock/1", f"<IntervalBlock {ESPI}>{body}</IntervalBlock>"
    )
    try:
        batches = list(read_batches(_feed(tmp_path, [block]), 7))
    except ReaderError:
        assert not readings  # only a feed without interval readings is refused
        return
    good = [(h, v) for h, v, timed in readings if timed and v is not None and _number(v)]
    bad = [b for batch in batches for b in batch.bad]
    assert len(bad) == len(readings) - len(good)
    assert all(1 <= (b.line or 0) <= len(readings) for b in bad)
    rows = sum(batch.data.height for batch in batches)
    assert rows == len({h for h, _ in good})  # one row per time; a repeat shares it


def _number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


def _typed(uom: int, commodity: int | None = None) -> str:
    code = f"<commodity>{commodity}</commodity>" if commodity is not None else ""
    return (
        f"<ReadingType {ESPI}>{code}<flowDirection>1</flowDirection>"
        f"<powerOfTenMultiplier>0</powerOfTenMultiplier><uom>{uom}</uom></ReadingType>"
    )


@pytest.mark.parametrize(
    ("uom", "commodity", "declared", "factor"),
    [
        (169, None, ("gas", "kWh"), 29.3071),  # therms: gas, converted to kWh here
        (42, 7, ("gas", "m3"), 1.0),  # natural gas in m3: left for the calorific value
        (42, None, ("gas", "m3"), 1.0),
        (42, 9, ("water", "m3"), 1.0),  # potable water
        (72, 12, ("heat", "kWh"), 0.001),  # heating fluid in Wh
    ],
)
def test_a_feed_declares_what_its_meter_measures(
    tmp_path: Path, uom: int, commodity: int | None, declared: tuple[str, str], factor: float
) -> None:
    """A reading type that is no electricity declares its meter's commodity and unit on
    every row (``meter.commodity``, ``meter.unit``), and the values stay in that unit."""
    readings = "".join(_reading(i, str(2 + i), None) for i in range(2))
    path = _feed(
        tmp_path,
        [
            _entry(f"{BASE}/MeterReading/1", f"<MeterReading {ESPI}/>", f"{TYPES}/1"),
            _entry(f"{BASE}/MeterReading/1/IntervalBlock/1",
                   f"<IntervalBlock {ESPI}>{readings}</IntervalBlock>"),
            _entry(f"{TYPES}/1", _typed(uom, commodity)),
        ],
    )  # fmt: skip
    (batch,) = list(read_batches(path, 100))
    rows = batch.data.select("import_kwh", "meter.commodity", "meter.unit").rows()
    assert rows == [(pytest.approx((2 + i) * factor), *declared) for i in range(2)]


def test_an_electricity_feed_declares_nothing(tmp_path: Path) -> None:
    readings = _reading(0, "950", None)
    path = _feed(
        tmp_path,
        [
            _entry(f"{BASE}/MeterReading/1", f"<MeterReading {ESPI}/>", f"{TYPES}/1"),
            _entry(f"{BASE}/MeterReading/1/IntervalBlock/1",
                   f"<IntervalBlock {ESPI}>{readings}</IntervalBlock>"),
            _entry(f"{TYPES}/1", _typed(72, 1)),  # electricity, secondary metered
        ],
    )  # fmt: skip
    (batch,) = list(read_batches(path, 100))
    assert batch.data.columns == ["meter_id", "ts", "interval_s", "import_kwh", "estimated"]
