"""oceanid's application layer: people -> the two libraries (``embedder``, ``index``).

- ``app.workspace``  THE composer: ``Workspace`` (a home folder) and the steps beside it
                     (engine, pipeline, identify, species, evaluation, browse, demo);
                     results are dataclasses with ``to_dict()``, each beside the step that makes it
- ``app.report``     files written for people: the evaluation report and survey charts
                     (the only matplotlib), used by the workspace
- ``app.cli``        face 1, the ``oceanid`` command line (Typer), one module per group
- ``app.explorer``   face 2, the Streamlit explorer (``oceanid app``), one module per page

The faces import from ``app`` only ``app.workspace``; they hold no SQL and no
logic beyond presenting (tests/test_layers.py checks it).
"""
