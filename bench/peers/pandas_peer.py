"""Peer: pandas ``read_csv`` / ``read_parquet`` + ``DataFrame.to_sql(method="multi")``.

What many teams write first: one DataFrame per file, repeated keys dropped (last wins
within a file; a key already loaded from an earlier file is skipped),
appended through SQLAlchemy + psycopg2 in multi-row INSERTs of ``CHUNK`` rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

CHUNK = 5_000


def frame(kind: str, path: str, interval_s: int) -> pd.DataFrame:
    if kind == "london":
        raw = pd.read_csv(path, dtype={"LCLid": str, "tstp": str, "energy(kWh/hh)": str})
        return pd.DataFrame(
            {
                "meter_id": raw["LCLid"],
                "ts": pd.to_datetime(raw["tstp"], utc=True),
                "interval_s": interval_s,
                "import_kwh": pd.to_numeric(raw["energy(kWh/hh)"].str.strip()),
            }
        )
    return pd.read_parquet(path)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    url = sa.engine.make_url(spec["url"]).set(drivername="postgresql+psycopg2")
    engine = sa.create_engine(url)
    read = loaded = 0
    seen: pd.MultiIndex | None = None  # keys of earlier files
    for path in spec["files"]:
        data = frame(spec["kind"], path, spec.get("interval_s", 900))
        read += len(data)
        data = data.drop_duplicates(subset=["meter_id", "ts"], keep="last")
        # a key may also repeat across files (a clock fault moves a reading into the next
        # day's part); an append would break the primary key, so the first file's row stays
        keys = pd.MultiIndex.from_frame(data[["meter_id", "ts"]])
        if seen is not None:
            fresh = ~keys.isin(seen)
            data, keys = data[fresh], keys[fresh]
        seen = keys if seen is None else seen.append(keys)
        data["source"] = "bench:pandas"
        data.to_sql(
            spec["table"],
            engine,
            schema=spec["schema"],
            if_exists="append",
            index=False,
            method="multi",
            chunksize=CHUNK,
        )
        loaded += len(data)
    engine.dispose()
    print(json.dumps({"read": read, "loaded": loaded}))


if __name__ == "__main__":
    main()
