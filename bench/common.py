"""Helpers shared by the benchmark scripts: result files and tables."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FISH4K = REPO.parent / "shared" / "data" / "fish4knowledge"
RESULTS = REPO / "bench" / "results"


def machine() -> dict:
    import os

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def write_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"bench": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                "machine": machine(), **data}, indent=2, default=str))
    return path


def table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    width = {c: max(len(str(c)), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    lines = ["  ".join(str(c).ljust(width[c]) for c in cols)]
    lines.append("  ".join("-" * width[c] for c in cols))
    lines += ["  ".join(_fmt(r.get(c)).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)
