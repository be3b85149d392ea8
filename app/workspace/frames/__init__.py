"""Whole frames: the class-agnostic detector and the cascade that identifies every organism it finds.

::

    detector.py   which detector (one rule: the catalog's current one, or one named by id or folder),
                  the one DetectorCache, detect, train, evaluate -> LoadedDetector / DetectionRun /
                  DetectorTraining / DetectorEvaluation; DEFAULT_MIN_SCORE, MIN_FRAME_SIDE
    cascade.py    frame -> boxes (detector or a COCO results file) -> cut -> identify -> FrameIdentification /
                  CascadeResult; the COCO file of a cascade; its organisms saved as predicted crops
    grading.py    the cascade on held-out frames with ground truth -> CascadeFigures / DetectionFigures
                  (``oceanid evaluate``'s whole-frame section)
    figures.py    CascadeFigures, DetectionFigures (plain dataclasses: EvaluationSummary holds them)
    drawing.py    boxes and labels drawn on a frame (``identify --draw``, the explorer)

Nothing heavy is imported here; the Workspace imports each module where it is used.
"""
