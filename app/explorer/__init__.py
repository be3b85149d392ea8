"""The Streamlit explorer: a thin view over the same ``Workspace`` methods the CLI uses.

``main.py`` is the entry script (``oceanid app`` runs it with ``streamlit run``);
one module per page renders what one or two ``Workspace`` calls return.
"""
