"""The catalog (DuckDB): the source of truth, and every SQL statement that reads or writes it.

``catalog``     Catalog: short-lived connections, the schema, typed meta (current model, ...)
``schema``      the tables and views (DDL) and the migration of an older catalog
``models``      the models train registered (ModelRecord)
``embeddings``  vectors and prototypes; support classes added / removed in one transaction
``taxa``        concepts and their lineages
``detectors``   detector models listed in the catalog, frames for detector training
``frames``      whole frames with their truth boxes
``decisions``   the engine's stored decisions (scorer, thresholds, calibration) per model
``spaces``      the two-space decision (which space names, which decides unknown, the fusion)
``discoveries`` `oceanid discover` runs: clusters of crops answered unknown, their members, namings
``stats``       the survey (counts per species, split, source, depth)
``splits``      train / val / test / holdout assignment (groups never cut)
``lookup``      the catalog side of search: a filter's ids, a crop's vector, the hits' metadata
``filters``     the ``--where`` grammar compiled to parameterised SQL
``vocabulary``  the values a filter can name (species, sources, ...)
``arrow_io``    crops out as Arrow, vectors in from Parquet (the distributed embedder's side)
"""
