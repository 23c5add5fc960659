"""``metrify serve --workers 2``: every scrape of ``/metrics`` reports all workers.

Each worker is a process with its own counters; a scrape lands on either. Before, a
scrape answered with its worker's share only, so counts jumped between scrapes. Requests
go out on fresh connections from several threads, so both workers serve some of them.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx

from metrify.settings import Settings
from support.server import serving
from support.waiting import until

REQUESTS = 60
SCRAPES = 12
SERIES = re.compile(
    r'^metrify_api_requests_total\{method="GET",route="/health",status="200"\} (\S+)$', re.M
)


def _health_count(base: str) -> int:
    found = SERIES.findall(httpx.get(f"{base}/metrics").text)
    return int(float(found[0])) if found else 0


def test_every_scrape_counts_the_requests_of_all_workers(settings: Settings) -> None:
    with serving("--workers", "2") as base:
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(lambda _: httpx.get(f"{base}/health").status_code, range(REQUESTS))
            )
        assert codes == [200] * REQUESTS
        # a request is counted just after its answer is sent: wait for the last one
        until(lambda: _health_count(base) >= REQUESTS, timeout=30)
        assert [_health_count(base) for _ in range(SCRAPES)] == [REQUESTS] * SCRAPES
