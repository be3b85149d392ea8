"""The explorer in a real headless Chromium: start `oceanid app` on 127.0.0.1, upload
an image, see the prediction, save a screenshot.

Run alone with ``pytest -m browser``. Needs Debian's ``chromium`` and
``chromium-driver`` (``.ci/run`` installs them); skips when they are missing.
Set ``OCEANID_SCREENSHOT=docs/screenshot.png`` to refresh the README's picture.
"""

from __future__ import annotations

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

from tests.app.explorer.test_explorer_apptest import crops_of

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 45  # seconds for streamlit to answer its health check
PAGE_TIMEOUT = 45  # seconds for the prediction to appear (the first query loads the model)
RUN_APP = (
    "import typer; from app.cli.explorer import app_command; cli = typer.Typer(); cli.command()(app_command); cli()"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the explorer exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"no answer from {url} within {timeout:.0f} s")


@pytest.fixture
def explorer_url(tiny_home, tmp_path):
    """`oceanid app --port P --home H` on a free port of 127.0.0.1; always stopped afterwards."""
    home = tiny_home
    port = free_port()
    env = {**os.environ, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none", "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "explorer.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_APP, "--port", str(port), "--home", str(home)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, START_TIMEOUT)
        yield f"http://127.0.0.1:{port}", home
    finally:
        proc.terminate()  # SIGTERM to `oceanid app` only: it must stop streamlit itself
        left_behind = not group_gone(proc, timeout=15)
        if left_behind:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert not left_behind, "`oceanid app` left streamlit running after SIGTERM"


def group_gone(proc: subprocess.Popen, timeout: float) -> bool:
    """True once no process of the explorer's process group is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_upload_an_image_and_see_the_prediction(explorer_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, home = explorer_url
    _, species, crop = crops_of(home, "test")[0]
    upload = tmp_path / "query.png"
    shutil.copy(crop, upload)
    from app.workspace import Workspace

    expected = Workspace(home).identify([upload])[0]
    answer = "Unknown" if expected.unknown else expected.species

    browser.get(url)
    wait = WebDriverWait(browser, PAGE_TIMEOUT)
    field = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))
    field.send_keys(str(upload))
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-testid=stMain]"), "Most similar crops"))
    heading = wait.until(lambda d: [h.text for h in d.find_elements(By.CSS_SELECTOR, "h3") if h.text])
    assert answer in heading
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid=stMain] img")) >= 5)
    height = browser.execute_script("return document.querySelector('[data-testid=stMain]').scrollHeight")
    browser.set_window_size(1400, min(int(height) + 40, 2400))  # the whole page, gallery included
    time.sleep(1.5)  # let the resized page and its images settle before the picture
    shot = Path(os.environ.get("OCEANID_SCREENSHOT") or tmp_path / "explorer.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid=stException]")
