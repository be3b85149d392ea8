"""The Workspace's species and taxa methods (:mod:`app.workspace.species`, ``taxa``, ``discover``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.workspace.methods import Parts

if TYPE_CHECKING:
    from collections.abc import Sequence

    from app.workspace.identify import ImageInput
    from app.workspace.species import SpeciesChange
    from app.workspace.taxa import TaxaImport, TreePlace
    from index.taxonomy import Lineage


class SpeciesAndTaxaMethods(Parts):
    """Species added and removed without retraining, discovered ones named, and the taxa tree."""

    def species_add(
        self,
        name: str,
        images: Sequence[ImageInput],
        genus: str | None = None,
        family: str | None = None,
        model: str | None = None,
        correct: bool = False,
    ) -> SpeciesChange:
        """Add a species from a few examples, without retraining, in both vector spaces; all or nothing."""
        from app.workspace.species import add_species_all_spaces

        return add_species_all_spaces(
            self._writer,
            self._engines,
            self.catalog,
            self.paths,
            self.crop,
            name,
            images,
            genus,
            family,
            model,
            correct,
        )

    def species_remove(self, name: str, model: str | None = None) -> SpeciesChange:
        """Remove a species added with :meth:`species_add` (from both vector spaces)."""
        from app.workspace.species import remove_species_all_spaces

        return remove_species_all_spaces(self._writer, self._engines, self.catalog, self.paths, name, model)

    def discovery(self, model: str | None = None) -> Any:
        """The discover steps (``app.workspace.discover.Discoverer``): cluster, list, show, name, export."""
        from app.workspace.discover import Discoverer

        return Discoverer(
            self.catalog,
            self.paths,
            lambda: self.engine(model),
            lambda: self.spaces(model),
            lambda name, files, genus=None, family=None: self.species_add(name, files, genus, family, model),
            self._tree,
        )

    def taxa_show(self, name: str) -> Lineage:
        """The lineage of one taxon of the catalog. Raises NotFound."""
        from index.catalog.taxa import lineage

        return lineage(self.catalog, name)

    def taxa_place(self, name: str, top: int = 5) -> TreePlace:
        """A taxon's lineage and its ``top`` nearest relatives among the concepts with crops."""
        from app.workspace.taxa import place_in_tree

        return place_in_tree(self.catalog, name, top)

    def taxa_import(self, path: Path) -> TaxaImport:
        """Fill or correct the lineages of ingested concepts from a lineage CSV (its names win)."""
        from app.workspace.taxa import import_lineages_as_writer

        return import_lineages_as_writer(self._writer, self._engines, self.catalog, path)
