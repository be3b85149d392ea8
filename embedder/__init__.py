"""oceanid's encoder library: pixels -> L2-normalised vectors.

Public API (import from the submodules; nothing heavy is imported here):

- ``embedder.backbones``: ``create_backbone``, ``available_backbones``, ``register_backbone``
- ``embedder.model``: ``build_model``, ``save_model``, ``load_model``, ``config_hash``, ``ModelConfig``
- ``embedder.training``: ``train``, ``TrainConfig``, ``TrainResult``
- ``embedder.encoding``: ``encode_paths``, ``encode_images``, ``EncodeResult``
- ``embedder.device``: ``resolve_device``
- ``embedder.losses``: ``LOSSES``, ``build_loss``; ``embedder.evaluation``: ``prototype_metrics``

``embedder`` never imports ``index`` (except ``index.errors``) or ``app``.
"""
