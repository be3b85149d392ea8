"""The import rules of the house, read from the source with ``ast`` (docs/ARCHITECTURE.md).

1. ``index/errors.py``, ``index/imaging.py`` and ``index/files.py`` are the kernel: they
   import nothing else of oceanid, and every package may import them.
2. ``embedder`` imports from ``index`` only the kernel, and never ``app``.
3. ``index`` imports no torch-family library, no ``embedder`` and no ``app``.
4. The faces, ``app/cli/``, ``app/explorer/`` and ``app/api/``, import from ``app`` only ``app.workspace``
   (the package itself, whose ``__init__`` re-exports the result types) and their own
   modules; no ``embedder``; from ``index`` only the kernel and the vocabulary a face
   presents with (``index.records``, ``index.catalog.filters``).
5. ``app.report`` (the only matplotlib) is used by ``app.workspace`` only.
6. No SQL outside ``index/``: no ``.execute(`` / ``.executemany(`` / ``.sql(`` call in
   ``app/`` or ``embedder/``.
7. ``index`` is built in floors (``index/__init__.py``): the ground floor (errors, imaging, files,
   home, records, taxonomy, taxon_rows), then ``sources`` / ``vectors`` / ``metrics``, then ``scoring``, then
   ``catalog``, then ``ingest``. A module imports only its own sub-package and the floors below it.
8. No import circle anywhere (imports inside functions count too: a circle hidden behind a late
   import is still a circle).
9. The query path's modules of ``embedder`` (``embedder.config``, ``embedder.runtime``: the ONNX
   runner) import no torch-family library and, of ``embedder``, only each other: identify, search and
   serve run without the training stack (tests/app/workspace/test_encoders.py checks it at run time).

Imports under ``if TYPE_CHECKING:`` are annotations only and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KERNEL = {"index.errors", "index.imaging", "index.files"}
TORCH_FAMILY = {"torch", "torchvision", "timm", "open_clip", "pytorch_metric_learning", "safetensors"}
FACE_INDEX = KERNEL | {"index.records", "index.catalog.filters"}
SQL_CALLS = {"execute", "executemany", "sql"}
FACES = ("app.cli", "app.explorer", "app.api")
TORCH_FREE = {"embedder", "embedder.config", "embedder.runtime"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import that runs (TYPE_CHECKING blocks skipped)."""
    out: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the module's package
                base = module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            for alias in node.names:  # `from app import workspace` imports app.workspace
                out.append((node.lineno, f"{name}.{alias.name}"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def sql_calls(tree: ast.AST) -> list[int]:
    return [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in SQL_CALLS
    ]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def rule_breaks(module: str, imported: str, known: set[str]) -> str | None:
    """Why ``module`` may not import ``imported`` (None when it may)."""
    top = imported.split(".")[0]
    if top not in {"app", "index", "embedder"} | TORCH_FAMILY:
        return None
    if top in {"app", "index", "embedder"} and imported not in known and imported.rsplit(".", 1)[0] in known:
        imported = imported.rsplit(".", 1)[0]  # `from index.errors import NotFound` -> the module index.errors
    if module in KERNEL:
        if top in {"app", "index", "embedder"} and imported not in KERNEL and imported != "index":
            return "the kernel imports nothing else of oceanid"
        return None
    if module in TORCH_FREE and (top in TORCH_FAMILY or (top == "embedder" and imported not in TORCH_FREE)):
        return "the query path's embedder modules import no torch and only each other"
    if _under(module, "embedder"):
        if top == "app":
            return "libraries never import app"
        if top == "index" and imported not in KERNEL and imported != "index":
            return "embedder imports from index only the kernel (index.errors, index.imaging, index.files)"
    if _under(module, "index"):
        if top in TORCH_FAMILY or top == "embedder":
            return "index imports no torch and no embedder"
        if top == "app":
            return "libraries never import app"
    for face in FACES:
        if _under(module, face):
            if top == "embedder":
                return "faces reach embedder only through app.workspace"
            if top == "app" and not (_under(imported, face) or imported in ("app", "app.workspace")):
                return "faces import from app only app.workspace"
            if top == "index" and imported not in FACE_INDEX and imported != "index":
                return "faces import from index only the kernel, index.records and index.catalog.filters"
    if _under(imported, "app.report") and not (_under(module, "app.workspace") or _under(module, "app.report")):
        return "app.report is used by app.workspace only"
    return None


#: index's floors: a sub-package imports only its own modules and the floors below it.
INDEX_FLOOR = {"sources": 1, "vectors": 1, "metrics": 1, "scoring": 2, "catalog": 3, "ingest": 4}
INDEX_GROUND = {"errors", "imaging", "files", "home", "records", "taxonomy", "taxon_rows"}


def index_floor(module: str) -> tuple[str, int] | None:
    """(sub-package, floor) of an ``index`` module; ground-floor modules are ("", 0)."""
    parts = module.split(".")
    if parts[0] != "index" or len(parts) < 2:
        return None
    if parts[1] in INDEX_FLOOR:
        return parts[1], INDEX_FLOOR[parts[1]]
    return ("", 0) if parts[1] in INDEX_GROUND else None


def floor_break(module: str, imported: str) -> str | None:
    """Why an ``index`` module may not import another ``index`` module (None when it may)."""
    here, there = index_floor(module), index_floor(imported)
    if here is None or there is None or here[0] == there[0]:
        return None
    if there[1] >= here[1]:
        return f"index.{here[0] or 'ground'} (floor {here[1]}) imports only the floors below it"
    return None


def import_graph(root: Path, packages: tuple[str, ...] = ("embedder", "index", "app")) -> dict[str, set[str]]:
    """module -> the oceanid modules it imports (TYPE_CHECKING blocks skipped; a name imported
    from a package counts as that package's module when it is one)."""
    files = [p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))]
    known = {module_name(root, p) for p in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        module = module_name(root, path)
        edges = graph.setdefault(module, set())
        found = imports_of(ast.parse(path.read_text(encoding="utf-8")), module)
        # `from app.cli import options` imports the module app.cli.options, not the package's code
        submodules = {(line, name.rsplit(".", 1)[0]) for line, name in found if name in known and "." in name}
        for line, imported in found:
            if (line, imported) in submodules:
                continue
            if imported not in known:
                imported = imported.rsplit(".", 1)[0]
            if imported in known and imported != module:
                edges.add(imported)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index_of[v] = low[v] = len(index_of)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index_of:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index_of[w])
        if low[v] == index_of[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index_of:
            visit(v)
    return found


def violations(root: Path, packages: tuple[str, ...] = ("embedder", "index", "app")) -> list[str]:
    """Every broken rule under ``root`` as 'path:line: module -> import (rule)'."""
    files = [p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))]
    known = {module_name(root, p) for p in files}
    out = []
    for path in files:
        module = module_name(root, path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, imported in imports_of(tree, module):
            why = rule_breaks(module, imported, known)
            if why is None and imported.startswith("index."):
                target = imported if imported in known else imported.rsplit(".", 1)[0]
                why = floor_break(module, target) if target in known else None
            if why:
                out.append(f"{path.relative_to(root)}:{line}: {module} -> {imported} ({why})")
        if not _under(module, "index"):
            out += [
                f"{path.relative_to(root)}:{line}: SQL outside index/ (.execute / .sql)" for line in sql_calls(tree)
            ]
    return out


def test_the_house_keeps_its_rules():
    assert violations(REPO) == []


def test_no_import_circle():
    assert circles(import_graph(REPO)) == []


def test_the_circle_check_finds_a_planted_circle(tmp_path):
    """Three modules importing round (one of them late, inside a function) are one circle; a
    fourth that only imports them is not in it."""
    files = {
        "app/a.py": "from app.b import x\n",
        "app/b.py": "def f():\n    from app.c import y\n",
        "app/c.py": "import app.a\n",
        "app/d.py": "from app.a import z\n",
        "app/__init__.py": "",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert circles(import_graph(tmp_path, ("app",))) == [["app.a", "app.b", "app.c"]]


def test_the_kernel_exists():
    assert (REPO / "index" / "errors.py").is_file() and (REPO / "index" / "imaging.py").is_file()


FAKE = {
    "embedder/model.py": "from index.vectors.vector_index import VectorIndex\n",
    "embedder/ok.py": "from index.errors import ModelError\nfrom index import imaging\n",
    "index/catalog/lookup.py": "import torch\nfrom embedder.model import load_model\n",
    "index/lib.py": "from app.workspace import Workspace\n",
    "index/errors.py": "from index.catalog.catalog import Catalog\n",
    "app/cli/query.py": (
        "from app.workspace.engine import Engine\nfrom embedder.model import x\n"
        "from index.vectors.vector_index import y\n"
    ),
    "app/cli/fine.py": (
        "from app.workspace import Workspace\nfrom app.cli.common import fail\nfrom index.errors import NotFound\n"
    ),
    "app/explorer/page.py": "def f(con):\n    return con.execute('SELECT 1')\n",
    "app/explorer/report_user.py": "from app.report.plots import survey_plots\n",
    "app/api/routes.py": "from app.workspace.identify import search\nfrom app.cli.common import fail\n",
    "app/api/fine.py": "from app.workspace import Workspace\nfrom app.api.errors import STATUS\n",
    "app/workspace/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.cli import x\n"
    "from app.report.report import write_report\n",
    "app/workspace/engine.py": "",
    "app/report/plots.py": "",
    "app/report/report.py": "",
    "index/catalog/catalog.py": "",
    "index/vectors/vector_index.py": "",
    "index/imaging.py": "",
    "index/vectors/planner.py": "from index.catalog.catalog import Catalog\n",
    "index/sources/coco.py": "from index.vectors.vector_index import VectorIndex\nfrom index.records import SPLITS\n",
    "index/scoring/ood.py": "from index.vectors.vector_index import VectorIndex\nfrom index.ingest.crops import cut\n",
    "index/ingest/crops.py": "",
    "index/records.py": "",
}


def test_the_rules_catch_a_violating_tree(tmp_path):
    """Fed a fake tree that breaks each rule once, the checker names each break, and only those."""
    for rel, text in FAKE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = violations(tmp_path)
    expected = [
        ("embedder/model.py:1", "embedder imports from index only the kernel"),
        ("index/catalog/lookup.py:1", "index imports no torch"),
        ("index/catalog/lookup.py:2", "index imports no torch"),
        ("index/lib.py:1", "libraries never import app"),
        ("index/errors.py:1", "the kernel imports nothing else"),
        ("app/cli/query.py:1", "faces import from app only app.workspace"),
        ("app/cli/query.py:2", "faces reach embedder only through app.workspace"),
        ("app/cli/query.py:3", "faces import from index only the kernel"),
        ("app/explorer/page.py:2", "SQL outside index/"),
        ("app/explorer/report_user.py:1", "faces import from app only app.workspace"),
        ("app/api/routes.py:1", "faces import from app only app.workspace"),
        ("app/api/routes.py:2", "faces import from app only app.workspace"),
        ("index/vectors/planner.py:1", "index.vectors (floor 1) imports only the floors below it"),
        ("index/sources/coco.py:1", "index.sources (floor 1) imports only the floors below it"),
        ("index/scoring/ood.py:2", "index.scoring (floor 2) imports only the floors below it"),
    ]
    for where, why in expected:
        assert any(f.startswith(where) and why in f for f in found), (where, why, found)
    assert not any(
        f.startswith(
            (
                "embedder/ok.py",
                "app/cli/fine.py",
                "app/api/fine.py",
                "app/workspace/",
                "index/sources/coco.py:2",
                "index/scoring/ood.py:1",
            )
        )
        for f in found
    ), found


@pytest.mark.parametrize(
    "module, imported, broken",
    [
        ("embedder.training", "index.errors", False),
        ("embedder.training", "index.files", False),
        ("embedder.training", "index.catalog.catalog", True),
        ("index.vectors.vector_index", "numpy", False),
        ("index.vectors.vector_index", "timm", True),
        ("app.workspace.engine", "embedder.model", False),
        ("app.workspace", "app.report.report", False),
        ("app.explorer.state", "app.workspace", False),
        ("app.explorer.state", "app.workspace.browse", True),
        ("app.cli.data", "index.catalog.stats", True),
        ("app.api.routes", "app.workspace", False),
        ("app.api.routes", "app.workspace.engine", True),
        ("app.api.routes", "embedder.model", True),
        ("app.api.routes", "index.catalog.catalog", True),
        ("embedder.runtime", "embedder.config", False),
        ("embedder.runtime", "index.imaging", False),
        ("embedder.runtime", "embedder.model", True),
        ("embedder.runtime", "torch", True),
        ("embedder.config", "embedder.backbones", True),
    ],
)
def test_rule_table(module, imported, broken):
    assert (rule_breaks(module, imported, set()) is not None) == broken


def test_no_module_is_over_400_lines_and_the_facade_is_thin():
    # issue 25: a room a newcomer reads in one sitting; would fail on a module grown past 400 lines or
    # logic creeping back into the Workspace facade (its file under 300 lines)
    long = {
        str(path.relative_to(REPO)): n
        for package in ("app", "embedder", "index")
        for path in (REPO / package).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert long == {}
    assert len((REPO / "app" / "workspace" / "__init__.py").read_text().splitlines()) < 300
