"""Stream benchmark: one ``metrify worker`` (VEE on) against librdkafka's mock cluster.

Two measurements, each repeated ``--runs`` times on fresh topics and an emptied store;
the median is quoted with min and max.

* Throughput: one worker process (``python -m metrify.pipeline.worker``) drains N simulated
  readings into PostgreSQL + lake while the bench keeps its topic full (a bounded
  backlog, since the mock cluster keeps only 5 MB per partition). The clock starts when
  the first batch is committed (process start and the group join are not counted) and
  stops when every offset is committed: rate = readings stored in between / seconds.
  ``--workers 2`` runs two worker processes in one consumer group (the topic has 4
  partitions); the bench waits ``JOIN_WAIT_S`` for both to join before producing, so
  the measured time holds no rebalance.
* Produce-to-queryable latency at a steady rate (default 20k readings/s), in the steady
  state of a fleet that has been streaming for a while: its first ``--warm-days`` (7) are
  loaded through the pipeline in-process first (VEE history, trusted detector
  baselines), then the next ``--latency-days`` are streamed, cut into slices as
  ``metrify simulate --to kafka`` (``stream_fleet``) cuts them: ``rate x 50 ms`` readings
  a tick, grid rows with their interval. The slices are encoded before the clock starts
  (as the throughput measurement does: the load generator shares the two cores) and
  sent at the rate, each stamped with the wall time before it goes to the producer. A
  slice is queryable once every one of its readings is visible in PostgreSQL. The
  worker stores each partition's messages in order and a batch in one transaction, so
  that holds exactly when, in every partition the slice reached, its last message there
  is visible; the delivery reports say which
  message that is (partition, offset), and a poller looks those few keys up by primary
  key every 50 ms, oldest slice first. Its latency is the start of the first poll that
  found them all minus its stamp (an upper bound: the poll period adds up to 50 ms).
  The clock starts once the worker has joined and read its meters' state: the warm-up's
  last interval is sent again (stored already, it changes nothing) and awaited.
  Counting the table instead (``SELECT count(*)``, 20 times a second over a growing
  table) cost PostgreSQL a quarter of the machine and slowed what it measured.

    .venv/bin/python bench/stream.py [--meters 1000] [--days 7] [--rate 20000] [--runs 3]
        [--workers 1] [--latency-meters 2000] [--latency-days 2] [--warm-days 7]

Uses ``METRIFY_DATABASE_URL`` if set, else a private embedded PostgreSQL in a temp folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition

from common import machine, stats
from ingest import reset
from metrify.contracts.records import GRID, READING
from metrify.pipeline.session import ingest_frames, open_session
from metrify.settings import Settings
from metrify.settings.kafka import KafkaSettings
from metrify.simulation import Fleet, FleetSpec, stream_fleet
from metrify.sources.kafka import Sender, frame_messages
from metrify.stores import database, embedded

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
BACKLOG = 1_500  # messages of up to 500 readings, about 1.5 MB per partition compressed
CLIENT = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500", "log_level": "3"}
JOIN_WAIT_S = 10  # several workers: time for all to join the group before producing
POLL_S = 0.05  # how often the latency poller looks for the oldest slice not yet seen


def count(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def fresh_kafka(bootstrap: str) -> KafkaSettings:
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap,
        group_id=f"bench-{tag}",
        topic_readings=f"{tag}.readings",
        topic_grid=f"{tag}.grid",
        topic_weather=f"{tag}.weather",
        topic_deadletter=f"{tag}.deadletter",
        options=dict(CLIENT),
    )
    probe = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    for topic in (kafka.topic_readings, kafka.topic_grid, kafka.topic_weather):
        probe.list_topics(topic=topic, timeout=10)  # creates the mock topic
    return kafka


def worker_env(kafka: KafkaSettings, url: str, lake: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "METRIFY_DATABASE_URL": url,
        "METRIFY_LAKE_URL": str(lake),
        "METRIFY_LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG", "WARNING"),
        "METRIFY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers or "",
        "METRIFY_KAFKA_GROUP_ID": kafka.group_id,
        "METRIFY_KAFKA_TOPIC_READINGS": kafka.topic_readings,
        "METRIFY_KAFKA_TOPIC_GRID": kafka.topic_grid,
        "METRIFY_KAFKA_TOPIC_WEATHER": kafka.topic_weather,
        "METRIFY_KAFKA_TOPIC_DEADLETTER": kafka.topic_deadletter,
    }
    env.update({"METRIFY_KAFKA_" + k.upper().replace(".", "_"): v for k, v in CLIENT.items()})
    return env


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The worker process; ``BENCH_PROFILE=out.svg`` runs it under py-spy (if installed)."""
    proc = subprocess.Popen([sys.executable, "-m", "metrify.pipeline.worker"], env=env)
    if profile := os.environ.get("BENCH_PROFILE"):
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        spy_args = ["record", "--nonblocking", "-o", profile, "--pid", str(proc.pid)]
        if os.environ.get("BENCH_PROFILE_IDLE"):  # wall time, waits included
            spy_args.append("--idle")
        if profile.endswith(".txt"):  # collapsed stacks instead of a flame graph
            spy_args += ["--format", "raw"]
        subprocess.Popen([spy, *spy_args], stdout=subprocess.DEVNULL)
    return proc


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    if proc.wait(60) != 0:
        raise SystemExit(f"worker exited with {proc.returncode}")


