"""The filter grammar: expected SQL, results on a real DuckDB table, errors, injection."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from index.catalog.filters import DEFAULT_COLUMNS, Column, SqlFilter, parse_filter, quote
from index.errors import FilterError

ALLOWED = "species, genus, family, kingdom, phylum, class, order, subfamily, rank, depth, date, lat, lon, split, source"

ROWS = [
    # annotation_id, species, genus, family, depth_m, timestamp, latitude, longitude, split, source
    (
        1,
        "Chromis chrysura",
        "Chromis",
        "Pomacentridae",
        5.0,
        datetime(2019, 12, 31, 23, 59),
        -10.5,
        120.0,
        "train",
        "folders",
    ),
    (
        2,
        "Chromis chrysura",
        "Chromis",
        "Pomacentridae",
        120.0,
        datetime(2020, 1, 1, 0, 0),
        -11.0,
        121.0,
        "val",
        "folders",
    ),
    (
        3,
        "Dascyllus reticulatus",
        "Dascyllus",
        "Pomacentridae",
        300.0,
        datetime(2020, 6, 15, 12, 0),
        20.0,
        -150.0,
        "test",
        "fathomnet",
    ),
    (
        4,
        "Chaetodon lunulatus",
        "Chaetodon",
        "Chaetodontidae",
        500.0,
        datetime(2021, 6, 30, 23, 0),
        35.5,
        -122.5,
        "train",
        "fathomnet",
    ),
    (
        5,
        "Chaetodon trifascialis",
        "Chaetodon",
        "Chaetodontidae",
        800.0,
        datetime(2021, 7, 1, 0, 0),
        36.0,
        -122.0,
        "train",
        "coco",
    ),
    (6, "Unknown fish", None, None, None, None, None, None, "train", "coco"),
]


@pytest.fixture
def con(crop_meta):
    return crop_meta(ROWS)


def select(con, f: SqlFilter) -> list[int]:
    return [
        r[0] for r in con.execute(f"SELECT annotation_id FROM crop_meta WHERE {f.sql} ORDER BY 1", f.params).fetchall()
    ]


VALID = [
    # filter text, expected SQL, expected params, expected ids
    ("", "TRUE", [], [1, 2, 3, 4, 5, 6]),
    ('species="Chromis chrysura"', 'lower("species") = ?', ["chromis chrysura"], [1, 2]),
    ("SPECIES = 'chromis CHRYSURA'", 'lower("species") = ?', ["chromis chrysura"], [1, 2]),
    ("genus!=Chromis", 'lower("genus") <> ?', ["chromis"], [3, 4, 5]),
    ("family in (Chaetodontidae, 'x y')", 'lower("family") IN (?, ?)', ["chaetodontidae", "x y"], [4, 5]),
    ("depth=120", '"depth_m" = ?', [120], [2]),
    ("depth>=300", '"depth_m" >= ?', [300], [3, 4, 5]),
    ("depth<300.5", '"depth_m" < ?', [300.5], [1, 2, 3]),
    ("depth=100..500", '("depth_m" >= ? AND "depth_m" <= ?)', [100, 500], [2, 3, 4]),
    ("depth=..120", '("depth_m" <= ?)', [120], [1, 2]),
    ("depth!=100..500", 'NOT ("depth_m" >= ? AND "depth_m" <= ?)', [100, 500], [1, 5]),
    ("depth in (5, 800)", '"depth_m" IN (?, ?)', [5, 800], [1, 5]),
    ("lat<-10.5", '"latitude" < ?', [-10.5], [2]),
    (
        "lat=-11..-10.5 and lon>=120",
        '(("latitude" >= ? AND "latitude" <= ?) AND "longitude" >= ?)',
        [-11, -10.5, 120],
        [1, 2],
    ),
    ("date=2020", '("timestamp" >= ? AND "timestamp" < ?)', [datetime(2020, 1, 1), datetime(2021, 1, 1)], [2, 3]),
    (
        "date=2020-01..2021-06",
        '("timestamp" >= ? AND "timestamp" < ?)',
        [datetime(2020, 1, 1), datetime(2021, 7, 1)],
        [2, 3, 4],
    ),
    ("date=2021-06-30", '("timestamp" >= ? AND "timestamp" < ?)', [datetime(2021, 6, 30), datetime(2021, 7, 1)], [4]),
    ("date<2020", '"timestamp" < ?', [datetime(2020, 1, 1)], [1]),
    ("date<=2020-06", '"timestamp" < ?', [datetime(2020, 7, 1)], [1, 2, 3]),
    ("date>2021-06", '"timestamp" >= ?', [datetime(2021, 7, 1)], [5]),
    (
        "date=2020-06-15T12:00:00",
        '("timestamp" >= ? AND "timestamp" < ?)',
        [datetime(2020, 6, 15, 12), datetime(2020, 6, 15, 12, 0, 0, 1)],
        [3],
    ),
    (
        "date=2020-06-15T14:00:00+02:00",
        '("timestamp" >= ? AND "timestamp" < ?)',
        [datetime(2020, 6, 15, 12), datetime(2020, 6, 15, 12, 0, 0, 1)],
        [3],
    ),
    (
        "date in (2019, 2021-07)",
        '(("timestamp" >= ? AND "timestamp" < ?) OR ("timestamp" >= ? AND "timestamp" < ?))',
        [datetime(2019, 1, 1), datetime(2020, 1, 1), datetime(2021, 7, 1), datetime(2021, 8, 1)],
        [1, 5],
    ),
    ("split=train, source=coco", '(lower("split") = ? AND lower("source") = ?)', ["train", "coco"], [5, 6]),
    ("split=val OR split=test", '(lower("split") = ? OR lower("split") = ?)', ["val", "test"], [2, 3]),
    (
        "(split=val or source=coco) AND depth>100",
        '((lower("split") = ? OR lower("source") = ?) AND "depth_m" > ?)',
        ["val", "coco", 100],
        [2, 5],
    ),
    ('species="it\'s"', 'lower("species") = ?', ["it's"], []),
    # bare multi-word names, up to the next operator, comma, parenthesis, and/or
    ("species=Chromis chrysura", 'lower("species") = ?', ["chromis chrysura"], [1, 2]),
    (
        'species in (Chromis chrysura, "Chaetodon lunulatus")',
        'lower("species") IN (?, ?)',
        ["chromis chrysura", "chaetodon lunulatus"],
        [1, 2, 4],
    ),
    (
        "species = Chaetodon   trifascialis or depth<10",
        '(lower("species") = ? OR "depth_m" < ?)',
        ["chaetodon trifascialis", 10],
        [1, 5],
    ),
    (
        "species!=Chromis chrysura and species!=Unknown fish,split=train",
        '(lower("species") <> ? AND lower("species") <> ? AND lower("split") = ?)',
        ["chromis chrysura", "unknown fish", "train"],
        [4, 5],
    ),
    ('species="say ""hi"""', 'lower("species") = ?', ['say "hi"'], []),
    ("species='it''s'", 'lower("species") = ?', ["it's"], []),
]


