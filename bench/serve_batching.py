"""``oceanid serve`` one-crop /identify latency: torch one-at-a-time (before) vs onnxruntime with batching.

    python -m bench.serve_batching --home /tmp/onnxdemo [--windows 0,1,3,10] [--max-batch 32]

The home is copied to a temporary folder twice: with the model's ONNX export (made by
``oceanid models export`` when missing) and without it (the torch fallback). For each setting
the server is started (``oceanid serve`` on 127.0.0.1, default threads), warmed with 5
requests, then driven by one client (40 requests, one after another) and by 8 clients
(8 threads x 25 requests at once), each request one demo crop posted as multipart to
``/identify`` (what issue 32 measured). Settings: torch with no batching (window 0, max batch
1: what serve ran before), onnxruntime with no batching, and onnxruntime with each
``--windows`` millisecond window at ``--max-batch``. Reports p50 / p95 ms, requests/s and
failed requests. Writes bench/results/serve_batching.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from bench.common import table, write_result

CLI = [sys.executable, "-c", "from app.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        CLI + ["--home", str(home), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not come up in 180 s")


def post(client: httpx.Client, crop: bytes) -> tuple[float, str | None]:
    t0 = time.perf_counter()
    try:
        r = client.post("/identify", files={"file": ("crop.png", crop, "image/png")})
        problem = None if r.status_code == 200 else f"{r.status_code} {r.text[:120]}"
    except httpx.HTTPError as exc:
        problem = f"{type(exc).__name__}: {exc}"
    return time.perf_counter() - t0, problem


def load(url: str, crops: list[bytes], clients: int, each: int) -> dict:
    latencies, failed, lock = [], [], threading.Lock()

    def worker(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for i in range(each):
                took, problem = post(client, crops[(n * each + i) % len(crops)])
                with lock:
                    (failed.append(problem) if problem else latencies.append(took))

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "req_s": round((len(latencies) + len(failed)) / wall, 1),
        "failed": len(failed),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--windows", default="0,1,3,10", help="batch windows to measure, ms")
    ap.add_argument("--max-batch", type=int, default=32)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx_home, torch_home = Path(tmp) / "onnx", Path(tmp) / "torch"
        shutil.copytree(args.home, onnx_home)
        models = json.loads(
            subprocess.run(
                CLI + ["--home", str(onnx_home), "models", "--json"], capture_output=True, text=True, check=True
            ).stdout
        )
        model_id = next(m["model_id"] for m in models if m["current"])
        if not (onnx_home / "models" / model_id / "encoder.onnx").is_file():
            subprocess.run(CLI + ["--home", str(onnx_home), "models", "export"], check=True)
        shutil.copytree(onnx_home, torch_home)
        for name in ("encoder.json", "encoder.onnx"):
            (torch_home / "models" / model_id / name).unlink(missing_ok=True)
        crops = [p.read_bytes() for p in sorted((onnx_home / "crops").rglob("*.png"))[:200]]
        settings = [("torch", torch_home, 0.0, 1), ("onnxruntime", onnx_home, 0.0, 1)]
        settings += [("onnxruntime", onnx_home, float(w), args.max_batch) for w in args.windows.split(",")]
        for encoder, home, window, max_batch in settings:
            env = {**os.environ, "OCEANID_API_BATCH_WINDOW_MS": str(window), "OCEANID_API_MAX_BATCH": str(max_batch)}
            proc, url = serve(home, env)
            try:
                with httpx.Client(base_url=url, timeout=60) as client:
                    for crop in crops[:5]:
                        post(client, crop)
                one = load(url, crops, 1, 40)
                eight = load(url, crops, 8, 25)
            finally:
                proc.terminate()
                proc.wait(30)
            rows.append(
                {
                    "encoder": encoder,
                    "window_ms": window,
                    "max_batch": max_batch,
                    "1 client p50/p95 ms": f"{one['p50_ms']} / {one['p95_ms']}",
                    "8 clients p50/p95 ms": f"{eight['p50_ms']} / {eight['p95_ms']}",
                    "8 clients req/s": eight["req_s"],
                    "failed": one["failed"] + eight["failed"],
                }
            )
            print(rows[-1], flush=True)
    print(table(rows))
    write_result("serve_batching", {"home": str(args.home), "rows": rows})


if __name__ == "__main__":
    main()
