"""bench/two_space_rules.py's rules beyond cosine to the prototype, on synthetic Gaussians whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bench.two_space_rules import (
    Draw,
    calibrate_distribution,
    evaluate_fold,
    fold_rules,
    mahalanobis_sq,
    new_rules_for,
    vim_fit,
    vim_residual,
    vim_score,
)


def anisotropic(rng, d: int, big: int, ratio: float = 100.0) -> np.ndarray:
    """A (d, d) factor L: noise ``eps @ L.T`` has variance 1 along ``big`` random directions, 1/ratio elsewhere."""
    rot, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return rot * np.sqrt(np.r_[np.ones(big), np.full(d - big, 1 / ratio)])


def fold_of(blocks: list[tuple[str, str, np.ndarray]]):
    """Draw inputs from ``(pool, species, (n, d) vectors)`` blocks: unit vectors (as every space's are),
    labels, index pools. The blocks sit far out along one axis, so normalising barely bends them."""
    x = np.concatenate([b[2] for b in blocks])
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    y = np.concatenate([[b[1]] * len(b[2]) for b in blocks])
    pool = np.concatenate([[b[0]] * len(b[2]) for b in blocks])
    idx = {p: np.flatnonzero(pool == p) for p in ("train", "val", "test", "added", "unknown")}
    return x, y, idx


def draw_for(x, y, idx, added, shots: int, space: str = "s") -> Draw:
    """A Draw over one space ``space``, each added species' first ``shots`` crops its support."""
    support, queries = {}, {}
    for species in added:
        mine = idx["added"][y[idx["added"]] == species]
        support[species], queries[species] = mine[:shots], mine[shots:]
    return Draw({space: x}, y, idx, support, queries, list(added))


def shared_fold(seed: int = 0, d: int = 10):
    """Five trained species and one added one, all with one covariance, large along 3 random directions
    across the (small) mean differences: cosine confuses them, the covariance separates them."""
    rng = np.random.default_rng(seed)
    factor = anisotropic(rng, d, 3)
    means = np.eye(d)[:6] + 10 * np.eye(d)[9]
    blocks = []
    for c, mu in enumerate(means):
        name = f"sp{c}"
        sample = lambda n, mu=mu: mu + rng.normal(size=(n, d)) @ factor.T  # noqa: E731
        if c < 5:
            blocks += [("train", name, sample(150)), ("val", name, sample(40)), ("test", name, sample(60))]
        else:
            blocks += [("added", name, sample(205))]
    blocks += [("unknown", "far", 10 * np.eye(d)[9] + 2 * np.eye(d)[8] + rng.normal(size=(50, d)) @ factor.T)]
    return fold_of(blocks)


def ceiling(draw: Draw, naming: str) -> float:
    names = draw.names(naming)["q"]
    return float(np.mean(names == draw.y[draw.q]))


def test_mahalanobis_names_anisotropic_classes_that_cosine_confuses():
    x, y, idx = shared_fold()
    draw = draw_for(x, y, idx, ["sp5"], shots=5)
    cos, shared, shrunk = ceiling(draw, "s"), ceiling(draw, "s#maha-shared"), ceiling(draw, "s#maha-shrunk")
    # the added species from 5 crops: its mean is rough, but the trained species' covariance is its covariance
    # (maha-shrunk keeps 5/15 of five crops' rank-4 covariance, the rest is the shared one)
    assert shared >= 0.9 and shrunk >= 0.9, (shared, shrunk)
    assert cos <= 0.75, cos
    test_cos = np.mean(draw.names("s")["test"] == y[idx["test"]])
    test_maha = np.mean(draw.names("s#maha-shared")["test"] == y[idx["test"]])
    assert test_maha >= 0.95 and test_maha >= test_cos + 0.15, (test_maha, test_cos)


def test_per_species_covariance_beats_the_shared_one_when_species_differ_in_shape():
    rng = np.random.default_rng(1)
    d = 6
    blocks = []
    far = 30 * np.eye(d)[5]
    # two species with about the same mean spread along different axes; a third away
    for name, mu, std in (
        ("a", far, np.r_[3.0, 0.1, 0.1, 0.1, 0.1, 0.1]),
        ("b", far + 0.2, np.r_[0.1, 3.0, 0.1, 0.1, 0.1, 0.1]),
        ("c", far + 5.0, np.full(d, 0.3)),
    ):
        blocks += [(pool, name, mu + rng.normal(size=(n, d)) * std) for pool, n in (("train", 300), ("test", 200))]
    blocks += [("val", "c", np.full((5, d), 5.0) + far), ("added", "e", far - 5 + rng.normal(size=(10, d)))]
    x, y, idx = fold_of(blocks)
    draw = draw_for(x, y, idx, ["e"], shots=5)
    yt = y[idx["test"]]
    shared = np.mean(draw.names("s#maha-shared")["test"] == yt)
    for method in ("maha-cnaps", "maha-shrunk"):
        own = np.mean(draw.names(f"s#{method}")["test"] == yt)
        assert own >= 0.99 and own >= shared + 0.03, (method, own, shared)


def test_mahalanobis_sq_matches_the_definition():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    z, mean = rng.normal(size=(7, 5)), rng.normal(size=5)
    want = np.einsum("ni,ij,nj->n", z - mean, np.linalg.inv(cov), z - mean)
    np.testing.assert_allclose(mahalanobis_sq(z, mean, cov), want, rtol=1e-8)


def dc_setting(seed: int = 3, d: int = 8):
    """Two trained species elongated along different axes, and two new species each a shifted copy of
    one of them (same covariance): a new species' shape is its trained neighbour's."""
    rng = np.random.default_rng(seed)
    shapes = [np.r_[3.0, np.full(d - 1, 0.15)], np.r_[0.15, 3.0, np.full(d - 2, 0.15)]]
    base_means = np.stack([np.r_[0.0, 0.0, 6.0, np.zeros(d - 3)], np.r_[0.0, 0.0, -6.0, np.zeros(d - 3)]])
    shift = np.r_[0.0, 0.0, 0.0, 1.2, np.zeros(d - 4)]
    base = [m + rng.normal(size=(400, d)) * s for m, s in zip(base_means, shapes, strict=True)]
    new_means = [base_means[0] + shift, base_means[0] - shift]  # both shaped like trained species 0
    new = [m + rng.normal(size=(300, d)) * shapes[0] for m in new_means]
    return base, new, shapes


def test_distribution_calibration_borrows_the_nearest_trained_species_shape():
    base, new, shapes = dc_setting()
    means = np.stack([b.mean(0) for b in base])
    covs = np.stack([np.cov(b, rowvar=False) for b in base])
    support = new[0][:3]
    mean, cov = calibrate_distribution(support, means, covs, k=1)
    # the covariance is the nearest trained species' (plus the spread of the 3 calibrated means), elongated
    # along axis 0 as the new species is; the farther species' shape (axis 1) would be the wrong one
    assert cov[0, 0] > 5 * cov[1, 1], np.diag(cov)
    np.testing.assert_allclose(mean, (means[0] + support.mean(0)) / 2, atol=1e-9)


def test_distribution_calibration_names_two_shifted_new_species_that_their_few_crops_cannot():
    """DC with the true base statistics recovers a shifted class (the paper's setting: the new species
    against each other). Two shots each: the support mean is noisy along the long axis, Euclidean naming
    confuses the two; the borrowed covariance says the long axis does not tell them apart."""
    base, new, shapes = dc_setting()
    means = np.stack([b.mean(0) for b in base])
    covs = np.stack([np.cov(b, rowvar=False) for b in base])
    rng = np.random.default_rng(4)
    euclid, calibrated = [], []
    for _ in range(20):
        picks = [rng.choice(len(n), 2, replace=False) for n in new]
        queries = np.concatenate([np.delete(n, p, axis=0) for n, p in zip(new, picks, strict=True)])
        truth = np.repeat([0, 1], [len(n) - 2 for n in new])
        centres = np.stack([n[p].mean(0) for n, p in zip(new, picks, strict=True)])
        euclid.append(np.mean(((queries[:, None] - centres[None]) ** 2).sum(-1).argmin(1) == truth))
        gauss = [calibrate_distribution(n[p], means, covs, k=1, alpha=0.01) for n, p in zip(new, picks, strict=True)]
        d2 = np.stack([mahalanobis_sq(queries, m, c) for m, c in gauss], 1)
        calibrated.append(np.mean(d2.argmin(1) == truth))
    assert np.mean(calibrated) >= 0.9 and np.mean(calibrated) >= np.mean(euclid) + 0.1, (
        np.mean(calibrated),
        np.mean(euclid),
    )


def test_dc_naming_rules_run_in_the_draw_and_differ_from_the_plain_ones():
    x, y, idx = shared_fold()
    x = np.abs(x)  # non-negative: the Gaussian rules take Tukey's transform first
    draw = draw_for(x, y, idx, ["sp5"], shots=3)
    assert draw.gaussian("s").z.shape[1] == x.shape[1]
    for method in ("dc-cosine", "dc-maha"):
        names = draw.names(f"s#{method}")
        assert set(names) == {"q", "test", "unknown", "val"}
        assert set(np.unique(names["q"])) <= set(np.unique(y[idx["train"]])) | {"sp5"}
    # the calibrated added prototype is another row than the support mean: some answer differs
    assert not all(np.array_equal(draw.names("s")[k], draw.names("s#dc-cosine")[k]) for k in draw.pools)


def test_vim_residual_finds_crops_off_the_training_subspace():
    """In-distribution crops lie near a 4-d subspace; the 'unknown' ones have the same in-subspace part
    plus a small part outside it: only the residual tells them apart (their norm and cosine do not)."""
    rng = np.random.default_rng(5)
    d = 16
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    inside, outside = basis[:, :4], basis[:, 4:]
    coords = lambda n: rng.normal(size=(n, 4)) * [3.0, 2.0, 1.5, 1.0]  # noqa: E731
    train = coords(500) @ inside.T + 0.01 * rng.normal(size=(500, d))
    known = coords(200) @ inside.T + 0.01 * rng.normal(size=(200, d))
    off = rng.normal(size=(200, d - 4))
    unknown = coords(200) @ inside.T + 0.4 * (off / np.linalg.norm(off, axis=1, keepdims=True)) @ outside.T
    origin, sub = vim_fit(train)
    assert sub.shape[0] == 4 or sub.shape[0] == 3  # 90% of the variance: the 3-4 leading directions
    origin, sub = vim_fit(train, variance=0.999)
    res = vim_residual(np.r_[known, unknown], origin, sub)
    truth = np.r_[np.ones(200), np.zeros(200)]
    assert roc_auc_score(truth, -res) > 0.99
    inside_norm = np.linalg.norm((np.r_[known, unknown] - origin) @ sub.T, axis=1)
    assert roc_auc_score(truth, -inside_norm) < 0.7  # what a wrong (in-subspace) residual would score


def test_vim_score_is_energy_minus_the_virtual_logit():
    from scipy.special import logsumexp

    rng = np.random.default_rng(6)
    logits, residual = rng.normal(size=(9, 4)) * 5, rng.random(9)
    np.testing.assert_allclose(vim_score(residual, logits, 2.5), logsumexp(logits, axis=1) - 2.5 * residual)


def test_vim_and_mahalanobis_unknown_rules_order_known_above_unknown():
    from bench.two_space_rules import decide

    x, y, idx = shared_fold()
    draw = draw_for(x, y, idx, ["sp5"], shots=5)
    for rule in (("vim-residual", "s"), ("vim-proto", "s"), ("maha", "s#maha-shared")):
        _, ok, score = decide(draw, "s", rule)
        auroc = roc_auc_score(
            np.r_[np.ones(len(idx["test"])), np.zeros(len(idx["unknown"]))], np.r_[score["test"], score["unknown"]]
        )
        assert np.mean(ok["val"]) >= 0.95, rule
        if rule[0] == "maha":  # the unknowns sit 2 off one axis the species barely vary along
            assert auroc > 0.95, (rule, auroc)


def synthetic_split(seed: int = 7):
    """A small fold for evaluate_fold: 4 trained species, 2 added, tracks of 5 crops, 2 spaces."""
    rng = np.random.default_rng(seed)
    d, species, tracks = 12, 6, 12
    centres = rng.normal(size=(species + 1, d)) * 1.5
    y, g, xs = [], [], []
    for c in range(species + 1):
        for t in range(tracks):
            offset = rng.normal(size=d) * 0.4
            for _ in range(5):
                xs.append(centres[c] + offset + rng.normal(size=d) * 0.5)
                y.append(f"sp{c}" if c < species else "rare")
                g.append(f"{c}-{t}")
    x, y, g = np.array(xs), np.array(y), np.array(g)
    track = np.array([int(s.split("-")[1]) for s in g])
    known, added = [f"sp{c}" for c in range(4)], ("sp4", "sp5")
    kn = np.isin(y, known)
    idx = {
        "train": np.flatnonzero(kn & (track < 8)),
        "val": np.flatnonzero(kn & (track >= 8) & (track < 10)),
        "test": np.flatnonzero(kn & (track >= 10)),
        "added": np.flatnonzero(np.isin(y, added)),
        "unknown": np.flatnonzero(y == "rare"),
    }
    unit = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    spaces = {"tuned": unit(x), "gen": unit(np.abs(x @ rng.normal(size=(d, 16))))}
    return (None, y, g, added, known, idx), spaces


def head_of(split, spaces):
    """Head features (8-d unit) and a classifier over them: each trained species' mean head vector, bias 0."""
    _, y, _, _, known, idx = split
    x = spaces["tuned"] @ np.random.default_rng(9).normal(size=(spaces["tuned"].shape[1], 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    tr = idx["train"]
    weight = 5 * np.stack([x[tr][y[tr] == c].mean(0) for c in known])
    return x, (weight, np.zeros(len(known)))


@pytest.fixture(scope="module")
def small_fold():
    split, spaces = synthetic_split()
    head = head_of(split, spaces)
    return split, spaces, evaluate_fold(split, spaces, ["gen"], shots=[1, 3], draws=2, weights=(0.5,), head=head)


def test_vim_rows_with_the_head_only_where_a_classifier_is_cached():
    split, spaces = synthetic_split()
    without = evaluate_fold(split, spaces, ["gen"], shots=[3], draws=1, weights=(0.5,), only=set(), grid={})
    assert without["table"] == {}
    rows = {r for r, (_, rule) in fold_rules(["gen"], (0.5,)).items() if "tuned head" in rule}
    assert len(rows) == 3
    skipped = evaluate_fold(split, spaces, ["gen"], shots=[3], draws=1, weights=(0.5,), only=rows, grid={})
    assert skipped["table"] == {}
    kept = evaluate_fold(
        split, spaces, ["gen"], shots=[3], draws=1, weights=(0.5,), only=rows, grid={}, head=head_of(split, spaces)
    )
    assert set(kept["table"]) == rows


def test_vim_with_the_head_takes_its_origin_from_the_classifier():
    from bench.two_space_rules import vim_head_fit

    rng = np.random.default_rng(10)
    weight, bias = rng.normal(size=(3, 6)), rng.normal(size=3)
    x = rng.normal(size=(300, 6)) @ np.diag([3, 2, 1, 0.05, 0.05, 0.05])
    origin, basis, alpha = vim_head_fit(x, weight, bias, variance=0.99)
    np.testing.assert_allclose(weight @ origin + bias, 0.0, atol=1e-9)  # the logits vanish at the origin
    assert basis.shape[0] <= 4 and alpha > 0  # the 3 spread directions and the offset of the data from the origin
    # the residual grows along the directions the training crops do not spread in, about that origin
    off = origin + np.eye(6)[5]
    on = origin + np.eye(6)[0]
    assert vim_residual(off[None], origin, basis)[0] > 10 * vim_residual(on[None], origin, basis)[0]


def test_every_new_rule_has_every_column_on_a_fold(small_fold):
    _, _, result = small_fold
    rows = fold_rules(["gen"], (0.5,))
    assert set(result["table"]) == set(rows)
    new = {row for row, _, _ in new_rules_for(["gen"], {"gen": 0.5})}
    assert len(new) == 5 + 2 + 5 + 2 + 5 + 11
    for row, value in result["table"].items():
        for shot in ("1shot", "3shot"):
            figures = value[shot]
            assert all(0.0 <= figures[c] <= 1.0 for c in figures), (row, figures)
        assert 0.0 <= value["recall_at_1"] <= 1.0


def test_new_rows_are_paired_with_the_stored_ones(small_fold):
    """Rows computed later (evaluate --folds N on a fold stored before the rule existed) see the same
    support draws: a subset computed alone equals the same rows of the full computation."""
    split, spaces, full = small_fold
    some = {
        "tuned (today)",
        "tuned CL2N · dc-maha",
        "fused gen · maha-cnaps · product rule 'tuned' @w=0.5",
        "fused gen · unknown by ViM, prototype logits, fused @w=0.5",
        "fused gen · two-stage ViM (head) -> tuned @w=0.5",
    }
    part = evaluate_fold(
        split, spaces, ["gen"], shots=[1, 3], draws=2, weights=(0.5,), only=some, grid={}, head=head_of(split, spaces)
    )
    assert set(part["table"]) == some
    for row in some:
        assert part["table"][row] == full["table"][row]


@pytest.mark.parametrize("shape", [(40, 12), (12, 40)])
def test_pca_basis_is_the_svd_of_the_centred_rows(shape):
    from bench.two_space_rules import pca_basis

    x = np.random.default_rng(8).normal(size=shape) * np.linspace(3, 0.1, shape[1])
    mean, comps, var = pca_basis(x, 5)
    _, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs((comps * vt[:5]).sum(1)), 1.0, atol=1e-9)  # the same directions
    np.testing.assert_allclose(var, s[:5] ** 2 / (shape[0] - 1), rtol=1e-9)
    np.testing.assert_allclose(mean, x.mean(0))


def test_folds_assemble_into_tables_with_paired_differences(small_fold):
    from bench.two_space_rules import assemble, markdown, paired_lines

    split, spaces, first = small_fold
    other = evaluate_fold(split, spaces, ["gen"], shots=[1, 3], draws=1, weights=(0.5,), head=head_of(split, spaces))
    # the table weights are (0.3, 0.5, 0.7) in assemble: give it the one weight these folds have
    import bench.two_space_rules as rules

    saved = rules.TABLE_WEIGHTS
    rules.TABLE_WEIGHTS = (0.5,)
    try:
        r = assemble("synthetic", {0: first, 1: other})
    finally:
        rules.TABLE_WEIGHTS = saved
    text = markdown(r)
    assert "fused gen · maha-shrunk · product rule 'tuned'" in text and "tuned CL2N · dc-maha" in text
    base = "fused gen · two-stage tuned -> tuned (product rule 'tuned')"
    rows = list(r["folds"]["0"]["table"])
    lines = paired_lines(r, rows, "3shot", base)
    assert len(lines) == 4 + len(rows) - 1
    same = next(line for line in lines if line.startswith("| fused gen · maha-shrunk · product rule"))
    f0, f1 = (r["folds"][k]["table"] for k in ("0", "1"))
    want = np.mean(
        [
            f["fused gen · maha-shrunk · product rule 'tuned'"]["3shot"]["ceiling"] - f[base]["3shot"]["ceiling"]
            for f in (f0, f1)
        ]
    )
    assert f"{want:+.3f}" in same
