"""Turning vectors into answers: prototypes, unknown scorers, calibration (no catalog).

``prototypes``    class prototypes (means or k-means sub-centres) and cosine classification
``ood``           the unknown scorers' registry (make_scorer) and their thresholds (calibrate)
``ood_scorers``   the Scorer protocol and the cosine scorers: prototype, msp, knn
``mahalanobis``   the Mahalanobis scorers: mahalanobis, relative_mahalanobis
``ood_choice``    choosing the deciding scorer on held-out species
``calibration``   temperature scaling of prototype cosines
``projection``    2-D maps (PCA / UMAP) of vectors
``scorer_store``  the fitted scorers' statistics on disk, read at load
"""
