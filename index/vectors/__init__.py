"""The vector floor: FAISS indexes and their generations (numpy in, numpy out; no catalog).

``vector_index``  VectorIndex: ids = catalog keys, exact filtered search through a selector
``index_kinds``   IndexConfig, the kinds (flat, ivf, ivfpq, hnsw) and how each is made; CPU or GPU
``checks``        what the index accepts: L2-normalised float32 vectors, unique int64 ids (no faiss)
``faiss_calls``   numpy-in/numpy-out faiss calls and ``tune_faiss_blas()``
``planner``       which filtered-search path (selector, subset, brute force) a filter takes
``filter_cache``  AllowedIds (a prepared filter) and FilterCache (one index version's plans)
``shards``        ShardedIndex: several indexes by id hash, searched in parallel
``generations``   immutable index generations on disk, atomic CURRENT, publish, verify, load
``generation_history`` prune the older generations, roll back to the one before the live one
"""
