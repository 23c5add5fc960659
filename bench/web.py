"""Web dashboard benchmark: page latency (p50/p95) and the time from ingest to the live page.

Seeds a simulated fleet through the pipeline (``--meters`` x ``--days`` at 15 min; the
default 200 x 11 is ~211,000 readings; 3,500 x 30 is ~10M), builds its aggregates,
starts ``metrify serve`` (the API and the dashboard in one app), signs in through the
dashboard's form like a browser, then for each page requests it ``--rounds`` times one
after another (a random meter each time where the page has one):

* ``html``: the page itself (server-rendered: the indexed queries behind it);
* ``page``: the page plus the API calls its script makes to draw it (made one after
  another here, where a browser makes them in parallel: an upper bound).

Then the live path: a reading newer than any stored is posted to ``/v1/readings`` and
``/ui/live`` (what the live page polls every 2 s) is polled every 50 ms until it shows
it; a reading reaches the screen at most one poll period after that.

    .venv/bin/python bench/web.py [--meters 200] [--days 11] [--rounds 40] [--reuse DIR]

Uses ``METRIFY_DATABASE_URL`` if set, else a private embedded PostgreSQL in a temp folder.
Writes ``bench/results/web.json`` (with the load averages at the start and the end:
the machine's other work shows in every figure) and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from api import seed, start_server
from common import machine
from metrify.api import users
from metrify.api.rbac import Role
from metrify.stores import aggregates, database, embedded

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
PASSWORD = "bench password of the dashboard"
#: the page script's poll period (metrify/web/templates live.html -> live.js)
LIVE_POLL_S = 2.0


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sign_in(client: httpx.Client) -> str:
    """Sign in through the form; the access token the page's script uses."""
    page = client.get("/")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None, page.text[:300]
    done = client.post(
        "/sign-in", data={"username": "bench", "password": PASSWORD, "nonce": nonce.group(1)}
    )
    assert done.status_code in (200, 303), done.text[:300]
    token = re.search(r'name="metrify-token" content="([^"]+)"', client.get("/live").text)
    assert token is not None
    return token.group(1)


def pages(url: str) -> dict[str, Any]:
    """What each page loads, from the stored data: (html path, [api calls]) makers."""
    with psycopg.connect(url, autocommit=True) as conn:
        meters = [r[0] for r in conn.execute("SELECT meter_id FROM meters ORDER BY 1")]
        newest = conn.execute(
            "SELECT max(bucket) FROM agg_group_30m WHERE dim = 'fleet'"
        ).fetchone()
        anomaly = conn.execute("SELECT max(id) FROM anomalies").fetchone()
        node = conn.execute("SELECT min(node_id) FROM grid_nodes").fetchone()
    assert newest is not None and newest[0] is not None, "no aggregates: nothing seeded?"
    end = newest[0] + dt.timedelta(hours=1)
    week = {"from": (end - dt.timedelta(days=7)).isoformat(), "to": end.isoformat()}

    def overview() -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        return "/", [
            ("/v1/energy", {**week, "resolution": "1h", "tz": "UTC", "fleet": "true"}),
        ]

    def meter() -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        m = random.choice(meters)
        return f"/meters/{m}", [
            (f"/v1/meters/{m}/readings", {**week, "resolution": "1h", "limit": 10000}),
            ("/v1/forecasts", {**week, "meter": m, "tz": "UTC"}),
            ("/v1/anomalies", {"subject_id": m, "since": week["from"], "limit": 500}),
        ]

    def triage() -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        return "/anomalies?status=open", []

    def one_anomaly() -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        return f"/anomalies/{anomaly[0] if anomaly and anomaly[0] else 1}", []

    def grid() -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        calls = []
        if node and node[0]:
            calls = [(f"/v1/grid/nodes/{node[0]}/load", {**week, "resolution": "1h"})]
        return "/grid", calls

    def live() -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        return "/live", [("/ui/live", {})]

    return {
        "overview": overview,
        "meter": meter,
        "anomalies": triage,
        "anomaly": one_anomaly,
        "grid": grid,
        "live": live,
    }


