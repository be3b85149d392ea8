"""The README's plankton walkthrough runs as written (issue 31): its bash block, word for word, through bash,
on a proportional sample of the shared plankton set (every class folder, about one crop in 40 of each, the
class sizes' order kept, NOTICE.txt beside them) laid out so that the block's relative paths
(``../shared/data/pwssc_plankton``, ``bench/lineages/pwssc_plankton.csv``) resolve; only the home it exports
is moved under the test's folder. A command the README misspells, an option that no longer exists, a
step that fails or a section whose printed figures it promises are gone fails here. It trains a model
(about 2 minutes on 2 cores), so it is ``slow``: ``.ci/run`` runs it by name after ``make test``."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
README = REPO / "README.md"
PLANKTON = REPO.parent / "shared" / "data" / "pwssc_plankton"
SECTION = "## Plankton: lineages at ingest, and counts"


def walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def sample(root: Path, every: int = 40, largest_every: int = 8) -> None:
    """About one crop in ``every`` per class (at least 2; the largest class, Copepod, one in ``largest_every``,
    so that it has the 20 test crops ``evaluate``'s count line needs), so the class order by size holds."""
    folders = sorted(p for p in PLANKTON.iterdir() if p.is_dir())
    largest = max(folders, key=lambda f: len(list(f.iterdir())))
    for folder in folders:
        crops = sorted(folder.iterdir())
        keep = crops[: max(2, math.ceil(len(crops) / (largest_every if folder == largest else every)))]
        (root / folder.name).mkdir(parents=True)
        for crop in keep:
            shutil.copyfile(crop, root / folder.name / crop.name)
    shutil.copyfile(PLANKTON / "NOTICE.txt", root / "NOTICE.txt")


@pytest.mark.slow
@pytest.mark.skipif(not PLANKTON.is_dir(), reason="the shared plankton set is not beside the repository")
def test_the_readme_plankton_walkthrough_runs_as_written(tmp_path):
    block = walkthrough()
    assert "export OCEANID_HOME=/tmp/plankton" in block
    script = block.replace("export OCEANID_HOME=/tmp/plankton", f"export OCEANID_HOME={tmp_path / 'home'}")
    work = tmp_path / "work"
    (work / "bench").mkdir(parents=True)
    (work / "bench" / "lineages").symlink_to(REPO / "bench" / "lineages")
    sample(tmp_path / "shared" / "data" / "pwssc_plankton")
    oceanid = f'oceanid() {{ "{sys.executable}" -c "from app.cli import main; main()" "$@"; }}\n'
    env = {**os.environ, "PYTHONPATH": str(REPO), "OCEANID_THREADS": "1", "COLUMNS": "200"}
    env.pop("OCEANID_HOME", None)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", oceanid + script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    # what the README says each step prints
    assert "28 of 34 classes named" in out
    assert re.search(r"count error per class \(\d+ classes with >= 20 test crops\): raw [0-9.]+, adjusted", out)
    rows = (work / "larvacea.csv").read_text(encoding="utf-8").strip().splitlines()
    assert len(rows) >= 2 and "adjusted" in rows[0]
