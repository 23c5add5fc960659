"""REST API benchmark: the real server (``metrify serve``) under wrk.

Seeds a simulated fleet (default 200 meters x 31 days at 15 min, VEE on) through the
pipeline, starts ``metrify serve`` with N workers, and drives it with wrk (Debian
package ``wrk``; Lua scripts pick a random meter per request) on the same machine, so
the load generator shares the CPU with the server and PostgreSQL. Scenarios:

* ``health``: ``GET /health`` (no auth, no database): the framework's ceiling here
* ``latest``: ``GET /v1/meters/{random}/latest``
* ``day``: ``GET /v1/meters/{random}/readings?resolution=raw`` for one random day (96 rows)
* ``month``: ``GET /v1/meters/{random}/readings?resolution=1h`` for the month (744 rows)
* ``energy``: ``GET /v1/energy?node={random feeder}&resolution=1h`` for the month (744
  buckets of every meter of the feeder, from the aggregates)
* ``ingest``: ``POST /v1/readings`` with 1,000 new readings per request (CSV bodies,
  10 meters x 100 intervals each, never repeating a key), through the full pipeline, at
  each number of concurrent connections in ``--ingest-connections`` (default 4 and 16:
  concurrent requests share pipeline runs, so the rate grows with concurrency; the
  results are named ``ingest@N``)

Every request authenticates with an API key, verified in PostgreSQL and then cached per
worker for the server's ``auth_cache_s`` (``--auth-cache 0`` checks it on every request);
``--cache-ttl`` sets the latest-reading cache (default: the server's). Set
``METRIFY_API__HOT_PATHS=false`` to route ``latest`` through FastAPI like every other
endpoint. Ingest bodies continue after the newest stored reading, so a ``--reuse``d folder
moves forward with every run; the script stops before its readings would reach the
present (VEE would reject them: another, slower path). Prints a table and writes
``bench/results/api.json``.

    .venv/bin/python bench/api.py [--workers 2] [--duration 15]
        [--connections 64] [--cache-ttl S] [--auth-cache S] [--scenarios latest,day,...]

Uses ``METRIFY_DATABASE_URL`` if set, else a private embedded PostgreSQL in a temp folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from common import machine
from metrify.api import users
from metrify.api.rbac import Role
from metrify.settings.api import ApiConfig
from metrify.stores import aggregates, database, embedded

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
METRIFY = str(Path(sys.executable).with_name("metrify"))
SERVER = "uvicorn"  # what `metrify serve` runs, named in the report

LUA_COMMON = r"""
local meters = {}
local key = ""
local bodies = {}
local counter = 0
init = function(args)
  for line in io.lines(args[1]) do table.insert(meters, line) end
  key = args[2]
  if args[3] then
    local i = 0
    while true do
      local f = io.open(args[3] .. "/" .. i .. ".csv", "rb")
      if not f then break end
      table.insert(bodies, f:read("*a"))
      f:close()
      i = i + 1
    end
  end
  math.randomseed(os.time() + (args[4] and tonumber(args[4]) or 0))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nRESULT {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, '
    .. '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""

LUA_REQUEST = {
    "health": r"""
request = function()
  return wrk.format("GET", "/health")
end
""",
    "latest": r"""
request = function()
  local m = meters[math.random(#meters)]
  return wrk.format("GET", "/v1/meters/" .. m .. "/latest", {["X-API-Key"] = key})
end
""",
    "day": r"""
request = function()
  local m = meters[math.random(#meters)]
  local d = math.random(1, 30)
  local path = string.format(
    "/v1/meters/%s/readings?from=2025-01-%02dT00:00:00Z&to=2025-01-%02dT00:00:00Z"
    .. "&resolution=raw&limit=1000", m, d, d + 1)
  return wrk.format("GET", path, {["X-API-Key"] = key})
end
""",
    "month": r"""
request = function()
  local m = meters[math.random(#meters)]
  local path = "/v1/meters/" .. m .. "/readings?from=2025-01-01T00:00:00Z"
    .. "&to=2025-02-01T00:00:00Z&resolution=1h&limit=1000"
  return wrk.format("GET", path, {["X-API-Key"] = key})
end
""",
    "energy": r"""
request = function()
  local n = meters[math.random(#meters)]
  local path = "/v1/energy?node=" .. n .. "&from=2025-01-01&to=2025-02-01&resolution=1h&tz=UTC"
  return wrk.format("GET", path, {["X-API-Key"] = key})
end
""",
    "ingest": r"""
request = function()
  counter = counter + 1
  local body = bodies[((counter - 1) % #bodies) + 1]
  return wrk.format("POST", "/v1/readings",
    {["X-API-Key"] = key, ["Content-Type"] = "text/csv"}, body)
end
""",
}


def seed(url: str, home: Path, meters: int, days: int) -> list[str]:
    env = {
        **os.environ,
        "METRIFY_DATABASE_URL": url,
        "METRIFY_HOME": str(home),
        "METRIFY_LAKE_URL": str(home / "lake"),
    }
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE readings, reading_history, grid_measurements, grid_measurement_history,"
            " weather_observations, weather_observation_history, meters, grid_nodes,"
            " weather_stations, quarantine, quality_daily, users, api_keys, refresh_tokens,"
            " idempotency_keys, agg_meter_30m, agg_group_30m, agg_dirty, agg_group_dirty,"
            " lake_outbox"
            # (the audit log is append-only: a run counts its own rows)
        )
    started = time.perf_counter()
    subprocess.run(
        [
            METRIFY,
            "simulate",
            "--meters",
            str(meters),
            "--days",
            str(days),
            "--interval",
            "900",
            "--seed",
            "7",
            "--start",
            START.date().isoformat(),
            "--json",
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(
        f"seeded {meters} meters x {days} days in {time.perf_counter() - started:.0f} s", flush=True
    )
    with psycopg.connect(url, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT DISTINCT meter_id FROM readings ORDER BY 1")]
    return [str(i) for i in ids]


def csv_body(meters: list[str], first: dt.datetime, k: int, intervals: int = 100) -> str:
    """Body ``k``: each of ``meters``' ``intervals`` readings from ``first`` on, as CSV."""
    step = dt.timedelta(minutes=15)
    lines = ["meter_id,ts,interval_s,import_kwh"]
    for m in meters:
        for i in range(intervals):
            value = 0.05 + ((i * 7 + k) % 13) * 0.02
            lines.append(f"{m},{first + i * step:%Y-%m-%dT%H:%M:%SZ},900,{value:.3f}")
    return "\n".join(lines) + "\n"


def write_bodies(folder: Path, meters: list[str], count: int, first_day: dt.datetime) -> None:
    """``count`` CSV bodies of 1,000 readings each; no key repeats across bodies."""
    folder.mkdir(parents=True, exist_ok=True)
    groups = [meters[i : i + 10] for i in range(0, len(meters) - 9, 10)]
    for k in range(count):
        block = k // len(groups)
        first = first_day + block * 100 * dt.timedelta(minutes=15)
        (folder / f"{k}.csv").write_text(csv_body(groups[k % len(groups)], first, k))


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [METRIFY, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.3)
    raise SystemExit("server did not become ready in 60 s")


def run_wrk(
    script: Path, port: int, args: list[str], duration: int, connections: int, threads: int
) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    seconds = result["duration_us"] / 1e6
    result["requests_per_s"] = round(result["requests"] / seconds, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--ingest-connections", default="4,16", help="comma-separated: one ingest run each"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--cache-ttl", type=float, default=None, help="latest-reading cache (default: server's)"
    )
    parser.add_argument(
        "--auth-cache", type=float, default=None, help="credential cache (default: server's)"
    )
    parser.add_argument("--lake", action="store_true", help="also write the lake on ingest")
    parser.add_argument("--scenarios", default="latest,day,month,ingest")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--reuse", metavar="DIR", help="keep/reuse a seeded folder")
    parser.add_argument("--out", default="api.json")
    args = parser.parse_args()
    defaults = ApiConfig()  # the server's defaults unless told otherwise
    args.cache_ttl = defaults.cache_ttl_s if args.cache_ttl is None else args.cache_ttl
    args.auth_cache = defaults.auth_cache_s if args.auth_cache is None else args.auth_cache
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")

    work = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="mapi", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    own_db = not os.environ.get("METRIFY_DATABASE_URL")
    url = os.environ.get("METRIFY_DATABASE_URL") or embedded.start(work / "pg", keep_running=True)
    proc = None
    try:
        database.upgrade(url)
        meter_file = work / "meters.txt"
        if args.reuse and meter_file.exists():
            meters = meter_file.read_text().split()
        else:
            meters = seed(url, home, args.meters, args.days)
            meter_file.write_text("\n".join(meters) + "\n")
        with psycopg.connect(url, autocommit=True) as conn:  # the seed's aggregates
            started = time.perf_counter()
            built = aggregates.refresh(conn)
            print(f"aggregates: {built} in {time.perf_counter() - started:.1f} s", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE api_keys, idempotency_keys")
            since = conn.execute("SELECT clock_timestamp()").fetchone()
            key = users.create_key(conn, "bench", Role.OPERATOR, created_by="bench")["key"]
            last = conn.execute("SELECT max(ts) FROM readings").fetchone()
        assert last is not None and last[0] is not None
        env = {
            **os.environ,
            "METRIFY_DATABASE_URL": url,
            "METRIFY_HOME": str(home),
            "METRIFY_LAKE_URL": str(work / "lake"),
            "METRIFY_LAKE_ENABLED": "true" if args.lake else "false",
            "METRIFY_LOG_LEVEL": "WARNING",
            "METRIFY_API__JWT_SECRET": "bench-" + "x" * 40,
            "METRIFY_API__RATE_LIMIT_PER_S": "1000000",
            "METRIFY_API__RATE_LIMIT_BURST": "1000000",
            "METRIFY_API__CACHE_TTL_S": str(args.cache_ttl),
            "METRIFY_API__AUTH_CACHE_S": str(args.auth_cache),
        }
        proc = start_server(env, args.port, args.workers)
        results: dict[str, Any] = {}
        levels = [int(c) for c in str(args.ingest_connections).split(",")]
        runs = [
            (name, level)
            for name in args.scenarios.split(",")
            for level in (levels if name == "ingest" else [args.connections])
        ]
        for name, connections in runs:
            script = work / f"{name}.lua"
            script.write_text(LUA_COMMON + LUA_REQUEST[name])
            wrk_args = [str(meter_file), key]
            if name == "energy":  # the feeders, in place of the meters
                node_file = work / "nodes.txt"
                with psycopg.connect(url, autocommit=True) as conn:
                    nodes = [
                        r[0]
                        for r in conn.execute(
                            "SELECT DISTINCT node_id FROM meters WHERE node_id IS NOT NULL"
                        )
                    ]
                node_file.write_text("\n".join(map(str, nodes)) + "\n")
                wrk_args = [str(node_file), key]
            if name == "ingest":
                bodies = work / "bodies"
                shutil.rmtree(bodies, ignore_errors=True)
                with psycopg.connect(url, autocommit=True) as conn:
                    newest = conn.execute("SELECT max(ts) FROM readings").fetchone()
                assert newest is not None
                first = newest[0] + dt.timedelta(minutes=15)
                # each run moves the window on; readings from the future are rejected by
                # VEE (a different, slower path), so a reused folder must not get there
                count = max(200, 50 * args.duration)
                blocks = -(-count // max(1, len(meters) // 10))
                horizon = first + dt.timedelta(days=40, minutes=15 * 100 * blocks)
                if horizon > dt.datetime.now(dt.UTC) - dt.timedelta(days=1):
                    raise SystemExit(
                        "the ingest window reached the present: re-seed (another --reuse DIR)"
                    )
                # enough distinct bodies for the run at up to 50 requests/s
                write_bodies(bodies, meters, count, first)
                wrk_args.append(str(bodies))
            # short warm-up (pools, caches, first partitions), then the measured run
            run_wrk(script, args.port, wrk_args, 2, connections, args.threads)
            if name == "ingest":  # the warm-up consumed bodies: make new ones
                first = first + dt.timedelta(days=40)
                shutil.rmtree(bodies, ignore_errors=True)
                write_bodies(bodies, meters, count, first)
            result = run_wrk(script, args.port, wrk_args, args.duration, connections, args.threads)
            if name == "ingest":
                result["readings_per_min"] = round(result["requests_per_s"] * 1000 * 60)
                result["connections"] = connections
                name = f"ingest@{connections}"
            results[name] = result
            print(f"{name}: {result}", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            errors = conn.execute(
                "SELECT count(*) FROM audit_log WHERE action = 'ingest.readings' AND at >= %s",
                (since[0] if since else None,),
            ).fetchone()
        report = {
            "machine": machine(),
            "server": SERVER,
            "workers": args.workers,
            "connections": args.connections,
            "ingest_connections": args.ingest_connections,
            "duration_s": args.duration,
            "cache_ttl_s": args.cache_ttl,
            "auth_cache_s": args.auth_cache,
            "lake": args.lake,
            "meters": len(meters),
            "ingest_requests_audited": errors[0] if errors else None,
            "results": results,
        }
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / args.out).write_text(json.dumps(report, indent=2, default=str))
        print(
            f"\n{SERVER}, {args.workers} worker(s), cache {args.cache_ttl}s, "
            f"auth cache {args.auth_cache}s, wrk on the same 2 cores"
        )
        print(
            f"{'scenario':<10} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
            f"{'non-2xx':>8} {'readings/min':>13}"
        )
        for name, r in results.items():
            print(
                f"{name:<10} {r['requests_per_s']:>9,.0f} {r['p50_us'] / 1000:>8.1f} "
                f"{r['p95_us'] / 1000:>8.1f} {r['p99_us'] / 1000:>8.1f} {r['non2xx']:>8} "
                f"{r.get('readings_per_min', 0):>13,}"
            )
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if own_db and not args.reuse:
            embedded.stop(work / "pg")
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