def group_progress(
    probe: Consumer, kafka: KafkaSettings, topic: str | None = None
) -> tuple[int, int]:
    """(messages committed by the worker's group, messages in the topic: readings')."""
    topic = topic or kafka.topic_readings
    parts = probe.list_topics(topic, timeout=10).topics[topic].partitions
    committed = probe.committed([TopicPartition(topic, p) for p in parts], timeout=10)
    done = sum(max(0, tp.offset) for tp in committed)
    high = sum(probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts)
    return done, high


def throughput(
    url: str, bootstrap: str, fleet: Fleet, work: Path, workers: int = 1
) -> dict[str, float]:
    """Keep the worker's topic full and time it draining every reading.

    The producer stays at most ``BACKLOG`` messages ahead of the group's committed
    offsets: the mock cluster keeps only 5 MB per partition, so a full pre-produced
    topic would be truncated before the worker read it. The backlog is large enough that
    the worker never waits for data.
    """
    kafka = fresh_kafka(bootstrap)
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": kafka.group_id, "log_level": 3})
    # Encoded up front, so the bench's own CPU use while the worker runs is small.
    messages = [m for readings in fleet.readings() for m in frame_messages(READING, readings)]
    procs = [start_worker(worker_env(kafka, url, work / "lake")) for _ in range(workers)]
    if workers > 1:
        time.sleep(JOIN_WAIT_S)
    sender = Sender(kafka)
    total = 0
    try:
        for i in range(0, len(messages), 200):
            while (lambda p: p[1] - p[0])(group_progress(probe, kafka)) > BACKLOG:
                for proc in procs:
                    if proc.poll() is not None:
                        raise SystemExit(f"worker died with {proc.returncode}")
                time.sleep(0.05)
            for key, value, n in messages[i : i + 200]:
                sender.send(kafka.topic_readings, key, value, records=n)
                total += n
            sender.producer.flush(10)
            if i == 0:  # start the clock when the first slice is committed
                while group_progress(probe, kafka)[0] == 0:
                    time.sleep(0.02)
                t0 = time.perf_counter()
                with psycopg.connect(url, autocommit=True) as conn:
                    first = count(conn)
        sender.flush()
        while (lambda p: p[0] < p[1])(group_progress(probe, kafka)):
            for proc in procs:
                if proc.poll() is not None:
                    raise SystemExit(f"worker died with {proc.returncode}")
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        with psycopg.connect(url, autocommit=True) as conn:
            done = count(conn)
    finally:
        for proc in procs:
            stop_worker(proc)
        probe.close()
    if done != total:
        raise SystemExit(f"stored {done:,} of {total:,} readings")
    return {"readings": total, "rate": (done - first) / seconds}


@dataclass
class Slice:
    """One tick of the steady stream, encoded before the clock starts."""

    readings: int
    #: (key, value, records, meter, the meter's newest ts in the slice) per message
    messages: list[tuple[bytes, bytes, int, str, dt.datetime]]
    #: the grid rows of the slice's intervals (they ride along, as stream_fleet sends them)
    grid: list[tuple[bytes, bytes, int]]


