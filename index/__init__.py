"""oceanid's search library: vectors + metadata -> answers (numpy, faiss, duckdb; no torch).

Floors, lowest first; a module imports only from its own floor and the floors below it
(``tests/test_layers.py`` checks it). Nothing is imported here: import the modules.

::

    ground     errors imaging files   the kernel: every package may import these three
               home records taxonomy  home-folder layout, source records + split vocabulary, lineages
               taxon_rows             the taxa rows a source names, merged into the catalog's
    sources/   coco yolo folders fathomnet downloads detections synthetic reef/
               (each returns a SourcePlan; uses the ground floor only)
    vectors/   vector_index (the FAISS index: ids = catalog keys, exact filtered search),
               faiss_calls, planner, filter_cache, shards, generations (immutable, atomic CURRENT)
    metrics/   classification, ranks (taxon metrics), boxes (detection metrics)
    scoring/   prototypes, ood (unknown scorers), ood_choice, calibration, projection, scorer_store
    catalog/   catalog (the DuckDB file), embeddings, taxa, detectors, frames, decisions, stats,
               splits, lookup (the catalog side of search), filters (``--where``), vocabulary,
               arrow_io (crops out as Arrow, vectors in from Parquet: the Ray runner's side)
    ingest/    ingest (records -> catalog rows, stored frames, cut crops), crops

Every SQL statement of oceanid lives in ``index/catalog`` and ``index/ingest``.
"""
