"""The vector floor: FAISS indexes and their generations (numpy in, numpy out; no catalog).

``vector_index``  VectorIndex: ids = catalog keys, exact filtered search through a selector
``faiss_calls``   numpy-in/numpy-out faiss calls and ``tune_faiss_blas()``
``planner``       which filtered-search path (selector, subset, brute force) a filter takes
``filter_cache``  AllowedIds (a prepared filter) and FilterCache (one index version's plans)
``shards``        ShardedIndex: several indexes by id hash, searched in parallel
``generations``   immutable index generations on disk, atomic CURRENT, verify, prune, rollback
"""
