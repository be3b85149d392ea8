"""What the index commands return: ``index build`` (:class:`BuildResult`, made by
:func:`app.workspace.pipeline.build_index`), ``models`` (:class:`ModelInfo`), ``index verify``
(:class:`VerifyResult`), ``index prune`` / ``rollback`` (:class:`GenerationChange`, made by
:mod:`app.workspace.indexes`). Light on purpose: the pipeline and the facade import it, and the index
itself (faiss) loads only where it is used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index.scoring.priors import ClassPriors
    from index.vectors.generations import Manifest


@dataclass(frozen=True)
class BuildResult:
    """What ``index build`` / ``rebuild`` did."""

    generation: str  # the live generation afterwards
    built: bool  # False: the live generation was up to date and nothing was written
    manifest: Manifest
    prototypes_refit: bool = False  # the trained prototypes changed and were rewritten
    pruned: tuple[str, ...] = ()  # old generations deleted after the build (the newest few are kept)
    disagreed: str | None = None  # how the live generation disagreed with the catalog (then rebuilt)
    priors: ClassPriors | None = None  # the class priors the stored decision holds afterwards

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "built": self.built,
            "prototypes_refit": self.prototypes_refit,
            "pruned": list(self.pruned),
            "disagreed": self.disagreed,
            "priors": self.priors.to_dict() if self.priors is not None else None,
            **self.manifest.to_dict(),
        }


@dataclass(frozen=True)
class ModelInfo:
    """One model of ``oceanid models``: what it is, whether commands use it, whether it is stale."""

    model_id: str
    backbone: str | None
    dim: int
    vectors: int  # crops embedded with it
    current: bool  # the model commands use without --model
    generation: str | None  # its live index generation
    stale: str | None = None  # why it no longer matches the catalog (re-split with --force); None: it does

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VerifyResult:
    """A generation checked against its manifest (files, sha256, count, model)."""

    generation: str
    ok: bool
    manifest: Manifest

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "ok": self.ok, **self.manifest.to_dict()}


@dataclass(frozen=True)
class GenerationChange:
    """What ``index prune`` / ``index rollback`` did."""

    model_id: str
    current: str | None  # the live generation afterwards
    removed: tuple[str, ...] = ()  # generations (and dead temp entries) deleted
    warning: str | None = None  # rollback: the generation made live is out of date with the stored vectors

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "current": self.current,
            "removed": list(self.removed),
            "warning": self.warning,
        }
