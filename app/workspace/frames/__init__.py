"""Whole frames: the class-agnostic detector and the cascade that identifies every organism it finds.

::

    detector.py   which detector (one rule: the catalog's current one, or one named by id or folder),
                  the one DetectorCache, detect, evaluate -> LoadedDetector / DetectionRun /
                  DetectorEvaluation; MIN_FRAME_SIDE
    detector_training.py   detect train: catalog frames -> models/<detector-id>/ -> DetectorTraining
    boxes.py      where a frame's boxes come from: the detector, or a COCO results file (BoxFinder)
    cascade.py    frame -> boxes -> cut -> identify -> FrameIdentification / CascadeResult; its COCO file
    predicted.py  a cascade's organisms saved as predicted crops (embedded, indexed)
    grading.py    the cascade on held-out frames with ground truth -> CascadeFigures / DetectionFigures
                  (``oceanid evaluate``'s whole-frame section)
    figures.py    CascadeFigures, DetectionFigures (plain dataclasses: EvaluationSummary holds them)
    drawing.py    boxes and labels drawn on a frame (``identify --draw``, the explorer)

Nothing heavy is imported here; the Workspace imports each module where it is used.
"""
