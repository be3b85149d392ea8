"""A small metadata filter language compiled to a parameterised DuckDB WHERE fragment.

Examples (column names and keywords are case-insensitive)::

    species="Chromis chrysura"
    species=Chromis chrysura and depth<50
    genus=Chromis and depth=100..500
    family in (Pomacentridae, 'Chaetodontidae'), date>=2020-06
    (split=val or split=test) and lat<-10.5

A value is a quoted string (``"..."`` or ``'...'``; a doubled quote inside
stands for one, as in SQL) or bare words: words separated by spaces up to the
next operator, comma, parenthesis or ``and`` / ``or`` form one value (each
word after the first is letters, digits, ``_ . -``), so
``species in (Aurelia aurita, Chrysaora fuscescens)`` needs no quotes. A name
that holds ``and``/``or`` or punctuation needs quotes; :func:`quote` writes them.

Clauses are joined by ``and`` (or ``,``) and ``or``, with parentheses.
Comparisons: ``= != < <= > >=``, ``in (a, b, "c d")`` and inclusive ranges
``a..b`` (either side may be left open: ``depth=..200``). Text compares
case-insensitively and supports ``=``, ``!=`` and ``in``. Dates accept
YYYY, YYYY-MM, YYYY-MM-DD or a full ISO timestamp; a partial date stands for
its whole period (``date=2020`` is all of 2020, ``date<=2020-05`` ends with
May). A clause on a column never matches rows where that column is NULL.

Only column names from the allow-list reach the SQL text; every value is a
``?`` parameter. The text is never pasted into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from index.errors import FilterError

COLUMN_TYPES = ("text", "number", "date")
_MAX_LENGTH = 2000  # characters in one filter
_MAX_DEPTH = 20  # nested parentheses
_KEYWORDS = frozenset({"and", "or"})  # end a bare multi-word value
_NAME_WORD = re.compile(r"^[^\W_][\w.\-]*$")  # a word that may continue a bare multi-word name
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"]|"")*"|'(?:[^']|'')*')
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<lp>\() | (?P<rp>\)) | (?P<comma>,) | (?P<dots>\.\.)
    | (?P<word>(?:[^\s()=!<>,'".]|\.(?!\.))+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Column:
    """One filterable column: its SQL name (a trusted identifier) and value type."""

    sql: str
    type: str  # 'text' | 'number' | 'date'

    def __post_init__(self) -> None:
        if not _IDENT.match(self.sql):
            raise ValueError(f"column SQL name {self.sql!r} is not a plain identifier")
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column type {self.type!r} not in {COLUMN_TYPES}")


DEFAULT_COLUMNS: Mapping[str, Column] = {
    "species": Column("species", "text"),
    "genus": Column("genus", "text"),
    "family": Column("family", "text"),
    "kingdom": Column("kingdom", "text"),
    "phylum": Column("phylum", "text"),
    "class": Column("class", "text"),
    "order": Column("order", "text"),
    "subfamily": Column("subfamily", "text"),
    "rank": Column("label_rank", "text"),  # the rank the crop is labelled at
    "depth": Column("depth_m", "number"),
    "date": Column("timestamp", "date"),
    "lat": Column("latitude", "number"),
    "lon": Column("longitude", "number"),
    "split": Column("split", "text"),
    "source": Column("source", "text"),
    "origin": Column("origin", "text"),  # truth | predicted (crops the cascade found, `identify --save`)
}


@dataclass(frozen=True)
class SqlFilter:
    """A WHERE fragment with ``?`` placeholders and its parameters, in order."""

    sql: str
    params: list[Any] = field(default_factory=list)
    #: (column name, SQL column, value) of every text value the filter names, so a value that
    #: no row holds can be reported with suggestions (:mod:`index.catalog.vocabulary`)
    text_values: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class _Tok:
    kind: str  # 'str' | 'op' | 'lp' | 'rp' | 'comma' | 'dots' | 'word' | 'end'
    text: str
    pos: int


def _tokenise(text: str, fail: Any) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            rest = text[pos:].lstrip()
            what = "unterminated quote" if rest[:1] in "'\"" else f"unexpected character {rest[:1]!r}"
            fail(f"{what} at position {len(text) - len(rest) + 1}")
        kind = match.lastgroup or "word"
        value = match.group(kind)
        if kind == "str":
            value = value[1:-1].replace(value[0] * 2, value[0])
        tokens.append(_Tok(kind, value, match.start(kind) + 1))
        pos = match.end()
    tokens.append(_Tok("end", "", len(text) + 1))
    return tokens


def _period(text: str, fail: Any) -> tuple[datetime, datetime]:
    """A date value as a half-open period [start, end)."""
    try:
        if re.fullmatch(r"\d{4}", text):
            start = datetime(int(text), 1, 1)
            return start, datetime(start.year + 1, 1, 1)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = map(int, text.split("-"))
            start = datetime(year, month, 1)
            return start, datetime(year + month // 12, month % 12 + 1, 1)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            start = datetime.fromisoformat(text)
            return start, start + timedelta(days=1)
        instant = datetime.fromisoformat(text)
    except ValueError:
        fail(f"date expects YYYY, YYYY-MM, YYYY-MM-DD or an ISO timestamp, got {text[:40]!r}")
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC).replace(tzinfo=None)
    return instant, instant + timedelta(microseconds=1)


class _Parser:
    def __init__(self, text: str, columns: Mapping[str, Column]) -> None:
        self.columns = {name.lower(): col for name, col in columns.items()}
        self.allowed = ", ".join(self.columns)
        self.tokens = _tokenise(text, self.fail)
        self.i = 0
        self.params: list[Any] = []
        self.text_values: list[tuple[str, str, str]] = []

    def fail(self, problem: str) -> NoReturn:
        problem = " ".join(problem.split())
        raise FilterError(f"bad filter: {problem}; allowed columns: {self.allowed}")

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.lower() == word

    def expect(self, kind: str, what: str) -> _Tok:
        tok = self.take()
        if tok.kind != kind:
            self.fail(f"expected {what} at position {tok.pos}, got {tok.text or 'end of filter'!r}")
        return tok

    def parse(self) -> str:
        sql = self.parse_or(0)
        tok = self.peek()
        if tok.kind == "op":
            self.fail(
                f"unexpected {tok.text!r} at position {tok.pos} (a bare name runs to the next and/or/comma;"
                ' join clauses with and, or quote the name: species="Chromis chrysura")'
            )
        if tok.kind != "end":
            self.fail(f"unexpected {tok.text!r} at position {tok.pos}")
        return sql

    def parse_or(self, depth: int) -> str:
        parts = [self.parse_and(depth)]
        while self.is_word("or"):
            self.take()
            parts.append(self.parse_and(depth))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def parse_and(self, depth: int) -> str:
        parts = [self.parse_term(depth)]
        while self.is_word("and") or self.peek().kind == "comma":
            self.take()
            parts.append(self.parse_term(depth))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def parse_term(self, depth: int) -> str:
        if self.peek().kind == "lp":
            if depth >= _MAX_DEPTH:
                self.fail(f"more than {_MAX_DEPTH} nested parentheses")
            self.take()
            sql = self.parse_or(depth + 1)
            self.expect("rp", "')'")
            return sql
        return self.parse_comparison()

    def value(self, required: bool = True) -> str | None:
        tok = self.peek()
        if tok.kind == "str":
            return self.take().text
        if tok.kind == "word" and tok.text.lower() not in _KEYWORDS:  # 'depth=1.. and ...': no high end
            words = [self.take().text]
            while (
                self.peek().kind == "word"
                and self.peek().text.lower() not in _KEYWORDS
                and _NAME_WORD.match(self.peek().text)
            ):
                words.append(self.take().text)
            return " ".join(words)
        if required:
            self.fail(f"expected a value at position {tok.pos}, got {tok.text or 'end of filter'!r}")
        return None

    def parse_comparison(self) -> str:
        tok = self.take()
        if tok.kind != "word":
            got = f"quoted {tok.text!r}" if tok.kind == "str" else repr(tok.text or "end of filter")
            self.fail(f"expected a column name at position {tok.pos}, got {got}")
        name = tok.text.lower()
        if name not in self.columns:
            self.fail(f"unknown column {tok.text[:40]!r}")
        col = self.columns[name]
        if self.is_word("in"):
            self.take()
            self.expect("lp", "'(' after in")
            values = [self.value()]
            while self.peek().kind == "comma":
                self.take()
                values.append(self.value())
            self.expect("rp", "')' closing the in list")
            return self.membership(name, col, values)
        op_tok = self.expect("op", f"an operator (= != < <= > >= in) after {name}")
        op = {"==": "=", "<>": "!="}.get(op_tok.text, op_tok.text)
        low = self.value(required=self.peek().kind != "dots")
        if self.peek().kind == "dots":
            self.take()
            high = self.value(required=False)
            if op not in ("=", "!=") or (low is None and high is None):
                self.fail(f"a range on {name} is written {name}=low..high")
            return self.range(name, col, low, high, negate=op == "!=")
        return self.compare(name, col, op, low)

    # ---- SQL emitters -------------------------------------------------------
    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def number(self, name: str, text: str) -> float | int:
        if not _NUMBER.match(text):
            self.fail(f"{name} expects a number, got {text[:40]!r}")
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)

    def text_expr(self, col: Column) -> str:
        return f'lower("{col.sql}")'

    def compare(self, name: str, col: Column, op: str, text: str) -> str:
        sql_op = "<>" if op == "!=" else op
        if col.type == "text":
            if op not in ("=", "!="):
                self.fail(f"{name} is text and supports =, != and in, not {op}")
            self.text_values.append((name, col.sql, text))
            return f"{self.text_expr(col)} {sql_op} {self.bind(text.lower())}"
        if col.type == "number":
            return f'"{col.sql}" {sql_op} {self.bind(self.number(name, text))}'
        start, end = _period(text, self.fail)
        c = f'"{col.sql}"'
        if op in ("=", "!="):
            inside = f"({c} >= {self.bind(start)} AND {c} < {self.bind(end)})"
            return inside if op == "=" else f"NOT {inside}"
        bound = {"<": start, "<=": end, ">": end, ">=": start}[op]
        return f"{c} {'<' if op in ('<', '<=') else '>='} {self.bind(bound)}"

    def membership(self, name: str, col: Column, values: list[str]) -> str:
        if col.type == "date":
            return "(" + " OR ".join(self.compare(name, col, "=", v) for v in values) + ")"
        if col.type == "text":
            self.text_values += [(name, col.sql, v) for v in values]
            marks = ", ".join(self.bind(v.lower()) for v in values)
            return f"{self.text_expr(col)} IN ({marks})"
        marks = ", ".join(self.bind(self.number(name, v)) for v in values)
        return f'"{col.sql}" IN ({marks})'

    def range(self, name: str, col: Column, low: str | None, high: str | None, negate: bool) -> str:
        c = f'"{col.sql}"'
        if col.type == "text":
            self.fail(f"{name} is text; ranges need a number or date column")
        if col.type == "number":
            lo = self.number(name, low) if low is not None else None
            hi = self.number(name, high) if high is not None else None
            parts = ([f"{c} >= {self.bind(lo)}"] if lo is not None else []) + (
                [f"{c} <= {self.bind(hi)}"] if hi is not None else []
            )
        else:
            lo = _period(low, self.fail)[0] if low is not None else None
            hi = _period(high, self.fail)[1] if high is not None else None
            parts = ([f"{c} >= {self.bind(lo)}"] if lo is not None else []) + (
                [f"{c} < {self.bind(hi)}"] if hi is not None else []
            )
        if lo is not None and hi is not None and lo > hi:
            self.fail(f"empty range {low}..{high} on {name}")
        sql = "(" + " AND ".join(parts) + ")"
        return f"NOT {sql}" if negate else sql


def quote(value: object) -> str:
    """A literal the grammar reads back as exactly ``str(value)``.

    Double quotes around it and every double quote inside doubled, as SQL does.
    """
    text = str(value)
    return '"' + text.replace('"', '""') + '"'


def parse_filter(text: str, columns: Mapping[str, Column] = DEFAULT_COLUMNS) -> SqlFilter:
    """Compile a filter expression to ``SqlFilter(sql, params)`` for ``WHERE {sql}``.

    An empty or blank filter gives ``SqlFilter("TRUE", [])``.

    Raises:
        FilterError: one line naming the problem and listing the allowed columns.
    """
    allowed = ", ".join(name.lower() for name in columns)
    if not isinstance(text, str):
        raise FilterError(f"bad filter: expected text; allowed columns: {allowed}")
    if len(text) > _MAX_LENGTH:
        raise FilterError(f"bad filter: longer than {_MAX_LENGTH} characters; allowed columns: {allowed}")
    if not text.strip():
        return SqlFilter("TRUE", [])
    parser = _Parser(text, columns)
    return SqlFilter(parser.parse(), list(parser.params), tuple(parser.text_values))
