"""The interval of each meter, detected from its timestamps when a file does not say it.

A file of interval data rarely names its interval: it is in the spacing of the
timestamps. When ``--interval`` is not given and the file has no interval column, a
meter's interval is the **modal positive difference** between its consecutive distinct
timestamps (after ``--tz`` and the parsing of every other time option, so in UTC):

* duplicates (a difference of zero) do not count, and gaps (a difference of two or
  more intervals) and DST artefacts (a local-time file's hour that repeats or is skipped)
  are outvoted by the ordinary spacing, as long as the mode holds more than
  :data:`DOMINANT_SHARE` of a meter's differences and at least :data:`LEAD` times the
  next most common one;
* the mode must be a contract interval (60..86400 s, dividing the day);
* a meter is decided once :data:`SURE_DIFFS` differences have been seen (a day of
  half hours) and their mode is clear; until then its rows are held back (and later
  rows of the same meter are stamped with the decision), so the decision never changes
  for rows already handed on;
* a meter with fewer than :data:`MIN_DIFFS` differences cannot tell its interval by
  itself: it is given the interval every decided meter of the load shares, when they
  all share one, and the summary says so;
* anything else (no clear mode, a mode that is no contract interval, a lone short meter
  beside meters that disagree) is **ambiguous**: the command refuses a file whose first
  rows are ambiguous before anything is stored (``metrify ingest`` reads them first), and
  a meter found ambiguous later in a file has its rows quarantined with the candidate
  intervals in the reason. Both say to pass ``--interval``.

Register reads (``--map register_kwh=...`` without an energy column) go through the
same detection: hourly reads give hourly intervals. Reads taken at irregular times have
no clear mode and are refused, so the length of the intervals to derive must then be
given with ``--interval``.

The rows held back at any time are bounded (:data:`HOLD_ROWS`, about a few chunks): a
meter still undecided when the bound is reached is decided with what was seen. Only the
rows of undecided meters are parsed for their times (their first
:data:`PROBE_ROWS` per batch), and only the columns decoding needs: once every
meter of a file is decided, a batch costs one membership test and one lookup on its id
column.

Only file loads detect: the API's bodies and the Kafka and MQTT paths carry an explicit
``interval_s`` in their records (or their command's ``--interval``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import polars as pl

from metrify.contracts.records import Contract, interval_is_valid
from metrify.sources.batches import BadRow, RawBatch
from metrify.sources.mapping import ENERGY_FIELD, REGISTER_FIELD, Mapping, source_columns

__all__ = [
    "IntervalDetector",
    "Verdict",
    "describe",
    "detect_intervals",
    "needs_detection",
    "probe_records",
    "stamp_intervals",
]

#: a meter with fewer distinct-timestamp differences cannot tell its own interval
MIN_DIFFS: Final = 3
#: a meter with this many differences and a clear mode is decided
SURE_DIFFS: Final = 48
#: a meter with this many differences and still no clear mode is ambiguous for good
MAX_DIFFS: Final = 1_000
#: the mode must hold more than this share of a meter's differences ...
DOMINANT_SHARE: Final = 0.5
#: ... and at least this many times the count of the next most common difference
LEAD: Final = 2.0
#: a candidate named in a refusal holds at least this share of the differences
CANDIDATE_SHARE: Final = 0.05
#: rows of undecided meters parsed per batch and meter
PROBE_ROWS: Final = 200
#: rows held back at most while meters are undecided
HOLD_ROWS: Final = 600_000
#: the interval a probe decodes with (any valid one: only times and ids are used)
_PLACEHOLDER_S: Final = 3600


@dataclass(frozen=True)
class Verdict:
    """What the timestamps say of one meter's interval."""

    interval_s: int | None  # decided, or None
    candidates: tuple[int, ...] = ()  # the intervals the spacing allows, most common first
    diffs: int = 0  # how many differences were seen
    too_few: bool = False  # fewer than MIN_DIFFS differences
    note: str = ""  # why it is ambiguous


