"""Turning vectors into answers: prototypes, unknown scorers, calibration (no catalog).

``prototypes``    class prototypes (means or k-means sub-centres) and cosine classification
``ood``           the unknown scorers (max cosine, kNN, Mahalanobis, ...) and their thresholds
``ood_choice``    choosing the deciding scorer on held-out species
``calibration``   temperature scaling of prototype cosines
``projection``    2-D maps (PCA / UMAP) of vectors
``scorer_store``  the fitted scorers' statistics on disk, read at load
"""
