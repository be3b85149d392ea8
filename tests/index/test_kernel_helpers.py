"""Small shared facts written once: filter quoting, error -> one line, typed catalog meta, the home layout."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.catalog.catalog import Catalog
from index.catalog.filters import parse_filter, quote
from index.errors import EmptyIndex, NotFound, describe
from index.home import Home, default_model_id, resolve_home


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
        lambda v: not ('"' in v and "'" in v)
    )
)
def test_quote_round_trips_through_the_grammar(value):
    """Whatever a widget offers (a species name with quotes, commas, 'and') stays one value."""
    compiled = parse_filter(f"species={quote(value)}")
    assert compiled.params == [value.lower()]


def test_quote_reads_back_values_with_both_quote_characters():
    from index.catalog.filters import parse_filter

    value = """it's "odd" """
    assert parse_filter(f"species={quote(value)}").params == [value]


@pytest.mark.parametrize(
    "exc, line",
    [
        (NotFound("no catalog at x\nmore detail", hint="ingest first"), "no catalog at x — ingest first"),
        (EmptyIndex("no model"), "no model — " + EmptyIndex.hint),
        (NotFound("plain"), "plain"),
        (ValueError(), "ValueError"),
    ],
)
def test_describe_is_one_line_with_its_hint(exc, line):
    assert describe(exc) == line


def test_typed_meta(tmp_path):
    catalog = Catalog(tmp_path / "c.duckdb")
    catalog.ensure_schema()
    assert catalog.current_model() is None and catalog.prototypes_version("m") == 0
    catalog.set_current_model("m")
    assert catalog.current_model() == "m"
    assert catalog.bump_prototypes_version("m") == 1 and catalog.bump_prototypes_version("m") == 2
    assert catalog.prototypes_version("m") == 2 and catalog.prototypes_version("other") == 0
    catalog.set_prototypes_version("m", 0)
    assert catalog.prototypes_version("m") == 0
    catalog.set_last_report("/r")
    assert catalog.last_report() == "/r"


def test_home_layout(tmp_path, monkeypatch):
    home = Home(tmp_path)
    assert home.model("m") == tmp_path / "models" / "m"
    assert (home.catalog, home.indexes, home.sources, home.reports) == (
        tmp_path / "catalog.duckdb",
        tmp_path / "indexes",
        tmp_path / "sources",
        tmp_path / "reports",
    )
    assert home.added_examples("Poralia rufescens / x") == tmp_path / "sources" / "added" / "Poralia_rufescens_x"
    assert default_model_id("resnet18", "arcface", 128) == "resnet18-arcface-d128"
    monkeypatch.setenv("OCEANID_HOME", str(tmp_path / "env"))
    assert resolve_home() == tmp_path / "env" and resolve_home(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv("OCEANID_HOME")
    monkeypatch.chdir(tmp_path)
    assert resolve_home() == tmp_path / "data"
