"""The Streamlit explorer (face 2): a thin view over the same ``Workspace`` methods the CLI uses.

``main.py`` is the entry script (``oceanid app`` runs it with ``streamlit run``);
``state.py`` caches one Workspace per home and shows errors as one line
(``index.errors.describe``); ``widgets.py`` holds the filter sidebar and galleries;
one ``pages_*.py`` module per page renders what one or two ``Workspace`` calls return.
It imports from ``app`` only ``app.workspace``.
"""
