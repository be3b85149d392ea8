"""oceanid's search library: vectors + metadata -> answers (numpy, faiss, duckdb; no torch).

The kernel, importable from any package (it imports nothing else of oceanid):

- ``errors``    typed errors with a hint; ``describe(exc)`` = the one line both faces show
- ``imaging``   the one safe image decoder (pixel limit, EXIF orientation, RGB)
- ``files``     sha256 and durable/atomic writes (index/files.py, from the parallel files branch)

The rest (import from the submodules; nothing is imported here):

- ``home``        the home-folder layout (models/, indexes/, sources/, reports/, model ids)
- ``catalog``     the DuckDB file: short-lived connections, typed meta (current model, prototypes version)
- ``records``     ImageRecord / BoxRecord / Taxon / SourcePlan, the split vocabulary (SPLITS, HOLDOUT, SUPPORT)
- ``sources``     readers that return a SourcePlan: coco, folders, fathomnet, synthetic (the reef)
- ``ingest``      records -> catalog rows, stored frames, cut crops; support examples of added species
- ``crops``, ``splits``, ``stats``  crop cutting, train/val/test/holdout assignment, survey and counts
- ``embeddings``  vectors and prototypes in the catalog; support classes added/removed in one transaction
- ``vectors``     the FAISS index (ids = catalog keys, exact filtered search)
- ``filter_cache`` ``AllowedIds`` (a prepared filter) and ``FilterCache`` (one index version's
  filtered-search state and plans, beside ``planner``)
- ``faiss_calls`` numpy-in/numpy-out faiss calls and ``tune_faiss_blas()`` (explicit, process-wide)
- ``generations`` immutable index generations, atomic CURRENT, prune, rollback
- ``prototypes``, ``ood``, ``metrics``, ``projection``  class prototypes, unknown scorers, evaluation maths, 2-D maps
- ``search``      the catalog side of search (filter -> ids, a crop's vector, hit metadata)
- ``filters``     the ``--where`` grammar compiled to parameterised SQL; ``quote()`` for code that writes filters

Every SQL statement of oceanid lives in this package (tests/test_layers.py checks it).
"""
