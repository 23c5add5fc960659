"""The lake on S3: the same Delta tables against a real S3 API (moto's server).

delta-rs (and s3fs, for the listing here) talk HTTP to moto's in-process server exactly
as they would to AWS, so this checks the object-store path end to end rather than a
local shortcut.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import polars as pl
import pytest

from metrify.contracts.records import READING
from metrify.pipeline import lake_upkeep
from metrify.pipeline.lakesync import checksum
from metrify.stores.lake import Lake
from support.lake import batch, content

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }.items():
        monkeypatch.setenv(key, value)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    if not fs.exists("lake-bucket"):  # moto's state outlives one server
        fs.mkdir("lake-bucket")
    yield endpoint
    server.stop()


def test_lake_writes_day_partitions_to_s3(s3_endpoint: str) -> None:
    stamps = [
        dt.datetime(2013, 1, 1, 23, 30, tzinfo=dt.UTC),
        dt.datetime(2013, 1, 2, 0, 0, tzinfo=dt.UTC),
    ]
    frame = READING.empty().vstack(
        pl.DataFrame(
            {
                "meter_id": ["M1", "M1"],
                "ts": stamps,
                "interval_s": [1800, 1800],
                "import_kwh": [0.5, 0.25],
            },
            schema_overrides={"interval_s": pl.Int32, "ts": pl.Datetime("us", "UTC")},
        ).select(
            [
                pl.col(c)
                if c in ("meter_id", "ts", "interval_s", "import_kwh")
                else pl.lit(None, t).alias(c)
                for c, t in READING.schema.items()
            ]
        )
    )
    lake = Lake("s3://lake-bucket/metrify")
    assert lake.write("readings", frame) == 2
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    listed = sorted(p.split("/")[-2] for p in fs.glob("lake-bucket/metrify/readings/*/*.parquet"))
    assert listed == ["date=2013-01-01", "date=2013-01-02"]
    assert fs.glob("lake-bucket/metrify/readings/_delta_log/*.json")  # a Delta table
    back = lake.read("readings").sort("ts")
    assert back["import_kwh"].to_list() == [0.5, 0.25]
    assert back["ts"].to_list() == stamps


def test_s3_round_trip_of_upsert_replace_compact_and_time_travel(s3_endpoint: str) -> None:
    """Everything the lake does, on S3, with credentials given in the URL (as a
    deployment may) rather than in the environment."""
    lake = Lake("s3://test:test@lake-bucket/trip")
    assert "test:test" not in lake.uri("readings")  # credentials stay in the options
    frames = [batch(f"M{i}", second=i) for i in range(3)]
    for frame in frames:
        lake.write("readings", frame)
    lake.write("readings", frames[0])  # the same batch again: no second copy
    first = lake.version("readings")
    assert first is not None
    expected = pl.concat(frames)
    assert content(lake.read("readings")).equals(content(expected))
    assert lake.file_counts("readings") == {dt.date(2013, 1, 1): 3}

    result = lake_upkeep.compact(lake, "readings")
    assert (result.files_before, result.files_after) == (3, 1)
    assert checksum(READING, lake.read("readings")) == checksum(READING, expected)
    lake.replace_day("readings", dt.date(2013, 1, 1), frames[1])
    assert content(lake.read("readings")).equals(content(frames[1]))
    assert content(lake.read("readings", version=first)).equals(content(expected))
    assert lake.arrow("readings").count_rows() == 48
    assert lake.scan("readings").select(pl.col("meter_id").unique()).collect().item() == "M1"
    removed = lake_upkeep.vacuum(lake, "readings", 0, force=True)
    assert len(removed) == 3 + 1  # the three batch files and the compacted one
    assert content(lake.read("readings")).equals(content(frames[1]))
