"""Sources: each turns its own format into :class:`index.records.ImageRecord` lists.

=================  ==========================================================
module             what it reads
=================  ==========================================================
``coco``           COCO detection JSON (+ FathomNet-like metadata fields);
                   frames sharing a video / sequence / dive id share a group
``folders``        one sub-folder of images per species (+ ``species.csv``)
``fathomnet``      the FathomNet API: images and boxes by concept, frames
                   downloaded, WoRMS ancestors; a dive tag groups frames
``downloads``      parallel, retried, atomic HTTP downloads for ``fathomnet``
``synthetic``      the built-in offline data set: ``generate_reef`` writes
                   a COCO folder, read back by ``coco``
``reef/``          the synthetic reef's drawing engine (see its map)
=================  ==========================================================

A source never touches the catalog; :mod:`index.ingest.ingest` stores what it read.
"""
