"""The Workspace's annotation-tool methods (:mod:`app.workspace.annotation_tool`: Label Studio's
accepted annotations kept as truth crops, and recalled for near-duplicates)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.workspace.methods import Parts

if TYPE_CHECKING:
    from collections.abc import Sequence


class AnnotationMethods(Parts):
    """What an annotation tool's accepted annotations change, and what they recall."""

    def annotation_store(
        self, note: Any, min_examples: int | None = None, model: str | None = None, on_recallable: Any = None
    ) -> Any:
        """Keep a ToolAnnotation as truth crops, searchable at once -> AnnotationChange."""
        from app.workspace.annotation_tool import store_annotation

        steps = self._tool_steps(model)
        return store_annotation(self.catalog, self.paths, self.crop, note, steps, min_examples, on_recallable)

    def annotation_forget(
        self,
        project: int,
        annotation: int,
        min_examples: int | None = None,
        model: str | None = None,
        on_recallable: Any = None,
    ) -> Any:
        """Undo :meth:`annotation_store` for one annotation -> AnnotationChange."""
        from app.workspace.annotation_tool import forget_annotation

        steps = self._tool_steps(model)
        return forget_annotation(self.catalog, self.paths, project, annotation, steps, min_examples, on_recallable)

    def _tool_steps(self, model: str | None) -> Any:
        """This workspace's steps for one model, as the annotation steps call them (``ToolSteps``)."""
        from app.workspace.annotation_tool import ToolSteps

        return ToolSteps(
            engine=lambda: self.engine(model),
            writer=self._writer,
            build=lambda: self.index_build(model, rebuild=False),
            add_species=lambda name, files: self.species_add(name, files, model=model),
            remove_species=lambda name: self.species_remove(name, model),
            refresh=self._engines.engines.clear,
        )

    def embed_images(self, images: Sequence[Any], model: str | None = None) -> Any:
        """Decoded images -> their (n, d) embeddings, batched (for identify ``vectors=`` and recall)."""
        from app.workspace.annotation_tool import embed_images

        return embed_images(self.engine(model), images)

    def annotation_recall(self, items: Any, model: str | None = None) -> list[tuple[str, float] | None]:
        """Per image (or vector), the label a person gave a near-duplicate of it, else None."""
        from app.workspace.annotation_tool import recall

        return recall(self.catalog, lambda: self.engine(model), items)

    def annotation_tag(self, model: str | None = None) -> str | None:
        """A digest of the tool crops recall finds now (None: none); changes when one is stored or removed."""
        from app.workspace.annotation_tool import recall_tag

        return recall_tag(self.catalog, self.engine_key(model)[0])
