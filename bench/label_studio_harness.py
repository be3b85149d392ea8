"""A real Label Studio and a real ``oceanid serve``, side by side on loopback: what the end-to-end test
(tests/app/api/test_label_studio_e2e.py) and ``python -m bench.label_studio`` drive.

Label Studio 1.23.2 lives in its own cached virtualenv (default ``build/label-studio-venv``, never in
oceanid's), is started offline with the settings a lab running both on one machine needs
(``ML_BLOCK_LOCAL_IP=false`` and ``SSRF_PROTECTION_ENABLED=false`` let it call a loopback backend and
webhook; ``--internal-host 127.0.0.1`` keeps it off every other interface), and is driven through its
REST API with ``Authorization: Token <token>``. Both servers are stopped by their PIDs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
LABEL_STUDIO = "label-studio==1.23.2"
DEFAULT_VENV = ROOT / "build" / "label-studio-venv"
OFFLINE = {
    "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
    "SSRF_PROTECTION_ENABLED": "false",
    "ML_BLOCK_LOCAL_IP": "false",
    "LATEST_VERSION_CHECK": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "COLLECT_ANALYTICS": "false",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_venv(venv: Path = DEFAULT_VENV, timeout: float = 1200) -> Path:
    """The ``label-studio`` executable of ``venv``, installing Label Studio there first if missing."""
    exe = Path(venv) / "bin" / "label-studio"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(Path(venv) / "bin" / "python"), "-m", "pip", "install", "-q", LABEL_STUDIO],
            check=True,
            timeout=timeout,
        )
    return exe


class Process:
    """A server subprocess with its log file; stopped by its PID (SIGTERM, then SIGKILL)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = Path(log)
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def wait_up(
        self, url: str, seconds: float, ok=lambda r: r.status_code == 200, headers: dict[str, str] | None = None
    ) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.log.name}: exited {self.proc.returncode}\n{self.tail()}")
            try:
                if ok(requests.get(url, timeout=2, headers=headers)):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.log.name}: {url} did not answer in {seconds:.0f} s\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


class LabelStudio(Process):
    """Label Studio started offline on ``127.0.0.1:port`` with a user and a legacy API token (``env``: more
    settings, e.g. ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED``)."""

    def __init__(
        self,
        exe: Path,
        data_dir: Path,
        port: int,
        token: str = "oceanid-e2e-token",
        user: str = "lab@example.org",
        password: str = "reef-pass-1234",
        env: dict[str, str] | None = None,
    ) -> None:
        self.url, self.token = f"http://127.0.0.1:{port}", token
        env = {**os.environ, **OFFLINE, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), **(env or {})}
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(
            [
                str(exe),
                "start",
                "--no-browser",
                "--internal-host",
                "127.0.0.1",
                "--port",
                str(port),
                "--username",
                user,
                "--password",
                password,
                "--user-token",
                token,
            ],
            env,
            Path(data_dir) / "label-studio.log",
        )
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def up(self, seconds: float = 240) -> LabelStudio:
        self.wait_up(f"{self.url}/health", seconds, lambda r: r.status_code == 200 and r.json().get("status") == "UP")
        return self

    def api(self, method: str, path: str, timeout: float = 300, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}{path}", timeout=timeout, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"Label Studio {method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    # -- the REST calls a lab makes -----------------------------------------------------------
    def create_project(self, title: str, label_config: str) -> int:
        return self.api("POST", "/api/projects/", json={"title": title, "label_config": label_config})["id"]

    def import_files(self, project: int, files: list[Path]) -> None:
        """One task per file: one multipart field per file (parts sharing a name collapse into one task)."""
        for start in range(0, len(files), 100):
            chunk = files[start : start + 100]
            parts = {f"file{n}": (p.name, p.read_bytes(), "image/png") for n, p in enumerate(chunk)}
            self.api("POST", f"/api/projects/{project}/import", files=parts)

    def import_tasks(self, project: int, tasks: list[dict]) -> dict:
        """Tasks as JSON (``data`` and ``predictions``), as a lab imports a file of them."""
        return self.api("POST", f"/api/projects/{project}/import", json=tasks)

    def add_local_storage(self, project: int, path: Path) -> int:
        """A local-files storage on ``path`` (under the document root): Label Studio serves the files under it
        as ``/data/local-files/?d=...`` to the project's users."""
        body = {"project": project, "path": str(path), "use_blob_urls": True, "title": "local files"}
        return self.api("POST", "/api/storages/localfiles/", json=body)["id"]

    def tasks(self, project: int) -> list[dict]:
        out, page = [], 1
        while True:
            got = self.api("GET", f"/api/tasks/?project={project}&page_size=500&page={page}&fields=all")
            batch = got["tasks"] if isinstance(got, dict) else got
            out += batch
            total = got.get("total", len(out)) if isinstance(got, dict) else len(out)
            if not batch or len(out) >= total:
                return out
            page += 1

    def connect_backend(self, project: int, url: str, token: str | None) -> int:
        body: dict[str, Any] = {"url": url, "project": project, "title": "oceanid", "is_interactive": False}
        if token:
            body.update(auth_method="BASIC_AUTH", basic_auth_user="label-studio", basic_auth_pass=token)
        return self.api("POST", "/api/ml/", json=body)["id"]

    def retrieve_predictions(self, project: int) -> Any:
        """The data manager's "Retrieve predictions" action on every task of the project."""
        return self.api(
            "POST",
            f"/api/dm/actions/?id=retrieve_tasks_predictions&project={project}",
            json={"selectedItems": {"all": True, "excluded": []}},
            timeout=600,
        )

    def predictions(self, project: int) -> list[dict]:
        got = self.api("GET", f"/api/predictions/?project={project}")
        return got["results"] if isinstance(got, dict) else got

    def add_webhook(self, project: int, url: str, token: str | None) -> int:
        body = {
            "project": project,
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "actions": ["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"],
            "is_active": True,
            "headers": {"Authorization": f"Bearer {token}"} if token else {},
        }
        return self.api("POST", "/api/webhooks/", json=body)["id"]

    def annotate(self, task: int, result: list[dict]) -> int:
        return self.api("POST", f"/api/tasks/{task}/annotations/", json={"result": result})["id"]


class OceanidServer(Process):
    """``oceanid serve`` on ``127.0.0.1:port`` over ``home``, told where Label Studio is."""

    def __init__(
        self, home: Path, port: int, log: Path, token: str | None, ls: LabelStudio | None, extra: list[str] = ()
    ) -> None:
        self.url, self.token = f"http://127.0.0.1:{port}", token
        args = [
            sys.executable,
            "-c",
            "from app.cli import main; main()",
            "--home",
            str(home),
            "serve",
            "--port",
            str(port),
            *extra,
        ]
        if token:
            args += ["--token", token]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if ls is not None:
            env.update(LABEL_STUDIO_URL=ls.url, LABEL_STUDIO_API_KEY=ls.token)
        super().__init__(args, env, log)

    def up(self, seconds: float = 180) -> OceanidServer:
        self.wait_up(
            f"{self.url}/health", seconds, headers={"Authorization": f"Bearer {self.token}"} if self.token else None
        )
        return self
