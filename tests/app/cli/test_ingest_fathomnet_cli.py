"""`oceanid ingest fathomnet` end to end through the stand-in server."""

from __future__ import annotations

import json

from fathomnet_standin import SAMPLE_IMAGES, Fault, StandIn
from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


def test_fathomnet_ingest_resumes_and_reports_failures(tmp_path, monkeypatch):
    crab = next(u for u, d in SAMPLE_IMAGES.items() if d["boundingBoxes"][0]["concept"] == "Chionoecetes tanneri")
    home = str(tmp_path / "h")
    with StandIn() as s:
        s.faults[s.image_path(crab)] = Fault("404")
        for key, value in s.env().items():
            monkeypatch.setenv(key, value)
        args = [
            "--home",
            home,
            "ingest",
            "fathomnet",
            "--concept",
            "Chionoecetes tanneri",
            "--concept",
            "Aurelia aurita",
            "--workers",
            "4",
            "--json",
        ]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        report = json.loads(first.stdout)
        assert report["images_added"] == 4  # 3 crab frames + 2 jellies - the missing one
        assert any(crab in s["item"] and "404" in s["reason"] for s in report["skipped"])
        downloads = s.count("/static/")
        s.faults.clear()
        second = json.loads(runner.invoke(app, args).stdout)
        assert second["images_added"] == 1 and second["images_existing"] == 4
        assert s.count("/static/") == downloads + 1  # only the missing frame was fetched
    stats = json.loads(runner.invoke(app, ["--home", home, "stats", "--json"]).stdout)
    assert stats["per_source"] == {"fathomnet": stats["crops"]}
    assert stats["depth"]["min"] == 12.0
    result = runner.invoke(app, ["--home", home, "stats", "--json"])
    assert "Aurelia aurita" in json.loads(result.stdout)["per_species"]
    from app.workspace import Workspace

    with Workspace(home).catalog.read() as con:
        genus, family = con.execute(
            "SELECT genus, family FROM crop_meta WHERE species = 'Chionoecetes tanneri' LIMIT 1"
        ).fetchone()
    assert (genus, family) == ("Chionoecetes", "Oregoniidae")  # from WoRMS ancestors
