"""Label Studio's "Retrieve predictions" on N crop tasks, with ``oceanid serve`` as the ML backend.

    /work/shared/tools/cpujob -- env PYTHONPATH=$PWD .venv/bin/python -m bench.label_studio \\
        --home /tmp/demobase [--tasks 500]

The home is copied to a temporary folder. Label Studio 1.23.2 (``build/label-studio-venv``, installed
there if missing) and ``oceanid serve`` are started offline on free loopback ports
(bench/label_studio_harness.py). A ``<Choices>`` project with one choice per species (+ "Unknown")
gets N crop tasks (the home's test crops, repeated to N if fewer) uploaded as files; the backend is
connected through the API and the data manager's "Retrieve predictions" action is timed on all of
them. Reported: seconds, tasks with a stored prediction, failed (a task without one, or with an empty
result), and the correction check: one task is annotated with another species through Label Studio
(webhook to oceanid), and the next "Retrieve predictions" on that task must carry the correction
(``asked_again``: Label Studio called /predict again, which it does only for a new model version).
Targets (issue 28): 500 tasks under 60 s, 0 failed; the correction shows within one request.
Writes bench/results/label_studio.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench.label_studio_harness import DEFAULT_VENV, ROOT, LabelStudio, OceanidServer, ensure_venv, free_port

TOKEN = "bench-oceanid-token"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a trained home (copied, never written)")
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args()

    from app.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="ls-bench-") as tmp:
        base = Path(tmp)
        home = base / "home"
        shutil.copytree(args.home, home, ignore=shutil.ignore_patterns("reports"))
        ws = Workspace(home)
        species = list(ws.engine().prototypes.names)
        with ws.catalog.read() as con:
            rows = con.execute(
                "SELECT crop_path, concept FROM annotations WHERE split = 'test' AND crop_path IS "
                "NOT NULL ORDER BY annotation_id"
            ).fetchall()
        files = []
        (base / "crops").mkdir()
        for n in range(args.tasks):
            path, _ = rows[n % len(rows)]
            files.append(base / "crops" / f"crop{n:04d}.png")
            shutil.copy(home / path, files[-1])
        ls = LabelStudio(ensure_venv(args.venv), base / "ls-data", free_port())
        oceanid = OceanidServer(home, free_port(), base / "oceanid.log", TOKEN, ls)
        try:
            t0 = time.perf_counter()
            ls.up()
            oceanid.up()
            startup = time.perf_counter() - t0
            labels = "".join(f'<Choice value="{s}"/>' for s in species) + '<Choice value="Unknown"/>'
            config = (
                '<View><Image name="image" value="$image"/><Choices name="species" toName="image">'
                f"{labels}</Choices></View>"
            )
            project = ls.create_project("bench crops", config)
            ls.import_files(project, files)
            tasks = ls.tasks(project)
            ls.connect_backend(project, f"{oceanid.url}/label-studio", TOKEN)
            t0 = time.perf_counter()
            ls.retrieve_predictions(project)
            seconds = time.perf_counter() - t0
            stored = {p["task"]: p for p in ls.predictions(project)}
            failed = sum(1 for t in tasks if t["id"] not in stored or not stored[t["id"]]["result"])
            truth = {
                f.name: c for f, (_, c) in zip(files, [rows[n % len(rows)] for n in range(len(files))], strict=True)
            }
            right = sum(
                1
                for t in tasks
                if t["id"] in stored
                and stored[t["id"]]["result"]
                and stored[t["id"]]["result"][0]["value"]["choices"][0]
                == truth[next(iter(t["data"].values())).rsplit("-", 1)[-1]]
            )
            # the correction: one task annotated with another species, then predicted again
            task = tasks[0]
            said = stored[task["id"]]["result"][0]["value"]["choices"][0]
            corrected = next(s for s in species if s != said)
            ls.add_webhook(project, f"{oceanid.url}/label-studio/webhook", TOKEN)
            t0 = time.perf_counter()
            ls.annotate(
                task["id"],
                [{"from_name": "species", "to_name": "image", "type": "choices", "value": {"choices": [corrected]}}],
            )
            annotate_s = time.perf_counter() - t0
            single = f"/api/dm/actions/?id=retrieve_tasks_predictions&project={project}"
            ls.api("POST", single, json={"selectedItems": {"all": False, "included": [task["id"]]}})
            latest = max((p for p in ls.predictions(project) if p["task"] == task["id"]), key=lambda p: p["id"])
            after = latest["result"][0]["value"]["choices"][0] if latest["result"] else None
            asked_again = latest["id"] != stored[task["id"]]["id"]  # a new prediction: /predict was called again
        except BaseException:
            print(ls.tail(), oceanid.tail(), sep="\n")
            raise
        finally:
            oceanid.stop()
            ls.stop()
    result = {
        "tasks": len(tasks),
        "predicted": len(stored),
        "failed": failed,
        "seconds": round(seconds, 2),
        "tasks_per_s": round(len(tasks) / seconds, 1),
        "named_right": right,
        "startup_s": round(startup, 1),
        "correction": {
            "before": said,
            "annotated": corrected,
            "after": after,
            "annotate_s": round(annotate_s, 2),
            "asked_again": asked_again,
            "version_before": stored[task["id"]]["model_version"],
            "version_after": latest["model_version"],
            "changed": after == corrected,
        },
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = ROOT / "bench" / "results" / "label_studio.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