def measure(client: httpx.Client, token: str, makers: dict[str, Any], rounds: int) -> dict:
    out: dict[str, Any] = {}
    auth = {"Authorization": f"Bearer {token}"}
    for name, make in makers.items():
        html, full = [], []
        for _ in range(rounds):
            path, calls = make()
            started = time.perf_counter()
            response = client.get(path)
            assert response.status_code in (200, 404), (path, response.status_code)
            html.append(time.perf_counter() - started)
            for call, params in calls:
                answer = client.get(call, params=params, headers=auth)
                assert answer.status_code in (200, 404), (call, answer.text[:200])
            full.append(time.perf_counter() - started)
        out[name] = {
            "html_p50_ms": 1000 * statistics.median(html),
            "html_p95_ms": 1000 * p(html, 0.95),
            "page_p50_ms": 1000 * statistics.median(full),
            "page_p95_ms": 1000 * p(full, 0.95),
            "calls": len(make()[1]),
        }
        r = out[name]
        print(
            f"{name:10} html p50 {r['html_p50_ms']:7.1f} p95 {r['html_p95_ms']:7.1f}"
            f"  page p50 {r['page_p50_ms']:7.1f} p95 {r['page_p95_ms']:7.1f} ms",
            flush=True,
        )
    return out


def live_delay(client: httpx.Client, token: str, url: str, tries: int = 5) -> list[float]:
    """Seconds from posting a new reading to ``/ui/live`` showing it, ``tries`` times."""
    with psycopg.connect(url, autocommit=True) as conn:
        meter, newest = conn.execute(
            "SELECT meter_id, ts FROM readings ORDER BY ts DESC LIMIT 1"
        ).fetchone() or (None, None)
    assert meter is not None
    delays = []
    for k in range(1, tries + 1):
        ts = newest + dt.timedelta(minutes=15 * k)
        row = {"meter_id": meter, "ts": ts.isoformat(), "interval_s": 900, "import_kwh": 0.3}
        started = time.perf_counter()
        sent = client.post("/v1/readings", json=[row], headers={"Authorization": f"Bearer {token}"})
        assert sent.status_code == 200, sent.text[:300]
        while True:
            seen = client.get("/ui/live").json()["newest_ts"]
            if seen and dt.datetime.fromisoformat(seen) >= ts:
                break
            assert time.perf_counter() - started < 30, "never shown"
            time.sleep(0.05)
        delays.append(time.perf_counter() - started)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--days", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--reuse", metavar="DIR", help="keep/reuse a seeded folder")
    parser.add_argument("--out", default="web.json")
    args = parser.parse_args()
    work = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="mweb", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    url = os.environ.get("METRIFY_DATABASE_URL") or embedded.start(work / "pg", keep_running=True)
    proc = None
    try:
        database.upgrade(url)
        marker = work / "seeded.txt"
        if not (args.reuse and marker.exists()):
            seed(url, home, args.meters, args.days)
            marker.write_text(f"{args.meters} {args.days}\n")
        with psycopg.connect(url, autocommit=True) as conn:
            aggregates.refresh(conn)
            conn.execute("TRUNCATE users, refresh_tokens, api_keys")  # a reused store
            users.create_user(conn, "bench", PASSWORD, Role.OPERATOR, None)
            (readings,) = conn.execute("SELECT count(*) FROM readings").fetchone() or (0,)
        print(f"store: {readings:,} readings", flush=True)
        env = {
            **os.environ,
            "METRIFY_DATABASE_URL": url,
            "METRIFY_HOME": str(home),
            "METRIFY_LAKE_URL": str(work / "lake"),
            "METRIFY_LAKE_ENABLED": "false",
            "METRIFY_LOG_LEVEL": "WARNING",
            "METRIFY_API__JWT_SECRET": "bench-" + "x" * 40,
            "METRIFY_API__RATE_LIMIT_PER_S": "1000000",
            "METRIFY_API__RATE_LIMIT_BURST": "1000000",
        }
        proc = start_server(env, args.port, args.workers)
        load_at_start = os.getloadavg()
        base = f"http://127.0.0.1:{args.port}"
        with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as client:
            token = sign_in(client)
            makers = pages(url)
            for make in makers.values():  # warm the pools and caches once
                client.get(make()[0])
            results = measure(client, token, makers, args.rounds)
            delays = live_delay(client, token, url)
        print(
            f"ingest -> /ui/live: median {statistics.median(delays):.2f} s,"
            f" max {max(delays):.2f} s;"
            f" on the page within {max(delays) + LIVE_POLL_S:.2f} s (poll every {LIVE_POLL_S:g} s)"
        )
        report = {
            "readings": readings,
            "meters": args.meters,
            "days": args.days,
            "rounds": args.rounds,
            "workers": args.workers,
            "pages": results,
            "live_delay_s": delays,
            "live_poll_s": LIVE_POLL_S,
            "machine": machine(),
            "load_at_start": load_at_start,
            "load_at_end": os.getloadavg(),
        }
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        if not os.environ.get("METRIFY_DATABASE_URL") and not args.reuse:
            embedded.stop(work / "pg")


if __name__ == "__main__":
    main()