@pytest.mark.parametrize(("text", "sql", "params", "ids"), VALID, ids=[row[0] or "empty" for row in VALID])
def test_valid_filters_compile_and_select_the_right_rows(con, text, sql, params, ids):
    f = parse_filter(text)
    assert f.sql == sql
    assert f.params == params
    assert select(con, f) == ids


MALFORMED = [
    ("password=1", "unknown column 'password'"),
    ("species", "expected an operator"),
    ("species=", "expected a value"),
    ("=Chromis", "expected a column name"),
    ("species=a and", "expected a column name"),
    ("species=a or or species=b", "unknown column 'or'"),
    ("(species=a", "expected ')'"),
    ("species=a)", "unexpected ')'"),
    ('species="Chromis', "unterminated quote"),
    ("species<a", "species is text"),
    ("species=a..b", "species is text"),
    ("depth=deep", "depth expects a number"),
    ("depth=nan", "depth expects a number"),
    ("depth=500..100", "empty range"),
    ("depth<100..500", "a range on depth"),
    ("depth=..", "a range on depth"),
    ("date=2020-13", "date expects"),
    ("date=yesterday", "date expects"),
    ("family in Pomacentridae", "expected '(' after in"),
    ("family in (a, b", "closing the in list"),
    ("depth ! 5", "unexpected character '!'"),
    ("species=Chromis chrysura genus=Chromis", "unexpected '=' at position 31 (a bare name runs to the next"),
    ("species=Chromis chrysura)", "unexpected ')'"),
    ("depth=100 200", "depth expects a number"),
    ("(" * 30 + "depth=1" + ")" * 30, "nested parentheses"),
    ("species=" + "a" * 3000, "longer than"),
]