def describe(seconds: int) -> str:
    """``1800`` as ``1800 s (30 min)``: the way refusals and summaries name intervals."""
    if seconds % 3600 == 0:
        return f"{seconds} s ({seconds // 3600} h)"
    if seconds % 60 == 0:
        return f"{seconds} s ({seconds // 60} min)"
    return f"{seconds} s"


def judge(counts: dict[int, int]) -> Verdict:
    """The verdict on one meter from its counts of differences (seconds -> count)."""
    total = sum(counts.values())
    if total < MIN_DIFFS:
        return Verdict(None, tuple(sorted(counts, key=lambda d: (-counts[d], d))), total, True)
    ranked = sorted(counts, key=lambda d: (-counts[d], d))
    mode = ranked[0]
    second = counts[ranked[1]] if len(ranked) > 1 else 0
    valid = [d for d in ranked if interval_is_valid(d) and counts[d] >= CANDIDATE_SHARE * total]
    if (
        interval_is_valid(mode)
        and counts[mode] > DOMINANT_SHARE * total
        and counts[mode] >= LEAD * second
    ):
        return Verdict(mode, tuple(valid[:4]), total)
    if not interval_is_valid(mode):
        note = (
            f"the spacing is mostly {describe(mode)}, "
            "which is no interval of 60..86400 s dividing the day"
        )
    else:
        note = "no spacing dominates"
    return Verdict(None, tuple(valid[:4]), total, note=note)


