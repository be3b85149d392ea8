"""The kinds of FAISS index oceanid builds (flat, IVF-Flat, IVF-PQ, HNSW), how each is configured and
made, and where it runs (CPU or a GPU)."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import faiss

from index.errors import InvalidInput

log = logging.getLogger(__name__)

KINDS = ("flat", "ivf", "ivfpq", "hnsw")
DEVICES = ("auto", "cpu", "cuda")
PQ_BITS = 8  # bits per IVF-PQ sub-quantizer code (256 centroids each)


@dataclass(frozen=True)
class IndexConfig:
    """How to build an index. Defaults follow bench/search_speed.py."""

    kind: str = "auto"  # 'auto' | 'flat' | 'ivf' | 'ivfpq' | 'hnsw'
    auto_threshold: int = 200_000  # 'auto' builds flat below this many vectors
    large_kind: str = "ivf"  # what 'auto' builds at or above the threshold
    nlist: int | None = None  # IVF lists; None -> sqrt(n) (1M: 1000; bench/rebuild_1m.py)
    nprobe: int = 32  # IVF lists visited per query
    train_size: int = 50_000  # IVF k-means trains on at most this many vectors (~50 per list at 1M)
    pq_bytes: int | None = None  # IVF-PQ code bytes per vector (8-bit sub-quantizers); None -> dim / 4
    hnsw_m: int = 32  # HNSW neighbours per node
    ef_construction: int = 64  # HNSW build beam width
    ef_search: int = 64  # HNSW search beam width
    seed: int = 0  # IVF training subsample and k-means seed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        return cls(**data)


def gpu_available() -> bool:
    """True when the installed faiss has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def resolve_device(device: str) -> str:
    """Turn 'auto' | 'cpu' | 'cuda' into 'cpu' or 'cuda'.

    Raises:
        InvalidInput: unknown name, or 'cuda' without GPU faiss or a visible GPU.
    """
    if device not in DEVICES:
        raise InvalidInput(f"unknown device {device!r}; valid: {', '.join(DEVICES)}")
    if device == "cpu":
        chosen = "cpu"
    elif device == "cuda":
        if not gpu_available():
            raise InvalidInput(
                "device 'cuda' requested but faiss has no GPU support or sees no GPU "
                "(install faiss-gpu-cu12, or use --device cpu)"
            )
        chosen = "cuda"
    else:
        chosen = "cuda" if gpu_available() else "cpu"
    log.info("faiss device: %s (asked for %s)", chosen, device)
    return chosen


def new_index(kind: str, dim: int, n: int, cfg: IndexConfig) -> faiss.Index:
    """An empty faiss index of ``kind`` for ``n`` vectors of ``dim`` (IVF lists: ``cfg.nlist`` or sqrt(n))."""
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = cfg.ef_construction
        hnsw.hnsw.efSearch = cfg.ef_search
        return faiss.IndexIDMap(hnsw)
    nlist = cfg.nlist or max(1, int(round(math.sqrt(max(n, 1)))))
    nlist = min(nlist, max(1, n))
    if kind == "ivfpq":
        ivf = faiss.IndexIVFPQ(
            faiss.IndexFlatIP(dim), dim, nlist, pq_subquantizers(dim, cfg.pq_bytes), PQ_BITS, faiss.METRIC_INNER_PRODUCT
        )
    else:
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.nprobe = min(cfg.nprobe, nlist)
    ivf.cp.seed = cfg.seed
    ivf.cp.min_points_per_centroid = 5  # train_size caps the sample; no faiss warning below 39/list
    if kind == "ivfpq":
        ivf.pq.cp.min_points_per_centroid = 5  # 256 codes per sub-quantizer train on >= 256 vectors
        ivf.do_polysemous_training = False  # its code reordering is for Hamming filtering, unused here (slow)
    return ivf


def pq_subquantizers(dim: int, pq_bytes: int | None) -> int:
    """IVF-PQ sub-quantizers (= code bytes per vector at 8 bits): the largest divisor of ``dim``
    not above ``pq_bytes`` (default dim / 4, i.e. 16x smaller codes than float32)."""
    want = max(1, min(dim, pq_bytes if pq_bytes is not None else max(1, dim // 4)))
    return max(m for m in range(1, want + 1) if dim % m == 0)


def kind_of(index: faiss.Index) -> str:
    """flat | ivf | ivfpq | hnsw of a faiss index oceanid built. Raises InvalidInput for another type."""
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    if isinstance(index, faiss.IndexIVFPQ):
        return "ivfpq"
    if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSW):
            return "hnsw"
        if isinstance(inner, faiss.IndexFlat):
            return "flat"
    raise InvalidInput(f"unsupported faiss index type {type(index).__name__}")
