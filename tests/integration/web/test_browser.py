"""The dashboard in a real browser: Debian's Chromium, headless, driven by Selenium.

One server (the app ``metrify serve`` runs, under uvicorn on a free port) and one
browser for the module: sign in, visit every page, filter the anomaly list, acknowledge
an anomaly, and watch the live page show a reading ingested while it is open. Screens
are saved under ``.artifacts/web/`` (or ``$METRIFY_ARTIFACTS/web``), printed at the end.

Skipped when Chromium or its driver is absent, unless ``CI`` is set: then a missing
browser is a failure, so CI cannot pass without running these.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrify.settings import Settings
from metrify.settings.api import ApiConfig
from metrify.web import create_app
from support.api import PASSWORD, SECRET
from support.artifacts import SCREENSHOTS
from support.database import app_url, clear_tables
from support.paths import REPO
from support.server import free_port

CHROMIUM = os.environ.get("METRIFY_CHROMIUM", "/usr/bin/chromium")
DRIVER = os.environ.get("METRIFY_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("METRIFY_ARTIFACTS", REPO / ".artifacts")) / "web"


def _browser_or_skip() -> None:
    if Path(CHROMIUM).exists() and Path(DRIVER).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but Chromium ({CHROMIUM}) or chromedriver ({DRIVER}) is missing")
    pytest.skip("Chromium or chromedriver not installed")


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard app under uvicorn in a thread, over a seeded database."""
    import uvicorn

    _browser_or_skip()
    clear_tables(database_url)
    home = tmp_path_factory.mktemp("browser")
    settings = Settings(
        database_url=app_url(database_url),
        database_owner_url=database_url,
        home=home / "home",
        lake_url=str(home / "lake"),
        api=ApiConfig(jwt_secret=SECRET, rate_limit_per_s=10_000.0, rate_limit_burst=10_000),
    )
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    _seed(base, database_url)
    try:
        yield base
    finally:
        running.should_exit = True
        thread.join(timeout=15)


