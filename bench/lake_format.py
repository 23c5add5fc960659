"""Delta Lake against Apache Iceberg for the lake, on real London smart-meter readings.

What the lake does, measured on both formats with the same rows (the lake's reading
columns, partitioned by a ``date`` column):

- ``append``: many small batches one after another (what the streaming writer and the
  API send: one commit per batch), as a plain append and as the upsert the lake needs
  (Delta ``MERGE`` on key + ``ingested_at``; Iceberg ``upsert`` on the same columns);
- ``day upsert``: one day re-sent with a tenth of its values corrected (merge/upsert),
  and one day replaced whole (Delta ``overwrite`` with a predicate; Iceberg ``overwrite``
  with a filter), what ``metrify lake repair`` does;
- ``compaction``: the small files of the appended days rewritten into one per day
  (Delta ``optimize.compact``; pyiceberg 0.12 has no data-file compaction, so the
  equivalent read + overwrite of each day is timed);
- ``scan``: the month summed per meter by DuckDB (over the table's pyarrow dataset:
  DuckDB here cannot download its delta or iceberg extension) and by Polars
  (``scan_delta`` / ``scan_iceberg``).

Iceberg's catalog is pyiceberg's SQL catalog in an embedded PostgreSQL (as production
would keep it); Delta needs no catalog. Every figure is the median of ``--runs`` runs,
each on a fresh table. Run::

    PYTHONPATH=src:bench METRIFY_SHARED_DATA=../shared/data \\
        nice -n 10 .venv/bin/python bench/lake_format.py --meters 100 --days 31 --runs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from common import machine, server_home

KEY = ["meter_id", "ts", "ingested_at"]
SCAN = "SELECT meter_id, sum(import_kwh) AS kwh, count(*) AS n FROM lake GROUP BY meter_id"


def load_london(meters: int, days: int) -> pl.DataFrame:
    """The first ``days`` days of 2013 of the first ``meters`` London households, in the
    lake's reading columns (the store's version columns included)."""
    root = Path(os.environ.get("METRIFY_SHARED_DATA", "../shared/data"))
    files = sorted((root / "london-smart-meters-2013").glob("*.csv.gz"))[:meters]
    if not files:
        raise SystemExit(f"no London smart-meter files under {root}")
    end = dt.datetime(2013, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=days)
    parts = []
    for path in files:
        with gzip.open(path, "rb") as handle:
            raw = pl.read_csv(handle.read(), infer_schema=False)
        parts.append(
            raw.select(
                meter_id=pl.col("LCLid"),
                ts=pl.col("tstp").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC"),
                import_kwh=pl.col("energy(kWh/hh)")
                .str.strip_chars()
                .cast(pl.Float64, strict=False),
            ).filter(pl.col("ts") < end)
        )
    stamp = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    frame = (
        pl.concat(parts)
        .unique(["meter_id", "ts"])
        .with_columns(
            interval_s=pl.lit(1800, pl.Int32),
            export_kwh=pl.lit(None, pl.Float64),
            register_kwh=pl.lit(None, pl.Float64),
            quality=pl.lit(0, pl.Int32),
            status=pl.lit("valid"),
            source=pl.lit("london"),
            ingested_at=pl.lit(stamp).dt.cast_time_unit("us"),
            date=pl.col("ts").dt.date(),
        )
        .with_columns(pl.col("ts").dt.cast_time_unit("us"))
        .sort("date", "meter_id", "ts")
    )
    return frame


def small_batches(frame: pl.DataFrame, count: int) -> list[pa.Table]:
    """``count`` batches of one meter-day each, as an API request or a stream batch
    carries, over the first few days (so several land in each day partition)."""
    keys = frame.select("meter_id", "date").unique(maintain_order=True).head(count)
    batches = frame.join(keys, on=["meter_id", "date"], how="semi").partition_by(
        "meter_id", "date", maintain_order=True
    )
    stamp = dt.datetime(2026, 12, 6, 1, tzinfo=dt.UTC)
    return [
        b.with_columns(
            ingested_at=pl.lit(stamp + dt.timedelta(seconds=i)).dt.cast_time_unit("us")
        ).to_arrow()
        for i, b in enumerate(batches)
    ]


def corrected_day(frame: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """One day with every tenth reading replaced by a new version (a correction)."""
    rows = frame.filter(pl.col("date") == day).with_row_index("i")
    stamp = dt.datetime(2026, 12, 6, 2, tzinfo=dt.UTC)
    fixed = rows.filter(pl.col("i") % 10 == 0).with_columns(
        import_kwh=pl.col("import_kwh") * 2,
        ingested_at=pl.lit(stamp).dt.cast_time_unit("us"),
    )
    return pl.concat([rows, fixed]).drop("i")


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# --- Delta Lake ---------------------------------------------------------------------


def delta_run(
    folder: Path, frame: pl.DataFrame, batches: list[pa.Table], day: dt.date
) -> dict[str, float]:
    from deltalake import DeltaTable, write_deltalake

    out: dict[str, float] = {}
    predicate = " AND ".join(f"t.{c} = s.{c}" for c in [*KEY, "date"])

    def merge(uri: str, data: pa.Table) -> None:
        (
            DeltaTable(uri)
            .merge(data, predicate=predicate, source_alias="s", target_alias="t")
            .when_matched_update_all(predicate="t.import_kwh IS DISTINCT FROM s.import_kwh")
            .when_not_matched_insert_all()
            .execute()
        )

    small_append, small_merge = str(folder / "append"), str(folder / "merge")
    schema = batches[0].schema
    for uri in (small_append, small_merge):
        write_deltalake(uri, pa.Table.from_batches([], schema), partition_by=["date"])

    def appends() -> None:
        for b in batches:
            write_deltalake(small_append, b, mode="append")

    def merges() -> None:
        for b in batches:
            merge(small_merge, b)

    out["append_small_s"] = timed(appends)
    out["merge_small_s"] = timed(merges)
    out["files_before_compaction"] = len(DeltaTable(small_merge).file_uris())

    # Metrify's own Lake.write: the same merge, bounded to the batch's ingested_at span
    # (file skipping by statistics) and on a table handle kept up to date, not reopened
    from metrify.stores.lake import Lake

    lake = Lake(str(folder / "lake"))
    polars_batches = [pl.from_arrow(b) for b in batches]

    def lake_writes() -> None:
        for b in polars_batches:
            assert isinstance(b, pl.DataFrame)
            lake.write("readings", b.drop("date"))

    out["lake_write_small_s"] = timed(lake_writes)
    out["compact_s"] = timed(lambda: DeltaTable(small_merge).optimize.compact())
    live = DeltaTable(small_merge).file_uris()
    out["files_after_compaction"] = len(live)

    bulk = str(folder / "bulk")
    arrow = frame.to_arrow()
    out["bulk_write_s"] = timed(lambda: write_deltalake(bulk, arrow, partition_by=["date"]))
    fix = corrected_day(frame, day).to_arrow()
    out["day_upsert_s"] = timed(lambda: merge(bulk, fix))
    whole = frame.filter(pl.col("date") == day).to_arrow()
    out["day_replace_s"] = timed(
        lambda: write_deltalake(bulk, whole, mode="overwrite", predicate=f"date = '{day}'")
    )

    def duck() -> None:
        con = duckdb.connect()
        con.register("lake", DeltaTable(bulk).to_pyarrow_dataset())
        con.execute(SCAN).fetchall()

    def polars_scan() -> None:
        pl.scan_delta(bulk).group_by("meter_id").agg(pl.col("import_kwh").sum(), pl.len()).collect()

    out["scan_duckdb_s"] = timed(duck)
    out["scan_polars_s"] = timed(polars_scan)
    return out


# --- Apache Iceberg -----------------------------------------------------------------


def iceberg_run(
    folder: Path, catalog_url: str, frame: pl.DataFrame, batches: list[pa.Table], day: dt.date
) -> dict[str, float]:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.expressions import EqualTo
    from pyiceberg.transforms import IdentityTransform

    namespace = f"bench_{folder.name}"
    catalog = SqlCatalog("bench", uri=catalog_url, warehouse=f"file://{folder}")
    catalog.create_namespace_if_not_exists(namespace)
    schema = batches[0].schema

    def create(name: str) -> Any:
        table = catalog.create_table(f"{namespace}.{name}", schema=schema)
        with table.update_spec() as spec:
            spec.add_field("date", IdentityTransform(), "date")
        return catalog.load_table(f"{namespace}.{name}")

    out: dict[str, float] = {}
    small_append, small_merge = create("append"), create("merge")

    def appends() -> None:
        for b in batches:
            small_append.append(b)

    def upserts() -> None:
        for b in batches:
            small_merge.upsert(b, join_cols=[*KEY])

    out["append_small_s"] = timed(appends)
    out["merge_small_s"] = timed(upserts)
    out["files_before_compaction"] = len(small_merge.inspect.files())

    def compact() -> None:
        # pyiceberg 0.12 cannot rewrite data files: read each day, overwrite it whole
        days = small_merge.scan(selected_fields=("date",)).to_arrow()["date"].unique()
        for d in days.to_pylist():
            where = EqualTo("date", d.isoformat())
            rows = small_merge.scan(row_filter=where).to_arrow()
            small_merge.overwrite(rows, overwrite_filter=where)

    out["compact_s"] = timed(compact)
    out["files_after_compaction"] = len(small_merge.inspect.files())

    bulk = create("bulk")
    arrow = frame.to_arrow()
    out["bulk_write_s"] = timed(lambda: bulk.append(arrow))
    fix = corrected_day(frame, day).to_arrow()
    out["day_upsert_s"] = timed(lambda: bulk.upsert(fix, join_cols=[*KEY]))
    whole = frame.filter(pl.col("date") == day).to_arrow()
    out["day_replace_s"] = timed(
        lambda: bulk.overwrite(whole, overwrite_filter=EqualTo("date", day.isoformat()))
    )

    def duck() -> None:
        con = duckdb.connect()
        con.register("lake", bulk.scan().to_arrow())
        con.execute(SCAN).fetchall()

    def polars_scan() -> None:
        pl.scan_iceberg(bulk).group_by("meter_id").agg(
            pl.col("import_kwh").sum(), pl.len()
        ).collect()

    out["scan_duckdb_s"] = timed(duck)
    out["scan_polars_s"] = timed(polars_scan)
    return out


def medians(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        k: {
            "median": statistics.median(r[k] for r in runs),
            "min": min(r[k] for r in runs),
            "max": max(r[k] for r in runs),
        }
        for k in runs[0]
    }


ROWS = [
    ("append_small_s", "{n} small batches, plain append (s)"),
    ("merge_small_s", "{n} small batches, upsert on key + ingested_at (s)"),
    ("lake_write_small_s", "{n} small batches through Metrify's Lake.write (s)"),
    ("files_before_compaction", "data files after the upserts"),
    ("compact_s", "compaction of those days (s)"),
    ("files_after_compaction", "live data files after compaction"),
    ("bulk_write_s", "bulk write of {rows:,} rows (s)"),
    ("day_upsert_s", "one day upserted, 10 % corrected (s)"),
    ("day_replace_s", "one day replaced whole (s)"),
    ("scan_duckdb_s", "DuckDB: month summed per meter (s)"),
    ("scan_polars_s", "Polars: month summed per meter (s)"),
]


def report(result: dict[str, Any]) -> str:
    n, rows = result["batches"], result["rows"]
    lines = [
        "| measure | Delta Lake (deltalake 1.6.6) | Iceberg (pyiceberg 0.12.0, SQL catalog) |",
        "|---|---:|---:|",
    ]
    for key, label in ROWS:
        cells = []
        for fmt in ("delta", "iceberg"):
            if key not in result.get(fmt, {}):
                cells.append("n/a")
                continue
            s = result[fmt][key]
            cells.append(
                f"{s['median']:.3f} ({s['min']:.3f}..{s['max']:.3f})"
                if key.endswith("_s")
                else f"{s['median']:,.0f}"
            )
        lines.append(f"| {label.format(n=n, rows=rows)} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=100)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="delta,iceberg")
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args()
    frame = load_london(args.meters, args.days)
    batches = small_batches(frame, args.batches)
    day = dt.date(2013, 1, 1) + dt.timedelta(days=args.days // 2)
    formats = args.formats.split(",")
    os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")
    warnings.filterwarnings("ignore", message="Delete operation did not match")
    runs: dict[str, list[dict[str, float]]] = {f: [] for f in formats}
    with server_home(None, "lakebench-") as (_, url):
        catalog_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        for i in range(args.runs):
            for fmt in formats:
                folder = Path(tempfile.mkdtemp(prefix=f"{fmt}{i}-", dir="/tmp"))
                try:
                    if fmt == "delta":
                        runs[fmt].append(delta_run(folder, frame, batches, day))
                    else:
                        runs[fmt].append(iceberg_run(folder, catalog_url, frame, batches, day))
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                print(fmt, i, json.dumps(runs[fmt][-1]), flush=True)
    result: dict[str, Any] = {
        "machine": machine(),
        "rows": frame.height,
        "batches": len(batches),
        "batch_rows_median": statistics.median(b.num_rows for b in batches),
        "runs": args.runs,
        **{f: medians(r) for f, r in runs.items()},
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str))
    print(report(result))


if __name__ == "__main__":
    main()
