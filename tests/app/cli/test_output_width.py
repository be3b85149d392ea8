"""Output at 80 columns and piped (issue 30 item 12). f856aba cut the "why" column mid-number at
80 columns ("next Cariscus pictus 0.41; P…", or "0.4…"), broke the summary inside "(model ...",
wrapped `models`' model id, and cut piped output (not a terminal) to 80 columns as well."""

from __future__ import annotations

import io
import re

from rich.console import Console
from typer.testing import CliRunner

from app.cli import app
from app.cli.models import MODELS_TABLE
from app.cli.tables import Column, fit_table

runner = CliRunner()
NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")


def numbers(text: str) -> list[str]:
    return sorted(NUMBER.findall(text))


def test_identify_at_80_columns_cuts_no_number_and_keeps_the_summary_whole(tiny_home):
    folder = sorted((tiny_home / "crops").glob("*"))[0]
    narrow = runner.invoke(app, ["--home", str(tiny_home), "identify", str(folder)], env={"COLUMNS": "80"})
    piped = runner.invoke(app, ["--home", str(tiny_home), "identify", str(folder)], env={"COLUMNS": ""})
    assert narrow.exit_code == 0 == piped.exit_code, narrow.output
    lines = narrow.stdout.rstrip("\n").splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "…" not in narrow.stdout
    assert numbers(narrow.stdout) == numbers(piped.stdout)  # wrapped word by word: every figure whole
    assert re.search(r"\(model tiny, index gen-\d+\)$", lines[-1])  # the parenthesis on one line


def test_piped_output_is_the_full_plain_text_one_line_per_crop(tiny_home):
    crops = sorted(next(iter(sorted((tiny_home / "crops").glob("*")))).glob("*.png"))
    piped = runner.invoke(app, ["--home", str(tiny_home), "identify", *map(str, crops)], env={"COLUMNS": ""})
    assert piped.exit_code == 0, piped.output
    lines = piped.stdout.rstrip("\n").splitlines()
    rows = [line for line in lines[2:-1]]
    assert len(rows) == len(crops)  # nothing wrapped
    assert all("≥" in r or "<" in r for r in rows)  # the deciding score at the end of "why", never cut
    assert "…" not in piped.stdout and max(len(line) for line in lines) > 80


def render(columns, rows, width: int) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=width).print(fit_table(columns, rows, width))
    return buffer.getvalue().splitlines()


def test_a_long_model_id_is_never_wrapped_and_lower_priority_columns_give_way():
    row = (
        "efficientnet_lite0-softmax-d128 *",
        "efficientnet_lite0",
        "128",
        "1769",
        "gen-0017",
        "stale: trained on a split that `oceanid split --force` replaced",
    )
    for width in (80, 60, 45):
        lines = render(MODELS_TABLE, [row], width)
        assert all(len(line) <= width for line in lines)
        assert any("efficientnet_lite0-softmax-d128 *" in line for line in lines), lines
    narrowest = "\n".join(render(MODELS_TABLE, [row], 60))
    assert "1769" in narrowest and "backbone" not in narrowest  # the backbone went first


def test_a_number_column_is_never_cut():
    columns = (Column("name", 1, wrap=True, min_width=4), Column("value", 2, number=True))
    lines = render(columns, [("a very long name of a thing", "123456.789")], 20)
    assert any("123456.789" in line for line in lines) and all(len(line) <= 20 for line in lines)
