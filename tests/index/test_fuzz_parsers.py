"""Hostile input by the thousand (hypothesis): the --where grammar, COCO JSON,
species.csv and the image decoder either answer correctly or refuse in one line.

Deterministic (``derandomize=True``) and sized so the module runs in well under a
minute; ``FUZZ_SCALE=10`` multiplies every example count for a longer hunt.
Each test logs how many cases it ran (``pytest -s`` prints them).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import tempfile
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from index.catalog.filters import DEFAULT_COLUMNS, parse_filter, quote
from index.errors import BadImage, FilterError, InvalidInput, OceanidError, SourceError
from index.imaging import decode_bytes
from index.sources.coco import read_coco
from index.sources.folders import read_folders

SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
CASES: dict[str, int] = {}


def fuzz(n: int, deadline_ms: int | None = 1000):
    return settings(
        max_examples=n * SCALE,
        derandomize=True,
        deadline=deadline_ms,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def count(name: str) -> None:
    CASES[name] = CASES.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    for name, n in sorted(CASES.items()):
        print(f"\nfuzz {name}: {n} cases")


def one_line(exc: Exception) -> None:
    text = str(exc)
    assert text and "\n" not in text and len(text) < 400, repr(text)


# ---- the --where grammar -------------------------------------------------------------

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
    (2, "Chromis chrysura", "Chromis", "Pomacentridae", 120.0, datetime(2020, 1, 1), -11.0, 121.0, "val", "folders"),
    (
        3,
        "Dascyllus reticulatus",
        "Dascyllus",
        "Pomacentridae",
        300.0,
        datetime(2020, 6, 15, 12),
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
        datetime(2021, 6, 30, 23),
        35.5,
        -122.5,
        "train",
        "fathomnet",
    ),
    (5, 'Odd "name", and more', None, "x) or (1=1", 800.0, datetime(2021, 7, 1), 36.0, -122.0, "train", "coco"),
    (6, "Unknown fish", None, None, None, None, None, None, "holdout", "coco"),
]
FIELDS = {"species": 1, "genus": 2, "family": 3, "depth": 4, "date": 5, "lat": 6, "lon": 7, "split": 8, "source": 9}


@pytest.fixture(scope="module")
def con(crop_meta):
    return crop_meta(ROWS)


# Everything the compiler may write itself; after removing these, nothing of the user's text may be left.
_SQL_VOCAB = re.compile(
    r'lower\("(?:' + "|".join(c.sql for c in DEFAULT_COLUMNS.values()) + r')"\)'
    r'|"(?:' + "|".join(c.sql for c in DEFAULT_COLUMNS.values()) + r')"'
    r"|\bTRUE\b|\bAND\b|\bOR\b|\bNOT\b|\bIN\b|<>|<=|>=|[=<>?(),\s]"
)


def assert_sql_is_only_ours(sql: str, params: list) -> None:
    assert _SQL_VOCAB.sub("", sql) == "", f"user text reached SQL: {sql!r}"
    assert sql.count("?") == len(params)


def run_filter(con, text: str) -> list[int] | None:
    """The ids selected, or None for a (one-line, 'bad filter') refusal."""
    try:
        f = parse_filter(text)
    except FilterError as exc:
        one_line(exc)
        assert str(exc).startswith("bad filter: ")
        return None
    assert_sql_is_only_ours(f.sql, f.params)
    rows = con.execute(f"SELECT annotation_id FROM crop_meta WHERE {f.sql} ORDER BY 1", f.params).fetchall()
    return [r[0] for r in rows]


FILTER_ALPHABET = st.sampled_from(list("abcdeiknoprsu ()=!<>,.'\"-:;01259*?%\\\t\n\x00é")) | st.characters()


@fuzz(600)
@given(text=st.text(FILTER_ALPHABET, max_size=60))
def test_random_text_is_answered_or_refused_in_one_line(con, text):
    count("filter random text")
    run_filter(con, text)


@fuzz(600)
@given(
    text=st.lists(
        st.sampled_from(
            [
                "species",
                "genus",
                "depth",
                "date",
                "lat",
                "split",
                "source",
                "in",
                "and",
                "or",
                "AND",
                "=",
                "!=",
                "<",
                ">=",
                "..",
                "(",
                ")",
                ",",
                '"',
                "'",
                "Chromis",
                "chrysura",
                "2020",
                "2020-06",
                "-10.5",
                "1e3",
                "nan",
                "train",
                " ",
                "  ",
                ";",
                "--",
                "1=1",
                "DROP",
                "?",
                "$1",
                "\\",
            ]
        ),
        max_size=14,
    ).map("".join)
)
def test_token_soup_is_answered_or_refused_in_one_line(con, text):
    count("filter token soup")
    run_filter(con, text)


# An independent evaluator of the documented semantics, in Python, with SQL's three-valued logic.
def _period(text: str) -> tuple[datetime, datetime]:
    if len(text) == 4:
        y = int(text)
        return datetime(y, 1, 1), datetime(y + 1, 1, 1)
    y, m = map(int, text.split("-"))
    return datetime(y, m, 1), datetime(y + m // 12, m % 12 + 1, 1)


def _clause(row, name: str, op: str, value) -> bool | None:
    cell = row[FIELDS[name]]
    if cell is None:
        return None
    kind = DEFAULT_COLUMNS[name].type
    if op == "in":
        hits = [_clause(row, name, "=", v) for v in value]
        return any(hits)
    if op == "range":
        lo, hi, negate = value
        if kind == "date":
            lo = _period(lo)[0] if lo else None
            hi = _period(hi)[1] if hi else None
            inside = (lo is None or cell >= lo) and (hi is None or cell < hi)
        else:
            inside = (lo is None or cell >= float(lo)) and (hi is None or cell <= float(hi))
        return not inside if negate else inside
    if kind == "text":
        equal = cell.lower() == value.lower()
        return equal if op == "=" else not equal
    if kind == "number":
        x = float(value)
        return {"=": cell == x, "!=": cell != x, "<": cell < x, "<=": cell <= x, ">": cell > x, ">=": cell >= x}[op]
    start, end = _period(value)
    return {
        "=": start <= cell < end,
        "!=": not start <= cell < end,
        "<": cell < start,
        "<=": cell < end,
        ">": cell >= end,
        ">=": cell >= start,
    }[op]


def _and(a, b):
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a, b):
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def evaluate(tree, row):
    if tree[0] == "clause":
        return _clause(row, *tree[1:])
    values = [evaluate(t, row) for t in tree[1]]
    out = values[0]
    for v in values[1:]:
        out = _and(out, v) if tree[0] == "and" else _or(out, v)
    return out


TEXT_VALUES = [
    "Chromis chrysura",
    "chromis CHRYSURA",
    "Chromis",
    "Pomacentridae",
    "train",
    "coco",
    "fathomnet",
    'Odd "name", and more',
    "x) or (1=1",
    "it's",
    "Unknown fish",
    "",
    "nothing here",
]
NUMBERS = st.sampled_from(["5", "120", "300", "-10.5", "-11", "35.5", "800", "0", "1e3", "120.0", "-150"])
DATES = st.sampled_from(["2019", "2020", "2021", "2020-01", "2020-06", "2021-06", "2021-07", "2019-12"])


def _text_literal(value: str, draw_bare: bool) -> str:
    bare_ok = (
        value
        and all(re.fullmatch(r"[^\W_][\w.\-]*", w) for w in value.split(" "))
        and not any(w.lower() in ("and", "or", "in") for w in value.split(" "))
    )
    return value if draw_bare and bare_ok else quote(value)


@st.composite
def clauses(draw):
    name = draw(st.sampled_from(sorted(FIELDS)))
    kind = DEFAULT_COLUMNS[name].type
    col = draw(st.sampled_from([name, name.upper()]))
    if kind == "text":
        values = draw(st.lists(st.sampled_from(TEXT_VALUES), min_size=1, max_size=3))
        bare = draw(st.booleans())
        if draw(st.booleans()):
            literal = ", ".join(_text_literal(v, bare) for v in values)
            return f"{col} in ({literal})", ("clause", name, "in", values)
        op = draw(st.sampled_from(["=", "!=", "=="]))
        return f"{col}{op}{_text_literal(values[0], bare)}", ("clause", name, "!=" if op == "!=" else "=", values[0])
    values = NUMBERS if kind == "number" else DATES
    shape = draw(st.sampled_from(["cmp", "range", "in"]))
    if shape == "in":
        vs = draw(st.lists(values, min_size=1, max_size=3))
        return f"{col} in ({', '.join(vs)})", ("clause", name, "in", vs)
    if shape == "range":
        lo, hi = draw(st.one_of(st.none(), values)), draw(st.one_of(st.none(), values))
        if lo is None and hi is None:
            lo = draw(values)
        if lo is not None and hi is not None:
            key = float if kind == "number" else _period
            if key(lo) > key(hi) if kind == "number" else _period(lo)[0] > _period(hi)[1]:
                lo, hi = hi, lo
        negate = draw(st.booleans())
        text = f"{col}{'!=' if negate else '='}{lo or ''}..{hi or ''}"
        return text, ("clause", name, "range", (lo, hi, negate))
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
    v = draw(values)
    return f"{col} {op} {v}", ("clause", name, op, v)


def filters(depth: int = 2):
    leaf = clauses()
    if depth == 0:
        return leaf

    @st.composite
    def combined(draw):
        parts = draw(st.lists(filters(depth - 1), min_size=1, max_size=3))
        join = draw(st.sampled_from(["and", "or"]))
        sep = {"and": draw(st.sampled_from([" and ", " AND ", ", "])), "or": draw(st.sampled_from([" or ", " OR "]))}[
            join
        ]
        text = sep.join(f"({t})" if draw(st.booleans()) or sub[0] != "clause" else t for t, sub in parts)
        return text, (join, [sub for _, sub in parts])

    return st.one_of(leaf, combined())


@fuzz(500)
@given(case=filters())
def test_generated_filters_select_what_an_independent_evaluator_says(con, case):
    count("filter generated (checked vs Python evaluator)")
    text, tree = case
    got = run_filter(con, text)
    assert got is not None, f"valid filter refused: {text!r}"
    assert got == [r[0] for r in ROWS if evaluate(tree, r) is True], text


@fuzz(500)
@given(case=filters(), data=st.data())
def test_mutated_filters_are_answered_or_refused_in_one_line(con, case, data):
    count("filter mutated")
    text = case[0]
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        how = data.draw(st.sampled_from(["delete", "insert", "swap"]))
        char = data.draw(st.sampled_from(list("()=<>,.\"' ;!-") + ["and", "or", "in"]))
        if how == "delete":
            text = text[:at] + text[at + 1 :]
        elif how == "insert":
            text = text[:at] + char + text[at:]
        else:
            text = text[:at] + char + text[at + 1 :]
    run_filter(con, text)


@fuzz(300)
@given(value=st.text(max_size=30))
def test_quote_round_trips_any_text(con, value):
    count("filter quote round trip")
    f = parse_filter(f"species={quote(value)}")
    assert f.params == [value.lower()]
    assert_sql_is_only_ours(f.sql, f.params)


# ---- COCO JSON -----------------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 1e12),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["a.png", "missing.png", "../a.png", "", "a.png\x00"]),
)
JSON_ANY = st.recursive(
    JSON_SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=12,
)
IDS = st.one_of(st.integers(0, 3), st.sampled_from(["1", 1.0, None, [], {}, True]))


def _entry(keys: dict) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={k: v | JSON_ANY for k, v in keys.items()})


COCO_NEAR = st.fixed_dictionaries(
    {},
    optional={
        "images": st.lists(
            _entry(
                {
                    "id": IDS,
                    "file_name": st.sampled_from(["a.png", "missing.png", "sub/../a.png", "/etc/hostname"]),
                    "depth_m": JSON_SCALARS,
                    "timestamp": st.sampled_from(["2020-01-01", "x", "2020-13-40T99"]),
                    "video_id": JSON_SCALARS,
                    "imaging_type": JSON_SCALARS,
                }
            ),
            max_size=4,
        )
        | JSON_ANY,
        "annotations": st.lists(
            _entry({"id": IDS, "image_id": IDS, "category_id": IDS, "bbox": st.lists(JSON_SCALARS, max_size=5)}),
            max_size=5,
        )
        | JSON_ANY,
        "categories": st.lists(
            _entry(
                {
                    "id": IDS,
                    "name": st.text(max_size=8),
                    "genus": JSON_SCALARS,
                    "supercategory": JSON_SCALARS,
                    "holdout": JSON_SCALARS,
                }
            ),
            max_size=3,
        )
        | JSON_ANY,
    },
)


@pytest.fixture(scope="module")
def coco_dir():
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        Image.new("RGB", (8, 8), "red").save(folder / "a.png")
        yield folder


def _read_coco_text(folder: Path, text: str):
    path = folder / "annotations.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        plan = read_coco(path)
    except (InvalidInput, SourceError) as exc:
        one_line(exc)
        return None
    for _item, reason in plan.skipped:
        assert reason and "\n" not in reason
    for record in plan.records:
        assert record.path.is_file() and record.path.resolve().is_relative_to(folder.resolve())
        assert record.imaging_type is None or isinstance(record.imaging_type, str)
        assert all(v is None or isinstance(v, float) for v in (record.depth_m, record.latitude, record.longitude))
        for box in record.boxes:
            assert isinstance(box.concept, str) and box.concept.strip()
            assert all(isinstance(v, float) for v in (box.x, box.y, box.w, box.h))
    for taxon in plan.taxa:  # what reaches the catalog's VARCHAR columns
        assert isinstance(taxon.concept, str) and taxon.concept.strip()
        assert taxon.parent is None or isinstance(taxon.parent, str)
    assert all(isinstance(v, str) for v in plan.holdout_hints.values())
    return plan


@fuzz(400)
@given(doc=COCO_NEAR)
def test_near_coco_json_reads_or_skips_with_reasons(coco_dir, doc):
    count("coco near-valid structure")
    _read_coco_text(coco_dir, json.dumps(doc))


@fuzz(300)
@given(doc=JSON_ANY)
def test_any_json_document_is_read_or_refused(coco_dir, doc):
    count("coco any JSON")
    _read_coco_text(coco_dir, json.dumps(doc))


@fuzz(200)
@given(text=st.text(max_size=80))
def test_any_text_is_read_or_refused(coco_dir, text):
    count("coco any text")
    _read_coco_text(coco_dir, text)


# ---- species.csv ---------------------------------------------------------------------

CSV_CELLS = st.sampled_from(
    [
        "folder",
        "species",
        "genus",
        "family",
        "fish",
        "Chromis chrysura",
        "",
        " ",
        '"',
        "a,b",
        '"x, y"',
        "\ufefffolder",
        "\r",
        "é",
        "\x00",
    ]
)


@pytest.fixture(scope="module")
def folder_root():
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "fish").mkdir()
        Image.new("RGB", (8, 8), "red").save(root / "fish" / "1.png")
        yield root


@fuzz(400)
@example(text="folder,species,genus\nfish, ,  \n")  # a blank species cell once made an empty concept
@example(text="folder,species\nfish,Chromis chrysura,extra,cells\nfish\n")
@given(
    text=st.one_of(
        st.lists(st.lists(CSV_CELLS, max_size=5).map(",".join), max_size=5).map("\n".join),
        st.text(max_size=60),
    )
)
def test_species_csv_is_read_or_refused(folder_root, text):
    count("species.csv")
    (folder_root / "species.csv").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        plan = read_folders(folder_root)
    except (InvalidInput, SourceError) as exc:
        one_line(exc)
        return
    assert len(plan.records) == 1
    concept = plan.records[0].boxes[0].concept
    assert concept and concept == concept.strip() and "\n" not in concept
    assert all(t.concept and t.concept == t.concept.strip() for t in plan.taxa)


# ---- the image decoder ---------------------------------------------------------------

FISH4K = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fish4knowledge"


def _seeds() -> list[bytes]:
    out = []
    rnd = random.Random(0)
    for fmt, mode in (
        ("PNG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "P"),
        ("PNG", "I;16"),
        ("JPEG", "RGB"),
        ("JPEG", "L"),
        ("GIF", "P"),
        ("BMP", "RGB"),
        ("TIFF", "RGB"),
        ("WEBP", "RGB"),
    ):
        image = Image.frombytes("RGB", (17, 11), bytes(rnd.randrange(256) for _ in range(17 * 11 * 3)))
        if mode == "I;16":
            image = image.convert("L").convert("I;16")
        elif mode != "RGB":
            image = image.convert(mode)
        buf = io.BytesIO()
        image.save(buf, format=fmt)
        out.append(buf.getvalue())
    real = sorted(FISH4K.glob("*/*.png"))[:1] if FISH4K.is_dir() else []
    out.extend(p.read_bytes() for p in real)
    return out


SEEDS = _seeds()


def _decode_or_refuse(data: bytes) -> None:
    try:
        image = decode_bytes(data, "fuzz.img")
    except BadImage as exc:
        one_line(exc)
        return
    assert image.mode == "RGB" and image.width >= 1 and image.height >= 1
    image.tobytes()  # fully decoded


@fuzz(400)
@given(data=st.binary(max_size=300))
def test_random_bytes_decode_or_refuse(data):
    count("image random bytes")
    _decode_or_refuse(data)


@fuzz(400)
@given(seed=st.sampled_from(SEEDS), cut=st.floats(0, 1))
def test_truncated_images_decode_or_refuse(seed, cut):
    count("image truncated")
    _decode_or_refuse(seed[: int(len(seed) * cut)])


@fuzz(600)
@given(
    seed=st.sampled_from(SEEDS), edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_mutated_images_decode_or_refuse(seed, edits):
    count("image mutated")
    data = bytearray(seed)
    for where, value in edits:
        data[min(int(where * len(data)), len(data) - 1)] = value
    _decode_or_refuse(bytes(data))


def test_decoder_errors_are_typed():
    # the whole family above relies on BadImage being the library's typed, one-line error
    assert issubclass(BadImage, InvalidInput) and issubclass(FilterError, OceanidError)
    with pytest.raises(BadImage):
        decode_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