@pytest.mark.parametrize(("text", "problem"), MALFORMED, ids=[m[0][:30] for m in MALFORMED])
def test_malformed_filters_raise_one_line_naming_problem_and_columns(text, problem):
    with pytest.raises(FilterError) as err:
        parse_filter(text)
    message = str(err.value)
    assert problem in message
    assert f"allowed columns: {ALLOWED}" in message
    assert "\n" not in message


INJECTIONS = [
    "species='x' OR 1=1 --",
    "depth=1; DROP TABLE crop_meta",
    "species=x; DROP TABLE crop_meta; --",
    "password=1",
    '"species"=x',
    "'species'='x'",
    'species"=x',
    'species"; DROP TABLE crop_meta; --=1',
    "depth=1 union select 1",
    "split=train) OR (1=1",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_attempts_are_rejected(con, text):
    with pytest.raises(FilterError, match="allowed columns"):
        parse_filter(text)
    assert con.execute("SELECT count(*) FROM crop_meta").fetchone()[0] == len(ROWS)


@pytest.mark.parametrize(
    "text",
    ["species=\"x' OR '1'='1\"", "species='x\" OR 1=1; DROP TABLE crop_meta; --'", "source='; DROP TABLE crop_meta'"],
)
def test_hostile_quoted_values_stay_values(con, text):
    f = parse_filter(text)
    assert f.sql.count("?") == len(f.params) == 1
    assert "DROP" not in f.sql and "OR" not in f.sql
    assert select(con, f) == []
    assert con.execute("SELECT count(*) FROM crop_meta").fetchone()[0] == len(ROWS)


README = Path(__file__).resolve().parents[3] / "README.md"


def _readme_filters() -> list[str]:
    text = README.read_text(encoding="utf-8")
    quoted = re.findall(r"""--where ["'](.+?)["']\s*$""", text, flags=re.M)
    section = text.split("### Filters", 1)[1].split("###", 1)[0]
    inline = [f for f in re.findall(r"`([^`]+)`", section) if re.search(r"[=<>]| in \(", f)]
    return quoted + inline


def test_readme_has_filter_examples():
    examples = _readme_filters()
    assert 'species in (Aurelia aurita, "Chrysaora fuscescens")' in examples
    assert len(examples) >= 6


@pytest.mark.parametrize("text", _readme_filters())
def test_every_readme_filter_example_parses_and_runs(con, text):
    f = parse_filter(text)
    assert f.sql.count("?") == len(f.params) > 0
    select(con, f)  # DuckDB accepts the SQL with its parameters


@pytest.mark.parametrize(
    "value",
    [
        "Chromis chrysura",
        'say "hi"',
        "it's",
        "a and b",
        "x) or (1=1",
        "",
        "  pad  ",
        "Ünïcode fish",
        '"',
        "''",
        "depth=1..2",
        "a, b",
    ],
)
def test_quote_reads_back_as_the_same_value(con, value):
    f = parse_filter(f"species={quote(value)}")
    assert f.params == [value.lower()]
    assert f.sql == 'lower("species") = ?'
    f = parse_filter(f"genus in ({quote(value)}, {quote(value + 'x')})")
    assert f.params == [value.lower(), (value + "x").lower()]


def test_quote_finds_the_row_it_names(con):
    assert select(con, parse_filter("species=" + quote("Dascyllus reticulatus"))) == [3]


def test_default_columns_are_exactly_the_documented_set():
    assert {k: (c.sql, c.type) for k, c in DEFAULT_COLUMNS.items()} == {
        "species": ("species", "text"),
        "genus": ("genus", "text"),
        "family": ("family", "text"),
        "kingdom": ("kingdom", "text"),
        "phylum": ("phylum", "text"),
        "class": ("class", "text"),
        "order": ("order", "text"),
        "subfamily": ("subfamily", "text"),
        "rank": ("label_rank", "text"),
        "origin": ("origin", "text"),
        "depth": ("depth_m", "number"),
        "date": ("timestamp", "date"),
        "lat": ("latitude", "number"),
        "lon": ("longitude", "number"),
        "split": ("split", "text"),
        "source": ("source", "text"),
    }


def test_custom_columns_and_unsafe_sql_names():
    f = parse_filter("Size>2", {"size": Column("size_cm", "number")})
    assert (f.sql, f.params) == ('"size_cm" > ?', [2])
    with pytest.raises(FilterError, match="allowed columns: size$"):
        parse_filter("depth=1", {"size": Column("size_cm", "number")})
    with pytest.raises(ValueError):
        Column('x"; DROP TABLE t; --', "text")
    with pytest.raises(ValueError):
        Column("x", "blob")