class SliceRecorder(Sender):
    """Keeps what :func:`stream_fleet` would send, encoded, one slice per readings call
    (its grid rows ride along), instead of sending it."""

    def __init__(self, kafka: KafkaSettings) -> None:
        super().__init__(kafka)
        self.slices: list[Slice] = []

    def send_frame(self, kind: str, frame: pl.DataFrame, *, max_records: int = 500) -> int:
        if kind != "readings":
            self.slices[-1].grid += frame_messages(GRID, frame, max_records=max_records)
            return frame.height
        newest = dict(frame.group_by("meter_id").agg(pl.col("ts").max()).iter_rows())
        messages = [
            (key, value, n, key.decode(), newest[key.decode()])
            for key, value, n in frame_messages(READING, frame, max_records=max_records)
        ]
        if len(messages) != len(newest):
            raise SystemExit("a meter's readings of one slice must fit one message")
        self.slices.append(Slice(frame.height, messages, []))
        return frame.height

    def flush(self, timeout: float = 60.0) -> None:
        """Nothing was produced."""


def encode_slices(later: Later, rate: float, kafka: KafkaSettings) -> list[Slice]:
    """The streamed part of the fleet cut by :func:`stream_fleet` itself (``rate x 50 ms``
    readings a tick, in time order, grid rows with their interval), each slice already
    encoded: the load generator shares the worker's two cores, and encoding on the fly
    cost it a quarter of one (measured with py-spy), which the worker then lacked. Its
    clock is a counter that runs ahead of the rate, so nothing is waited for here."""
    recorder = SliceRecorder(kafka)
    stream_fleet(later, recorder, rate, False, clock=itertools.count().__next__)
    return recorder.slices


class Stamps:
    """When each slice went to the producer, and, from the delivery reports, the last
    message of the slice in each partition."""

    def __init__(self, slices: list[Slice]) -> None:
        self.sizes = [s.readings for s in slices]
        self.stamps: list[float] = []
        #: per slice: partition -> (offset, meter_id, ts) of its last message there
        self.last: list[dict[int, tuple[int, str, dt.datetime]]] = [{} for _ in slices]
        #: messages of each slice not yet acknowledged
        self.pending = [len(s.messages) for s in slices]

    def delivered(self, msg: Any, records: int, context: object) -> None:
        if context is None:
            return
        at, meter, ts = context  # type: ignore[misc]
        seen = self.last[at].get(msg.partition())
        if seen is None or msg.offset() > seen[0]:
            self.last[at][msg.partition()] = (msg.offset(), meter, ts)
        self.pending[at] -= 1


def send_steadily(
    slices: list[Slice], sender: Sender, stamps: Stamps, rate: float
) -> tuple[int, float]:
    """Send the slices at ``rate`` readings/s (paced as stream_fleet paces them), each
    stamped just before its first message goes to the producer; (readings, seconds)."""
    readings_topic, grid_topic = sender.kafka.topic("readings"), sender.kafka.topic("grid")
    started = time.monotonic()
    sent = 0
    for at, part in enumerate(slices):
        if (wait := started + sent / rate - time.monotonic()) > 0:
            time.sleep(wait)
        stamps.stamps.append(time.perf_counter())
        for key, value, n, meter, ts in part.messages:
            sender.send(readings_topic, key, value, records=n, context=(at, meter, ts))
        for key, value, n in part.grid:
            sender.send(grid_topic, key, value, records=n)
        sent += part.readings
    sender.flush()
    return sent, time.monotonic() - started


def ready(
    sender: Sender, bootstrap: str, kafka: KafkaSettings, procs: list[Any], warm: pl.DataFrame
) -> None:
    """Wait until the group consumes, its caches loaded: ``warm`` (the warm-up's last
    interval, already stored: re-sent, it changes nothing) sent and committed. The mock
    cluster delays the first join by seconds, and a worker reads each meter's history and
    detector state on first sight; a clock started before would count both as latency.
    Several workers get ``JOIN_WAIT_S`` more to share out the partitions first."""
    if len(procs) > 1:
        time.sleep(JOIN_WAIT_S)
    sender.send_frame("readings", warm)
    sender.flush()
    sent = warm["meter_id"].n_unique()  # messages: one per meter
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": kafka.group_id, "log_level": 3})
    try:
        deadline = time.perf_counter() + 180
        while group_progress(probe, kafka)[0] < sent:
            if time.perf_counter() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit("the worker did not take the warm-up within 180 s")
            time.sleep(0.1)
    finally:
        probe.close()


