"""The Discover page in a real headless Chromium (``oceanid app`` on 127.0.0.1): pick the page in the
sidebar, see each cluster of a stored discovery as a gallery. Skips without Debian's chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest

from tests.app.explorer import test_explorer_browser as shared
from tests.app.explorer.test_explorer_browser import (
    PAGE_TIMEOUT,
    REPO,
    RUN_APP,
    START_TIMEOUT,
    free_port,
    group_gone,
    wait_healthy,
)

browser = shared.browser  # the headless Chromium fixture of the explorer's browser test

pytestmark = pytest.mark.browser
pytest.importorskip("sklearn")


@pytest.fixture
def discover_url(tiny_ws, tmp_path):
    """The explorer on a copy of the tiny home holding a discovery of its held-out crops (made under a
    decision answering every crop unknown, the real decision restored before the app starts)."""
    from app.workspace import Workspace
    from index.catalog.decisions import load_decision, store_decision

    real = load_decision(tiny_ws.catalog, "tiny")
    store_decision(tiny_ws.catalog, replace(real, thresholds={**real.thresholds, real.scorer: 2.0}))
    run = Workspace(tiny_ws.home).discovery().run(where="split=holdout", min_cluster_size=3)
    store_decision(tiny_ws.catalog, real)
    port = free_port()
    env = {**os.environ, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none", "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "explorer.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_APP, "--port", str(port), "--home", str(tiny_ws.home)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, START_TIMEOUT)
        yield f"http://127.0.0.1:{port}", run
    finally:
        proc.terminate()
        if not group_gone(proc, timeout=15):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_the_discover_page_shows_each_cluster_as_a_gallery(discover_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, run = discover_url
    browser.get(url)
    wait = WebDriverWait(browser, PAGE_TIMEOUT)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=stSidebar] label")))
    option = next(
        e for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=stSidebar] label") if e.text == "Discover"
    )
    option.click()
    first = run.clusters[0]
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-testid=stMain]"), f"Cluster {first.id}"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid=stMain] img")) >= len(run.clusters))
    text = browser.find_element(By.CSS_SELECTOR, "[data-testid=stMain]").text
    assert all(f"Cluster {c.id} (#{c.number})" in text for c in run.clusters)
    assert "Name it (add species)" in text
    assert browser.save_screenshot(str(tmp_path / "discover.png"))
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid=stException]")
