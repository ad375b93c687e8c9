"""The Dagster UI in a real browser: Debian's chromium driven by Playwright's Python package."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from synth_assets.config import load_config
from synth_assets.refresh import read_schema
from synth_assets.snapshot import write_snapshot
from tests.helpers import scalar

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)
TABLES = ["customers", "addresses", "employees", "orders"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds}s")


@pytest.fixture()
def webserver(tmp_path: Path, demo_source: str, make_database):  # type: ignore[no-untyped-def]
    dev = make_database("ui")
    data = {
        "source": {"url": demo_source, "schema": "public"},
        "environments": {"dev": {"url": dev, "schema": "public"}},
        "tables": {"include": TABLES},
        "validation": {
            "expectations_dir": str(tmp_path / "exp"),
            "reports_dir": str(tmp_path / "reports"),
        },
        "orchestration": {
            "snapshot": str(tmp_path / "snapshot.json"),
            "storage_dir": str(tmp_path / "storage"),
            "concurrency": 2,
        },
    }
    config_path = tmp_path / "prodtwin.yaml"
    config_path.write_text(yaml.safe_dump(data))
    write_snapshot(read_schema(load_config(config_path)), tmp_path / "snapshot.json")
    home = tmp_path / "dagster_home"
    home.mkdir()
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "PRODTWIN_CONFIG": str(config_path)}
    log = (tmp_path / "webserver.log").open("w")
    # dagster dev, as `prodtwin ui` runs it: the webserver plus the daemon that starts queued runs
    dagster = str(Path(sys.executable).with_name("dagster"))
    server = subprocess.Popen(
        [dagster, "dev", "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/server_info", 120)
        yield f"http://127.0.0.1:{port}", dev, tmp_path
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # dagster dev, its daemon and its code server
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_ui_lists_the_tables_and_materializes_an_environment(webserver) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    base, dev, tmp = webserver
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/assets", wait_until="networkidle")
        # Dagster's first-visit newsletter dialog covers the page until skipped
        with contextlib.suppress(PlaywrightTimeout):
            page.get_by_role("button", name="Skip").first.click(timeout=20_000)
        for table in TABLES:  # the catalog lists the tables of the snapshot
            page.get_by_text(f"extract / {table}", exact=True).first.wait_for(timeout=60_000)
        for table in TABLES:  # and each has a page per stage, e.g. its published copy
            page.goto(f"{base}/assets/published/dev/{table}", wait_until="networkidle")
            page.get_by_text("published_dev").first.wait_for(timeout=60_000)
        page.goto(f"{base}/jobs", wait_until="networkidle")
        page.get_by_role("link", name="refresh_environment_dev").first.click()
        page.wait_for_load_state("networkidle")
        page.get_by_role("button", name="Materialize all").first.click(timeout=60_000)
        deadline = time.time() + 420
        while time.time() < deadline:
            try:
                if (
                    scalar(
                        dev,
                        "select count(*) from information_schema.tables where "
                        "table_schema = 'public' and table_name = 'orders'",
                    )
                    == 1
                ):
                    break
            except Exception:
                pass
            time.sleep(2)
        page.goto(f"{base}/runs", wait_until="networkidle")
        page.get_by_text("Success").first.wait_for(timeout=120_000)
        shot = tmp / "ui.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert scalar(dev, "select count(*) from public.customers") == 2000
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("PRODTWIN_SCREENSHOT_DIR")  # CI can keep the picture
    if keep:
        shutil.copy(shot, Path(keep) / "ui.png")