class Later:
    """The part of a fleet after its first ``days`` (what :func:`stream_fleet` sends)."""

    def __init__(self, fleet: Fleet, days: int) -> None:
        self.fleet, self.spec, self.days = fleet, fleet.spec, days

    def chunks(self) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        skip = self.days // self.spec.chunk_days
        return itertools.islice(self.fleet.chunks(), skip, None)


def warm_up(url: str, fleet: Fleet, days: int, lake: Path) -> pl.DataFrame:
    """Load the fleet's first ``days`` through the pipeline in-process (VEE history and
    trusted detector baselines: the state of a fleet that has been streaming for a
    while); returns the readings of its last interval."""
    settings = Settings(database_url=url, lake_url=str(lake))
    chunks = list(itertools.islice(fleet.chunks(), days // fleet.spec.chunk_days))
    with open_session(settings) as session:
        ingest_frames(session, READING, [r for r, _ in chunks], source="bench:warm-up")
        ingest_frames(session, GRID, [g for _, g in chunks], source="bench:warm-up")
    last = chunks[-1][0]
    return last.filter(pl.col("ts") == pl.col("ts").max())


def latency(
    url: str,
    bootstrap: str,
    fleet: Fleet,
    rate: float,
    work: Path,
    workers: int = 1,
    warm_days: int = 7,
) -> dict[str, Any]:
    """Load the first ``warm_days``, then stream the rest at a steady ``rate`` and
    measure when each slice becomes queryable."""
    last = warm_up(url, fleet, warm_days, work / "lake")
    kafka = fresh_kafka(bootstrap)
    slices = encode_slices(Later(fleet, warm_days), rate, kafka)
    procs = [start_worker(worker_env(kafka, url, work / "lake")) for _ in range(workers)]
    visible_at: list[float] = []
    stop = threading.Event()
    stamps = Stamps(slices)
    probe = (
        "SELECT count(*) FROM unnest(%s::text[], %s::timestamptz[]) AS k(m, t)"
        " JOIN readings r ON r.meter_id = k.m AND r.ts = k.t"
    )
    try:
        ready(Sender(kafka), bootstrap, kafka, procs, last)
        sender = Sender(kafka)
        sender.on_delivered = stamps.delivered

        def poll() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SET enable_hashjoin = off")  # a few primary-key lookups
                conn.execute("SET max_parallel_workers_per_gather = 0")
                while not stop.is_set():
                    at = time.perf_counter()
                    i = len(visible_at)
                    if i < len(stamps.stamps) and stamps.pending[i] == 0:
                        keys = list(stamps.last[i].values())
                        ids, newest = [k[1] for k in keys], [k[2] for k in keys]
                        row = conn.execute(probe, (ids, newest)).fetchone()
                        if row is not None and row[0] == len(keys):
                            visible_at.append(at)
                            continue  # the next slice may be visible too
                    time.sleep(max(0.0, POLL_S - (time.perf_counter() - at)))

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        readings, seconds = send_steadily(slices, sender, stamps, rate)
        deadline = time.perf_counter() + 60
        while len(visible_at) < len(slices) and time.perf_counter() < deadline:
            time.sleep(0.1)
        stop.set()
        poller.join()
    finally:
        for proc in procs:
            stop_worker(proc)
    if len(visible_at) < len(slices):
        raise SystemExit("not every reading became visible within 60 s")
    lat = [seen - stamp for seen, stamp in zip(visible_at, stamps.stamps, strict=True)]
    frame = pl.DataFrame({"latency": lat, "n": stamps.sizes}).sort("latency")
    cumulative = frame["n"].cum_sum() / frame["n"].sum()

    def quantile(q: float) -> float:
        return float(frame["latency"][int((cumulative < q).sum())])

    return {
        "readings": readings,
        "achieved_rate": readings / seconds,
        "p50": quantile(0.50),
        "p95": quantile(0.95),
        "p99": quantile(0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--latency-meters", type=int, default=2000)
    parser.add_argument("--latency-days", type=int, default=2, help="days streamed")
    parser.add_argument(
        "--warm-days", type=int, default=7, help="days loaded before the latency stream"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--only", choices=["throughput", "latency"], help="run one of the two measurements"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes in one consumer group"
    )
    args = parser.parse_args()

    holder = Producer({"test.mock.num.brokers": 3, "log_level": 3})
    brokers = holder.list_topics(timeout=10).brokers.values()
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in brokers)
    work = Path(tempfile.mkdtemp(prefix="ms", dir="/tmp"))
    try:
        url = os.environ.get("METRIFY_DATABASE_URL") or embedded.start(
            work / "home", keep_running=False
        )
        database.upgrade(url)
        spec = dict(seed=7, fault_rate=0.0)
        heavy = Fleet(FleetSpec(meters=args.meters, days=args.days, **spec))  # type: ignore[arg-type]
        steady = Fleet(
            FleetSpec(meters=args.latency_meters, days=args.warm_days + args.latency_days, **spec)  # type: ignore[arg-type]
        )
        streamed = args.latency_meters * args.latency_days * 86_400 // steady.spec.interval_s
        rates: list[float] = []
        lats: list[dict[str, Any]] = []
        for run in range(args.runs):
            reset(url)
            shutil.rmtree(work / "lake", ignore_errors=True)
            if args.only != "latency":
                rates.append(throughput(url, bootstrap, heavy, work, args.workers)["rate"])
                reset(url)
                shutil.rmtree(work / "lake", ignore_errors=True)
            if args.only != "throughput":
                lats.append(
                    latency(url, bootstrap, steady, args.rate, work, args.workers, args.warm_days)
                )
            done = []
            if rates:
                done.append(f"{rates[-1]:,.0f} readings/s drained")
            if lats:
                last = lats[-1]
                done.append(
                    f"at {last['achieved_rate']:,.0f}/s p50 {last['p50']:.3f} s"
                    f" p95 {last['p95']:.3f} s p99 {last['p99']:.3f} s"
                )
            print(f"run {run + 1}/{args.runs}: " + "; ".join(done), file=sys.stderr)
        out: dict[str, Any] = {
            "workload": {
                "throughput": f"{heavy.expected_readings:,} readings pre-produced,"
                + (" one worker" if args.workers == 1 else f" {args.workers} workers in one group"),
                "latency": f"{streamed:,} readings streamed at {args.rate:,.0f}/s"
                f" after {args.warm_days} days loaded",
            },
            "machine": machine(),
            "runs": args.runs,
            "workers": args.workers,
        }
        print("| measurement | median | min | max | target |")
        print("| --- | --- | --- | --- | --- |")
        if rates:
            r = stats(rates)
            out["worker_readings_per_s"] = r
            out["worker_readings_per_min"] = statistics.median(rates) * 60
            print(
                f"| {args.workers} worker(s), VEE on, readings/min | {r['median'] * 60 / 1e6:.2f}M"
                f" | {r['min'] * 60 / 1e6:.2f}M | {r['max'] * 60 / 1e6:.2f}M | >= 2M |"
            )
        if lats:
            out["latency_s"] = {q: stats([r[q] for r in lats]) for q in ("p50", "p95", "p99")}
            out["latency_achieved_rate"] = stats([r["achieved_rate"] for r in lats])
            for q in ("p50", "p95", "p99"):
                s = out["latency_s"][q]
                target = "< 1 s" if q == "p95" else ""
                print(
                    f"| produce-to-queryable {q} at {args.rate:,.0f}/s | {s['median']:.3f} s"
                    f" | {s['min']:.3f} s | {s['max']:.3f} s | {target} |"
                )
        RESULTS.mkdir(exist_ok=True)
        name = f"stream-{args.only}.json" if args.only else "stream.json"
        (RESULTS / name).write_text(json.dumps(out, indent=2) + "\n")
        if not os.environ.get("METRIFY_DATABASE_URL"):
            embedded.stop(work / "home")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        del holder


if __name__ == "__main__":
    main()
