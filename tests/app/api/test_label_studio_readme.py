"""The README's Label Studio section runs as written: its start command and its two API calls are exactly
what the end-to-end test drives through bench/label_studio_harness.py (which `.ci/run` runs against a real
Label Studio), so a setting the README forgets, mistypes or adds fails here without starting anything."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from bench import label_studio_harness as harness

README = Path(__file__).resolve().parents[3] / "README.md"


def _blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Use oceanid from Label Studio") :]
    end = section.find("\n## ", 5)
    section = section if end < 0 else section[:end]
    return [b.replace("\\\n", " ") for b in re.findall(r"```\n(.*?)```", section, re.S)]


def _command(block: str, word: str) -> list[str]:
    line = next(ln for ln in block.splitlines() if word in ln)
    return shlex.split(line)


def test_the_readme_starts_label_studio_as_the_end_to_end_test_does(monkeypatch, tmp_path):
    # would fail: a README without SSRF_PROTECTION_ENABLED=false (Label Studio then refuses the loopback
    # backend), another flag or value than the tested start, or a harness changed without the README
    words = _command(_blocks()[0], "label-studio start")
    at = next(i for i, w in enumerate(words) if w.endswith("/label-studio"))
    env = dict(w.split("=", 1) for w in words[:at])
    seen = {}
    monkeypatch.setattr(harness.Process, "__init__", lambda self, args, env, log: seen.update(args=args, env=env))
    token, user = words[words.index("--user-token") + 1], words[words.index("--username") + 1]
    password = words[words.index("--password") + 1]
    harness.LabelStudio(Path(words[at]), tmp_path, int(words[words.index("--port") + 1]), token, user, password)
    assert words[at + 1 :] == seen["args"][1:]
    assert {k: env.get(k) for k in harness.OFFLINE} == harness.OFFLINE
    assert "LABEL_STUDIO_BASE_DATA_DIR" in env


@pytest.mark.parametrize(("path", "call"), [("/api/ml/", "connect_backend"), ("/api/webhooks/", "add_webhook")])
def test_the_readme_connects_the_backend_and_its_webhook_as_the_end_to_end_test_does(monkeypatch, path, call):
    # would fail: a README body with another auth method, user, action list or header than the tested one
    curls = [shlex.split(cmd) for cmd in re.split(r"\n(?=curl )", _blocks()[1].strip())]
    words = next(w for w in curls if any(x.endswith(path) for x in w))
    body = json.loads(words[words.index("-d") + 1])
    sent = {}
    studio = object.__new__(harness.LabelStudio)
    monkeypatch.setattr(studio, "api", lambda method, where, json: sent.update(path=where, body=json) or {"id": 1},
                        raising=False)  # fmt: skip
    token = body.get("basic_auth_pass") or body["headers"]["Authorization"].split()[-1]
    getattr(studio, call)(body["project"], body["url"], token)
    assert sent["path"] == path
    assert {k: sent["body"].get(k) for k in body} == body