def _seed(base: str, owner_url: str) -> None:
    import psycopg

    from metrify.api import users
    from metrify.api.rbac import Role

    with psycopg.connect(app_url(owner_url), autocommit=True) as conn:
        users.create_user(conn, "ops", PASSWORD, Role.OPERATOR, None)
    token = httpx.post(
        f"{base}/v1/auth/token",
        data={"grant_type": "password", "username": "ops", "password": PASSWORD},
    ).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=h, timeout=30) as c:
        node = {"node_id": "N1", "kind": "feeder", "capacity_mw": 2.0, "nominal_kv": 11.0}
        assert c.post("/v1/grid/nodes", json=node).status_code == 201
        for meter, region in (("M-1", "north"), ("M-2", "south")):
            body = {"meter_id": meter, "region": region, "node_id": "N1", "interval_s": 1800}
            assert c.post("/v1/meters", json=body).status_code == 201
        # two days of half-hours; M-1 misses two intervals (gaps the page marks)
        rows = [
            {
                "meter_id": m,
                "ts": f"2025-03-0{1 + i // 48}T{(i % 48) // 2:02d}:{30 * (i % 2):02d}:00Z",
                "interval_s": 1800,
                "import_kwh": 0.2 + 0.1 * ((i % 48) // 12),
            }
            for m in ("M-1", "M-2")
            for i in range(96)
            if not (m == "M-1" and i in (30, 31))
        ]
        assert c.post("/v1/readings", json=rows).status_code == 200
        grid = [
            {
                "node_id": "N1",
                "ts": f"2025-03-0{1 + i // 24}T{i % 24:02d}:00:00Z",
                "interval_s": 3600,
                "load_mw": 1.2 + 0.05 * (i % 24),
                "frequency_hz": 50.0 + 0.01 * (i % 5),
                "voltage_kv": 11.1,
            }
            for i in range(48)
        ]
        assert c.post("/v1/grid", json=grid).status_code == 200
    with psycopg.connect(owner_url, autocommit=True) as conn:
        # a day-ahead forecast of M-1's second day, every half hour: P10 < P50 < P90
        conn.execute(
            "INSERT INTO forecasts (subject_type, subject_id, model, horizon, issued_at,"
            " target_ts, p10, p50, p90) SELECT 'meter', 'M-1', 'metrify', 'day-ahead',"
            " '2025-03-01T12:00Z', t, 0.2, 0.3, 0.45 FROM generate_series("
            "'2025-03-02T00:00Z'::timestamptz, '2025-03-02T23:30Z', '30 minutes') AS t"
        )
        for meter, severity in (("M-1", "critical"), ("M-2", "low")):
            conn.execute(
                "INSERT INTO anomalies (kind, subject_type, subject_id, ts_start, ts_end, score,"
                " severity, detector, detector_version, evidence, intervals) VALUES"
                " ('peer_outlier', 'meter', %s, '2025-03-01T18:00Z',"
                " '2025-03-01T20:00Z', 6.5, %s, 'test', '1', '{\"expected_kwh\": 0.3}', 4)",
                (meter, severity),
            )


@pytest.fixture(scope="module")
def browser(server: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--no-first-run",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    request.config.stash[SCREENSHOTS] = ARTIFACTS  # printed at the end of the run
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        assert time.monotonic() < deadline, "timed out waiting in the browser"
        time.sleep(0.05)


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def css_all(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def test_sign_in_and_every_page(server: str, browser: Any) -> None:
    browser.get(f"{server}/meters/M-1")  # a page behind sign-in: sent to sign in first
    assert css(browser, "#sign-in")
    css(browser, "#username").send_keys("ops")
    css(browser, "#password").send_keys(PASSWORD)
    css(browser, "#sign-in button").click()
    # back to the page asked for, its chart drawn from the API: 94 + 96 half-hours in
    # 1-hour buckets over the two days
    status = wait_for(lambda: css(browser, "#meter-status").get_attribute("data-count"))
    assert status == "48"
    assert css_all(browser, "#meter-chart canvas")
    # the stored forecast is drawn: its 48 half-hours, P50 and the P10-P90 band
    assert "forecast of 48 half-hours" in css(browser, "#meter-status").text
    legend = css(browser, "#meter-chart .u-legend").text
    assert "forecast P50" in legend and "forecast P10" in legend and "forecast P90" in legend
    # the gap (two missing half-hours, one hour bucket) is listed with its flag
    flagged = [row.text for row in css_all(browser, "#flagged tbody tr")]
    assert any("missing" in row for row in flagged), flagged
    browser.save_screenshot(str(ARTIFACTS / "meter.png"))

    browser.get(f"{server}/")
    wait_for(lambda: css_all(browser, "#energy-chart canvas"))
    wait_for(lambda: css_all(browser, "#regions tbody tr"))
    regions = [r.text.split()[0] for r in css_all(browser, "#regions tbody tr")]
    assert regions == ["north", "south"]
    browser.save_screenshot(str(ARTIFACTS / "overview.png"))

    browser.get(f"{server}/grid")
    count = wait_for(lambda: css(browser, "#grid-status").get_attribute("data-count"))
    assert count == "48"
    assert len(css_all(browser, ".chart canvas")) == 3
    browser.save_screenshot(str(ARTIFACTS / "grid.png"))


def test_filter_and_acknowledge_an_anomaly(server: str, browser: Any, database_url: str) -> None:
    import psycopg
    from selenium.webdriver.support.ui import Select

    with psycopg.connect(database_url) as conn:  # the two seeded, and what detectors found
        (open_now,) = conn.execute(
            "SELECT count(*) FROM anomalies WHERE status = 'open'"
        ).fetchone() or (0,)
    browser.get(f"{server}/anomalies")
    assert len(css_all(browser, "#anomaly-list tbody tr[data-id]")) == open_now >= 2
    Select(css(browser, "#f-kind")).select_by_visible_text("peer_outlier")
    Select(css(browser, "#f-severity")).select_by_visible_text("high")
    css(browser, "#f-apply").click()
    wait_for(lambda: "severity=high" in browser.current_url)
    rows = css_all(browser, "#anomaly-list tbody tr[data-id]")
    # at least high, of the seeded kind: M-1's critical one only
    assert [r.text.split()[1:4] for r in rows] == [["critical", "peer_outlier", "M-1"]]
    rows[0].find_element("css selector", "a").click()
    count = wait_for(lambda: css(browser, "#evidence-status").get_attribute("data-count"))
    assert int(count) > 0
    css(browser, "#note").send_keys("crew sent")
    browser.save_screenshot(str(ARTIFACTS / "anomaly.png"))
    css(browser, "#do-acknowledge").click()
    wait_for(lambda: css(browser, "#status").text == "acknowledged")
    assert "crew sent" in browser.page_source
    assert not css_all(browser, "#do-acknowledge")  # no second acknowledgement offered


def test_live_page_shows_a_new_reading_within_5_s(server: str, browser: Any) -> None:
    browser.get(f"{server}/live")
    wait_for(lambda: css(browser, "#live-newest").text.startswith("2025-03-02 23:30"))
    token = httpx.post(
        f"{server}/v1/auth/token",
        data={"grant_type": "password", "username": "ops", "password": PASSWORD},
    ).json()["access_token"]
    row = {"meter_id": "M-2", "ts": "2025-03-03T00:00:00Z", "interval_s": 1800, "import_kwh": 0.7}
    sent = time.monotonic()
    response = httpx.post(
        f"{server}/v1/readings", json=[row], headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    wait_for(lambda: css(browser, "#live-newest").text.startswith("2025-03-03 00:00"), 5.0)
    assert time.monotonic() - sent < 5.0
    first = css(browser, "#live-readings tbody tr").text
    assert first.startswith("M-2 2025-03-03 00:00")
    browser.save_screenshot(str(ARTIFACTS / "live.png"))
