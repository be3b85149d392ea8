"""The synthetic reef's drawing engine: made-up species drawn, posed and placed in water.

The public entry point is :func:`index.sources.synthetic.generate_reef`, which
plans frames and writes COCO JSON; this package only draws.

=================  ==========================================================
module             what it holds
=================  ==========================================================
``catalogue``      the catalogue of made-up species (body plan, pattern,
                   morphs, depth range): ``CATALOGUE``, ``Species``
``species``        the held-out choice and the made-up lineages
                   (``select_species``, ``ReefSpecies``, ``lineage``)
``paint``          painting primitives on RGBA sprites (tubes, circles,
                   patterns, shading, colour mixing)
``swimmers``       drawers for swimming body plans (fish, eel, shrimp, jelly,
                   octopus) -> ``SWIMMERS``
``benthos``        drawers for bottom-living body plans (sea star, urchin,
                   coral, sponge, ...) -> ``BENTHOS``
``sprite``         one organism ready to paste: drawn, posed, scaled, tinted
                   by the water (``organism_sprite``, ``opaque_box``)
``scene``          one frame: water, sea floor, organisms, marine snow, blur
                   (``make_water``, ``render_frame``, ``place_sprite``)
=================  ==========================================================

Imports run one way: swimmers and benthos use paint and catalogue; sprite uses
them; scene uses sprite; nothing here imports the source modules.
"""
