"""oceanid's encoder library: pixels -> L2-normalised vectors.

Public API (import from the submodules; nothing heavy is imported here):

- ``embedder.backbones`` (a package, one module per family): ``create_backbone``,
  ``available_backbones``, ``register_backbone``
- ``embedder.model``: ``build_model``, ``save_model``, ``load_model``, ``config_hash``, ``ModelConfig``
- ``embedder.training``: ``train``, ``TrainConfig``, ``TrainResult``
- ``embedder.encoding``: ``encode_paths``, ``encode_images``, ``EncodeResult``
- ``embedder.device``: ``resolve_device``
- ``embedder.losses``: ``LOSSES``, ``build_loss``; ``embedder.validation``: ``prototype_metrics``

``embedder`` imports only the kernel of ``index`` (``index.errors``, ``index.imaging``), never ``app``.
"""
