"""The class-agnostic organism detector (torchvision FCOS / RetinaNet on a timm FPN backbone).

- ``embedder.detection.model``: ``DetectorConfig``, ``build_detector``, ``save_detector``, ``load_detector``
- ``embedder.detection.training``: ``DetectorTrainConfig``, ``train_detector``, ``DetectorTrainResult``
- ``embedder.detection.predict``: ``detect_images`` -> ``FrameBoxes`` per frame

Boxes cross this package as numpy ``(n, 4) float32`` arrays of ``x, y, w, h`` pixels of the
upright frame; like the rest of ``embedder`` it imports only ``index.errors`` / ``index.imaging``.
"""
