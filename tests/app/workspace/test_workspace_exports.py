"""What ``app.workspace`` exports: every name resolves (the light ones at import, the rest on first use
from the module of the step that makes them), and importing the package loads no heavy library."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import app.workspace as ws_package

#: what ``import app.workspace`` must not load (faiss: only where an index is searched or built)
HEAVY = ("faiss", "torch", "torchvision", "timm", "sklearn", "scipy", "matplotlib", "streamlit")


def test_every_exported_and_lazy_name_resolves_to_its_home():
    # would fail: a LAZY entry naming a module or attribute that moved, or an __all__ name nothing defines
    for name in ws_package.__all__:
        assert getattr(ws_package, name) is not None, name
    for name, (module, attribute) in ws_package.LAZY.items():
        assert getattr(ws_package, name) is getattr(importlib.import_module(module), attribute), name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchThing"):
        ws_package.NoSuchThing  # noqa: B018


def test_importing_the_package_loads_no_heavy_library():
    # would fail: the facade importing a result from a module that imports faiss at its top (indexes.py,
    # species.py), or the engine, at import time
    code = f"import sys, app.workspace; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == ""
