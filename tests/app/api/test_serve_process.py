"""``oceanid serve`` as a real process: the README's curl calls answer, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-c", "from app.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_released(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(args: list[str], port: int) -> subprocess.Popen:
    """``oceanid ARGS`` in a subprocess, once /health answers (the engine warm)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(CLI + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited {proc.returncode}: {proc.stderr.read().decode()[-1500:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("server did not answer /health in 120 s")


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("server still running 30 s after SIGTERM")


@pytest.fixture(scope="module")
def serve_home(tiny_home, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("serve") / "home"
    shutil.copytree(tiny_home, home)
    return home


def readme_api_block() -> list[str]:
    """The command lines of the README's code block under ``## HTTP API``."""
    text = (REPO / "README.md").read_text()
    section = text.split("## HTTP API", 1)[1]
    block = re.search(r"```\w*\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def curl_request(line: str, port: int, crop: Path) -> httpx.Request:
    """One README ``curl`` line as the httpx request it sends (``-F``, ``-H``, ``-d``; ``@file``
    becomes a crop of the home; the README's port becomes the test server's)."""
    words = shlex.split(line)
    assert words[0] == "curl", line
    headers, form, files, data, url = {}, {}, {}, None, None
    i = 1
    while i < len(words):
        word = words[i]
        if word in ("-s", "--silent"):
            i += 1
            continue
        if word in ("-H", "-F", "-d", "-X"):
            value = words[i + 1]
            if word == "-H":
                key, _, val = value.partition(":")
                headers[key.strip()] = val.strip()
            elif word == "-F":
                key, _, val = value.partition("=")
                if val.startswith("@"):
                    files[key] = (Path(val[1:]).name, crop.read_bytes(), "image/png")
                else:
                    form[key] = val
            elif word == "-d":
                data = value
            i += 2
            continue
        assert url is None and word.startswith("http"), f"unexpected curl word {word!r} in {line!r}"
        url = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", word)
        i += 1
    method = "POST" if (files or form or data is not None) else "GET"
    client = httpx.Client()
    if files or form:
        return client.build_request(method, url, headers=headers, data=form, files=files)
    return client.build_request(method, url, headers=headers, content=data)


def test_the_readme_curl_calls_answer_a_live_server(serve_home):
    lines = readme_api_block()
    serve = [line for line in lines if line.startswith("oceanid serve")]
    curls = [line for line in lines if line.startswith("curl")]
    assert len(serve) == 1 and len(curls) >= 3, lines
    port = free_port()
    args = shlex.split(serve[0])[1:]
    args[args.index("--home") + 1] = str(serve_home)
    args[args.index("--port") + 1] = str(port)
    crop = next(iter(sorted((serve_home / "crops").rglob("*.png"))))
    proc = start(args, port)
    try:
        with httpx.Client(timeout=60) as client:
            for line in curls:
                response = client.send(curl_request(line, port, crop))
                assert response.status_code == 200, (line, response.text)
                assert response.json(), line
    finally:
        assert stop(proc) == 0


def test_sigterm_finishes_the_request_in_flight_and_releases_the_port(serve_home):
    port = free_port()
    proc = start(["--home", str(serve_home), "serve", "--port", str(port)], port)
    crops = [p.read_bytes() for p in sorted((serve_home / "crops").rglob("*.png"))[:64]]
    answer: dict = {}

    def identify_many() -> None:
        files = [("file", (f"{n}.png", c, "image/png")) for n, c in enumerate(crops)]
        answer["response"] = httpx.post(f"http://127.0.0.1:{port}/identify", files=files, timeout=60)

    request = threading.Thread(target=identify_many)
    request.start()
    time.sleep(0.1)  # the request is on its way (or done) when the signal comes
    code = stop(proc)
    request.join(60)
    assert code == 0, proc.stderr.read().decode()[-1500:]
    assert answer["response"].status_code == 200 and len(answer["response"].json()) == len(crops)
    assert port_released(port)
