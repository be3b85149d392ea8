"""One writer per home: two processes publishing at once lose nothing, and a live generation
that disagrees with the catalog is found by `index verify` and rebuilt by `index build`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import REPO, write_image
from typer.testing import CliRunner

from app.cli import app
from index.errors import CatalogBusy, IndexMismatch

runner = CliRunner()


def oceanid(home, *args) -> list[str]:
    """The command line of a real ``oceanid`` process on ``home`` importing this tree."""
    return [sys.executable, "-c", "from app.cli import main; main()", "--home", str(home), *map(str, args)]


def live_ids(ws) -> np.ndarray:
    from index.catalog.embeddings import model_record
    from index.vectors.generations import load_current

    model_id = ws.current_model()
    index, _ = load_current(ws.home, model_id, model_record(ws.catalog, model_id).config_hash)
    return index.ids()


@pytest.mark.slow
def test_two_species_add_processes_at_once_keep_both(tiny_ws, tmp_path):
    from app.workspace import Workspace
    from index.catalog.embeddings import support_crops

    names = ["Heliastra caerulea", "Poralia rufescens"]
    examples = {
        name: [write_image(tmp_path / f"ex{n}" / f"{i}.png", seed=50 + 10 * n + i) for i in range(3)]
        for n, name in enumerate(names)
    }
    env = {**os.environ, "PYTHONPATH": str(REPO), "OCEANID_THREADS": "1"}
    procs = [
        subprocess.Popen(
            oceanid(tiny_ws.home, "species", "add", name, *examples[name]),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ws = Workspace(tiny_ws.home)
    assert set(names) <= set(ws.engine().prototypes.names)
    ids = live_ids(ws)
    for name in names:  # every example vector of both species is in the live generation
        support = [i for i, _ in support_crops(ws.catalog, name)]
        assert len(support) == 3 and np.isin(support, ids).all(), name
    result = runner.invoke(app, ["--home", str(tiny_ws.home), "index", "verify"])
    assert result.exit_code == 0, result.output
    assert ": ok (" in result.output


def _publish_lacking(ws, n: int = 2) -> None:
    """Publish the live index less ``n`` vectors, its manifest claiming the catalog's digest (what
    a writer that built on an older generation than the catalog's wrote)."""
    from index.catalog.embeddings import model_record
    from index.vectors.generations import load_current, publish

    model_id = ws.current_model()
    record = model_record(ws.catalog, model_id)
    index, manifest = load_current(ws.home, model_id, record.config_hash)
    lacking = index.copy()
    lacking.remove(index.ids()[:n])
    publish(ws.home, model_id, lacking, record.config_hash, content=manifest.content)


def test_a_generation_that_disagrees_is_found_by_verify_and_rebuilt_by_build(tiny_ws):
    _publish_lacking(tiny_ws)
    result = runner.invoke(app, ["--home", str(tiny_ws.home), "index", "verify"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "disagrees with the catalog" in lines[0] and "index build" in lines[0], lines
    result = runner.invoke(app, ["--home", str(tiny_ws.home), "index", "build"])
    assert result.exit_code == 0, result.output
    assert "rebuilt from the catalog" in result.output and "up to date" not in result.output
    assert runner.invoke(app, ["--home", str(tiny_ws.home), "index", "verify"]).exit_code == 0
    from index.catalog.embeddings import load_embeddings

    ids, _ = load_embeddings(tiny_ws.catalog, tiny_ws.current_model())
    assert np.array_equal(np.sort(live_ids(tiny_ws)), np.sort(ids))


def test_verify_names_missing_ids_even_when_the_count_agrees(tiny_ws):
    """A generation with the catalog's count and digest but other ids (a vector swapped) is caught
    by the ids the index holds, not only by what its manifest claims."""
    from index.catalog.embeddings import load_embeddings, model_record
    from index.vectors.generations import load_current, publish

    model_id = tiny_ws.current_model()
    record = model_record(tiny_ws.catalog, model_id)
    index, manifest = load_current(tiny_ws.home, model_id, record.config_hash)
    ids, vectors = load_embeddings(tiny_ws.catalog, model_id)
    swapped = index.copy()
    swapped.remove(ids[:1])
    swapped.add(np.asarray([10**9], dtype=np.int64), vectors[:1])  # same count, another id
    publish(tiny_ws.home, model_id, swapped, record.config_hash, content=manifest.content)
    with pytest.raises(IndexMismatch, match="lacks 1 of the catalog's vectors"):
        tiny_ws.index_verify()


def test_a_second_writer_waits_for_the_first_then_fails_in_one_line(tiny_ws, tmp_path):
    """The lock is held across processes: a writer that cannot take it in time gets CatalogBusy."""
    from app.workspace import Workspace
    from app.workspace.writer import HomeWriter

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
                "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)"
            ),
            str(tiny_ws.paths.writer_lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        ws = Workspace(tiny_ws.home)
        ws._writer = HomeWriter(ws.paths, timeout=0.5)
        start = time.monotonic()
        with pytest.raises(CatalogBusy, match="another oceanid process is changing the home"):
            ws.index_build(rebuild=True)
        assert time.monotonic() - start < 10
    finally:
        holder.kill()
        holder.wait()
    assert ws.index_build(rebuild=True).built  # free again once the holder is gone


def test_the_writer_lock_is_reentrant_and_serialises_threads(tiny_ws):
    order = []

    def write(tag):
        with tiny_ws._writer:
            order.append(f"{tag}+")
            with tiny_ws._writer:  # a writer calling another writer step (save_predicted -> index_build)
                time.sleep(0.05)
            order.append(f"{tag}-")

    threads = [threading.Thread(target=write, args=(t,), daemon=True) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])


def test_a_change_prepared_on_an_older_generation_is_refused(tiny_ws, tmp_path):
    """An engine loaded before another process published (a server thread's cached one) must not
    be what a species add builds on: it would drop what the newer generation holds."""
    from app.workspace import Workspace
    from app.workspace.species import add_species

    old = tiny_ws.engine()
    Workspace(tiny_ws.home).index_build(rebuild=True)  # "another process" publishes a generation
    examples = [write_image(tmp_path / f"{i}.png", seed=70 + i) for i in range(2)]
    with pytest.raises(CatalogBusy, match="live index changed"):
        add_species(old, tiny_ws.catalog, tiny_ws.paths, "Xenia nova", examples)
    assert "Xenia nova" not in Workspace(tiny_ws.home).engine().prototypes.names
    assert tiny_ws.species_add("Xenia nova", examples).generation  # the Workspace takes the live engine
