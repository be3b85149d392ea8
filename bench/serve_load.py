"""Load test of ``oceanid serve``: bounded concurrent clients, idle and while the CLI rebuilds.

    flock /tmp/oceanid-cpu.lock .venv/bin/python -m bench.serve_load --home /tmp/serve-demo
        [--clients 8] [--seconds 60]

The home is copied to a temporary folder (the CLI writes to the copy). The server is started
as a subprocess (``oceanid serve`` on 127.0.0.1, a free port, default threads), warmed, and
driven by ``--clients`` threads (one httpx client each) for ``--seconds``, alternating a
one-crop ``POST /identify`` (multipart PNG) and a filtered ``POST /search`` (base64 image,
``where``). It reports requests/s, p50 / p95 / p99 latency per kind and every failed
request (non-200 or transport error), twice:

- ``idle``;
- ``busy``: while a CLI process loops ``oceanid index rebuild``, ``oceanid species add`` (a
  species from three crops) and ``oceanid species remove`` on the same home, so the server
  swaps engines under load.

Then ``in-process``: the same mix, same clients, calling a warm ``Workspace`` directly (no
HTTP) for ``--seconds``: the throughput the server is held against ("within 2x").
Targets (issue 16): zero failed requests in both runs; one-crop identify p95 < 100 ms warm;
server throughput within 2x of in-process. Writes bench/results/serve_load.json.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from bench.common import CLI, bench_parser, cli_env, table, write_result

WHERE = "split=train"
NEW = "Loadtestia novus"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        CLI + ["--home", str(home), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not come up in 180 s")


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ms = np.asarray(values) * 1000
    return {
        "n": len(values),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def drive(call, crops: list[bytes], clients: int, seconds: float) -> dict:
    """Run ``call(client_state, kind, crop)`` from ``clients`` threads for ``seconds``; kinds alternate."""
    latencies: dict[str, list[float]] = {"identify": [], "search": []}
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(n: int) -> None:
        state: dict = {}
        i = n
        while time.perf_counter() < stop:
            kind = "identify" if i % 2 == 0 else "search"
            crop = crops[i % len(crops)]
            t0 = time.perf_counter()
            try:
                problem = call(state, kind, crop)
            except Exception as exc:  # a transport error is a failed request, counted and shown
                problem = f"{type(exc).__name__}: {exc}"
            took = time.perf_counter() - t0
            with lock:
                (errors.append(f"{kind}: {problem}") if problem else latencies[kind].append(took))
            i += 1
        if "client" in state:
            state["client"].close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    done = sum(len(v) for v in latencies.values())
    return {
        "requests": done + len(errors),
        "requests_per_s": (done + len(errors)) / wall,
        "failed": len(errors),
        "errors": errors[:10],
        **{k: percentiles(v) for k, v in latencies.items()},
    }


def http_call(port: int):
    url = f"http://127.0.0.1:{port}"

    def call(state: dict, kind: str, crop: bytes) -> str | None:
        client = state.setdefault("client", httpx.Client(base_url=url, timeout=30))
        if kind == "identify":
            r = client.post("/identify", files={"file": ("crop.png", crop, "image/png")}, data={"k": "3"})
        else:
            r = client.post("/search", json={"image": base64.b64encode(crop).decode(), "k": 5, "where": WHERE})
        if r.status_code != 200:
            return f"{r.status_code} {r.text[:200]}"
        if kind == "identify" and not r.json()[0].get("species"):
            return f"no answer: {r.text[:200]}"
        return None

    return call


def cli_loop(home: Path, env: dict[str, str], examples: list[Path], stop: threading.Event, log: list) -> None:
    """index rebuild, species add, species remove, until ``stop`` (each one a fresh process)."""
    steps = (["index", "rebuild"], ["species", "add", NEW, *map(str, examples)], ["species", "remove", NEW])
    n = 0
    while not stop.is_set():
        args = steps[n % len(steps)]
        t0 = time.perf_counter()
        out = subprocess.run(CLI + ["--home", str(home), *args], env=env, capture_output=True, text=True)
        log.append(
            {
                "step": " ".join(args[:2]),
                "rc": out.returncode,
                "s": time.perf_counter() - t0,
                "error": out.stderr.strip().splitlines()[-1] if out.returncode else None,
            }
        )
        n += 1


def main() -> None:
    ap = bench_parser(__file__, __doc__)
    ap.add_argument("--home", type=Path, required=True, help="a built home (oceanid demo); copied first")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--crops", type=int, default=200, help="distinct crops the clients send")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="oceanid-load-"))
    home = work / "home"
    shutil.copytree(args.home, home)
    env = cli_env("OCEANID_THREADS")
    files = sorted((home / "crops").rglob("*.png"))
    crops = [p.read_bytes() for p in files[: args.crops]]
    examples = files[-3:]
    port = free_port()
    server = start_server(home, port, env)
    result: dict = {"home": str(args.home), "clients": args.clients, "seconds": args.seconds, "where": WHERE}
    try:
        warm = http_call(port)
        for n in range(5):
            warm({}, "identify" if n % 2 == 0 else "search", crops[n])
        result["idle"] = drive(http_call(port), crops, args.clients, args.seconds)
        stop, log = threading.Event(), []
        cli = threading.Thread(target=cli_loop, args=(home, env, examples, stop, log))
        cli.start()
        try:
            result["busy"] = drive(http_call(port), crops, args.clients, args.seconds)
        finally:
            stop.set()
            cli.join()
        result["busy"]["cli"] = log
    finally:
        server.terminate()
        try:
            result["server_exit"] = server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            result["server_exit"] = "killed"

    from app.workspace import Workspace, limit_threads

    limit_threads()  # the same default as the server
    ws = Workspace(home)
    ws.engine()

    def in_process(state: dict, kind: str, crop: bytes) -> str | None:
        if kind == "identify":
            return ws.identify([crop], k=3)[0].error
        ws.search(crop, k=5, where=WHERE)
        return None

    for n in range(3):
        in_process({}, "identify", crops[n])
    result["in_process"] = drive(in_process, crops, args.clients, args.seconds)
    result["ratio_in_process_to_server"] = result["in_process"]["requests_per_s"] / result["idle"]["requests_per_s"]
    rows = [
        {
            "run": run,
            "req/s": result[run]["requests_per_s"],
            "failed": result[run]["failed"],
            **{
                f"{k} {p}": result[run][k].get(p)
                for k in ("identify", "search")
                for p in ("p50_ms", "p95_ms", "p99_ms")
            },
        }
        for run in ("idle", "busy", "in_process")
    ]
    print(table(rows))
    print("CLI steps during busy:", [(c["step"], c["rc"], round(c["s"], 1)) for c in result["busy"]["cli"]])
    print(f"in-process / server throughput: {result['ratio_in_process_to_server']:.2f}")
    print(write_result("serve_load", result))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