@dataclass
class IntervalDetector:
    """Counts of timestamp differences per meter, carried from batch to batch.

    ``decided`` maps each decided meter to its interval (final); ``refused`` each meter
    found ambiguous to its verdict; ``assumed`` the short meters given the load's
    common interval.
    """

    counts: dict[str, Counter[int]] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)  # meter -> last time seen (us)
    decided: dict[str, int] = field(default_factory=dict)
    refused: dict[str, Verdict] = field(default_factory=dict)
    assumed: set[str] = field(default_factory=set)

    def observe(self, ids: pl.Series, ts: pl.Series) -> None:
        """Count the differences between the meters' consecutive distinct times in one
        batch (continuing from each meter's last time of earlier batches)."""
        frame = pl.DataFrame({"m": ids, "t": ts.dt.epoch("us")}).drop_nulls()
        if self.last:
            meters = frame.get_column("m").unique()
            carried = [(m, self.last[m]) for m in meters.to_list() if m in self.last]
            if carried:
                frame = pl.concat(
                    [
                        pl.DataFrame(
                            {"m": [c[0] for c in carried], "t": [c[1] for c in carried]},
                            schema=frame.schema,
                        ),
                        frame,
                    ]
                )
        if not frame.height:
            return
        frame = frame.unique().sort("m", "t")
        diffs = frame.select(
            "m", d=((pl.col("t") - pl.col("t").shift(1)).over("m") // 1_000_000)
        ).filter(pl.col("d") > 0)
        counted = diffs.group_by("m", "d").len()
        for meter, diff, n in counted.iter_rows():
            self.counts.setdefault(meter, Counter())[int(diff)] += int(n)
        for meter, last in frame.group_by("m").agg(pl.col("t").max()).iter_rows():
            self.last[meter] = max(int(last), self.last.get(meter, int(last)))
            self.counts.setdefault(meter, Counter())

    def settle(self, meters: Iterable[str] | None = None, *, final: bool = False) -> None:
        """Decide the meters (all seen, or those named) whose counts are conclusive; with
        ``final``, decide or refuse every one of them with what was seen."""
        names = list(self.counts) if meters is None else list(meters)
        short: list[str] = []
        for meter in names:
            if meter in self.decided or meter in self.refused:
                continue
            verdict = judge(self.counts.get(meter, Counter()))
            if verdict.interval_s is not None and (final or verdict.diffs >= SURE_DIFFS):
                self.decided[meter] = verdict.interval_s
            elif verdict.too_few:
                if final:
                    short.append(meter)
            elif final or verdict.diffs >= MAX_DIFFS:
                self.refused[meter] = verdict
        if short:
            common = set(self.decided.values())
            for meter in short:
                counts = self.counts.get(meter, Counter())
                if len(common) == 1:
                    (interval,) = common
                    if all(d % interval == 0 for d in counts):
                        self.decided[meter] = interval
                        self.assumed.add(meter)
                        continue
                verdict = judge(counts)
                note = "too few timestamps to tell" + (
                    f" (the other meters have {', '.join(describe(i) for i in sorted(common))})"
                    if common
                    else ""
                )
                self.refused[meter] = dataclasses.replace(
                    verdict,
                    candidates=tuple(i for i in sorted(common) if interval_is_valid(i))
                    or tuple(d for d in verdict.candidates if interval_is_valid(d)),
                    note=note,
                )

    def by_interval(self) -> dict[int, int]:
        """How many meters were given each interval."""
        return dict(sorted(Counter(self.decided.values()).items()))


def refusal(meter: str, verdict: Verdict) -> str:
    """One line saying why a meter's interval was not detected, and what to do."""
    candidates = (
        ", ".join(describe(c) for c in verdict.candidates) if verdict.candidates else "none"
    )
    return (
        f"cannot detect the interval of {meter}: {verdict.note or 'no spacing dominates'} "
        f"({verdict.diffs} differences; candidates: {candidates}); pass --interval SECONDS"
    )


def _probe_mapping(mapping: Mapping) -> Mapping:
    """The mapping a probe decodes with: any interval where none is known yet (the
    times' differences do not depend on it)."""
    if mapping.interval_s is not None:
        return mapping
    return dataclasses.replace(mapping, interval_s=_PLACEHOLDER_S)


def probe_records(
    contract: Contract, raw: pl.DataFrame, mapping: Mapping, value: str | None = None
) -> pl.DataFrame:
    """The id, UTC time (and ``value`` field, when named and present) of the rows of
    ``raw`` that decode, reading only the columns those need: what interval detection
    and the DST check look at. Rows that do not decode are left to the load."""
    from metrify.sources.decode import SchemaMismatch, decode

    probe = _probe_mapping(mapping).resolve(raw.columns)
    id_field = contract.id_field or contract.key[0]
    wanted = {id_field, "ts", *contract.required}
    if value is not None:
        wanted.add(value)
    if probe.derives_energy(contract, raw.columns):
        wanted.add(REGISTER_FIELD)
        wanted.discard(ENERGY_FIELD)
    sources = {n: source_columns(probe, n, raw.columns) for n in wanted}
    needed = {c for names in sources.values() for c in names}
    columns = [c for c in raw.columns if c in needed]
    narrowed = dataclasses.replace(
        probe,
        columns={n: s for n, s in probe.columns.items() if n in wanted and sources[n]},
        units={n: u for n, u in probe.units.items() if n in wanted},
        scales={n: f for n, f in probe.scales.items() if n in wanted},
    )
    keep = [id_field, "ts"] + ([value] if value is not None else [])
    try:
        decoded = decode(contract, raw.select(columns), narrowed, check_ranges=False)
    except SchemaMismatch:
        return pl.DataFrame(schema={k: contract.schema[k] for k in keep})
    return decoded.records.select(keep)


def _row_ids(contract: Contract, raw: pl.DataFrame, mapping: Mapping) -> pl.Series:
    """Each row's id as decode will read it (stripped), or the constant of ``--set``."""
    id_field = contract.id_field or contract.key[0]
    if id_field in mapping.constants:
        return pl.Series("m", [mapping.constants[id_field].strip()] * raw.height, pl.String)
    src = mapping.resolve(raw.columns).source_column(id_field)
    if src not in raw.columns:
        return pl.Series("m", [None] * raw.height, pl.String)
    column = raw.get_column(src)
    if column.dtype != pl.String:
        column = column.cast(pl.String)
    return column.str.strip_chars().rename("m")


@dataclass
class _Held:
    batch: RawBatch
    ids: pl.Series
    meters: list[str]


def _line_numbers(batch: RawBatch) -> np.ndarray:
    if batch.lines is not None:
        return batch.lines
    return np.arange(batch.first_line, batch.first_line + batch.data.height, dtype=np.int64)


def _split(
    held: _Held, detector: IntervalDetector, mapping: Mapping
) -> Iterator[tuple[RawBatch, Mapping]]:
    """A held batch as one batch per interval (most often one), its refused meters'
    rows turned into bad rows naming the reason."""
    batch = held.batch
    decided = detector.decided
    meters = list(decided)
    stamped = held.ids.replace_strict(
        meters, [decided[m] for m in meters], default=None, return_dtype=pl.Int32
    )
    refused = held.ids.is_in(list(detector.refused)) if detector.refused else None
    bad = list(batch.bad)
    lines = _line_numbers(batch)
    if refused is not None and refused.any():
        rows = refused.fill_null(False)
        raw = batch.data.filter(rows)
        texts = raw.select(pl.struct(pl.all()).struct.json_encode()).to_series().to_list()
        for text, meter, line in zip(
            texts, held.ids.filter(rows).to_list(), lines[rows.to_numpy()], strict=True
        ):
            bad.append(BadRow(text, refusal(meter, detector.refused[meter]), int(line)))
        keep = ~rows
        batch = dataclasses.replace(
            batch, data=batch.data.filter(keep), lines=lines[keep.to_numpy()], bad=[]
        )
        stamped = stamped.filter(keep)
        lines = lines[keep.to_numpy()]
    # rows without a decided meter (no id, an id that never decoded): any interval,
    # decode rejects them for their own reason
    fallback = next(iter(decided.values()), _PLACEHOLDER_S)
    stamped = stamped.fill_null(fallback)
    values = stamped.unique().sort().to_list()
    if len(values) <= 1:
        interval = values[0] if values else fallback
        yield (
            dataclasses.replace(batch, bad=bad),
            dataclasses.replace(mapping, interval_s=int(interval)),
        )
        return
    for number, interval in enumerate(values):
        rows = stamped == interval
        yield (
            dataclasses.replace(
                batch,
                data=batch.data.filter(rows),
                lines=lines[rows.to_numpy()],
                bad=bad if number == 0 else [],
            ),
            dataclasses.replace(mapping, interval_s=int(interval)),
        )


def stamp_intervals(
    batches: Iterable[RawBatch],
    contract: Contract,
    mapping: Mapping,
    detector: IntervalDetector,
    *,
    hold_rows: int = HOLD_ROWS,
) -> Iterator[tuple[RawBatch, Mapping]]:
    """One file's batches, each with the mapping that gives its rows their detected
    interval (see the module's text). Batches come out in order; a batch waits until
    every meter in it is decided (or the file ends, or ``hold_rows`` are waiting)."""
    held: list[_Held] = []
    waiting = 0
    source = iter(batches)
    first = next(source, None)
    if first is None:
        return
    if not needs_detection(contract, mapping, first.data.columns):
        yield first, mapping
        for batch in source:
            yield batch, mapping
        return
    for batch in itertools.chain([first], source):
        ids = _row_ids(contract, batch.data, mapping)
        known = [*detector.decided, *detector.refused]
        open_rows = ~ids.is_in(known) if known else None
        sample = batch.data if open_rows is None else batch.data.filter(open_rows.fill_null(True))
        if sample.height:
            if sample.height > PROBE_ROWS:
                sample_ids = _row_ids(contract, sample, mapping)
                sample = sample.filter(pl.int_range(pl.len()).over(sample_ids) < PROBE_ROWS)
            records = probe_records(contract, sample, mapping)
            id_field = contract.id_field or contract.key[0]
            detector.observe(records.get_column(id_field), records.get_column("ts"))
        meters = ids.drop_nulls().unique().to_list()
        detector.settle(m for m in meters if m in detector.counts)
        held.append(_Held(batch, ids, meters))
        waiting += batch.data.height
        while held:
            open_meters = [
                m
                for m in held[0].meters
                if m in detector.counts and m not in detector.decided and m not in detector.refused
            ]
            if open_meters and waiting <= hold_rows:
                break
            if open_meters:
                detector.settle(open_meters, final=True)
            first_held = held.pop(0)
            waiting -= first_held.batch.data.height
            yield from _split(first_held, detector, mapping)
    if held:
        detector.settle(final=True)
    for rest in held:
        yield from _split(rest, detector, mapping)


def needs_detection(contract: Contract, mapping: Mapping, columns: list[str]) -> bool:
    """Whether a source with these columns has its interval detected: no ``--interval``,
    no ``--set interval_s``, and no interval column."""
    return (
        mapping.detect_interval
        and mapping.interval_s is None
        and contract.time_series
        and "interval_s" in contract.schema
        and "interval_s" not in mapping.constants
        and mapping.resolve(columns).source_column("interval_s") not in columns
    )


def detect_intervals(
    batches: Iterable[RawBatch], contract: Contract, mapping: Mapping, *, complete: bool
) -> IntervalDetector:
    """A detector fed with ``batches`` (the first rows of a file, read before a load to
    refuse an ambiguous file before anything is stored). ``complete``: the batches are
    the whole file, so every meter is judged for good; otherwise only meters whose
    counts are already conclusive are.

    Like the load (:func:`stamp_intervals`), it parses the first ``PROBE_ROWS`` rows of
    each meter first, in the file's order, and then more of the meters still undecided
    (twice as many each time), until every meter is decided or refused or its rows run
    out: a meter is decided by its first few hundred rows, and parsing all fifty
    thousand of a household's year made this check cost more than a tenth of the load
    it guards."""
    detector = IntervalDetector()
    id_field = contract.id_field or contract.key[0]
    for batch in batches:
        ids = _row_ids(contract, batch.data, mapping)
        rank = ids.to_frame().select(pl.int_range(pl.len()).over("m")).to_series()
        start, step = 0, PROBE_ROWS
        while True:
            pick = (rank >= start) & (rank < start + step)
            closed = [*detector.decided, *detector.refused]
            if closed:
                pick = pick & ~ids.is_in(closed).fill_null(False)
            sample = batch.data.filter(pick)
            if not sample.height:
                break
            records = probe_records(contract, sample, mapping)
            detector.observe(records.get_column(id_field), records.get_column("ts"))
            detector.settle()
            start, step = start + step, 2 * step
    detector.settle(final=complete)
    return detector


def summary_note(detector: IntervalDetector) -> list[str]:
    """What a load says of its detected intervals (the summary's warnings)."""
    notes = []
    if detector.decided:
        parts = ", ".join(
            f"{describe(s)}: {n:,} meter{'s' if n != 1 else ''}"
            for s, n in detector.by_interval().items()
        )
        notes.append(f"interval detected from the timestamps (no --interval): {parts}")
    if detector.assumed:
        notes.append(
            f"{len(detector.assumed):,} meter(s) had too few timestamps to tell their interval "
            "and were given the one the other meters share: "
            + ", ".join(sorted(detector.assumed)[:5])
            + (" ..." if len(detector.assumed) > 5 else "")
        )
    for meter, verdict in list(detector.refused.items())[:5]:
        notes.append(refusal(meter, verdict) + " (its rows are quarantined)")
    if len(detector.refused) > 5:
        notes.append(
            f"... and {len(detector.refused) - 5:,} more meters without a detected interval"
        )
    return notes
