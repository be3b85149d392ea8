"""Evaluation maths over arrays (scikit-learn, numpy): no catalog, no files.

``classification``  top-k, F1, AUROC / FPR@95, ECE, retrieval recall, few-shot figures
``ranks``           answers graded up the taxonomy (accuracy per rank, taxonomic distance)
``boxes``           detection metrics (pycocotools mAP, IoU matching of boxes to truth)
"""
