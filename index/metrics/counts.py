"""Counts per class corrected for the classifier's known confusion: adjusted classify-and-count.

Classify-and-count (count each crop as the class it is answered as) is biased whenever the
classifier confuses classes unevenly: a class that draws answers from its neighbours is
over-counted. Adjusted classify-and-count (ACC; Forman 2008, "Quantifying counts and costs via
classification"; the multi-class form of Saerens et al. 2002's confusion inversion) uses the
rates ``R[t, o] = P(answer o | true class t)`` measured on validation crops: the answers' shares
``q`` are ``R.T @ p`` for the true classes' shares ``p``, so ``p`` is recovered by least squares
under ``p >= 0, sum(p) = 1`` and the counts are ``n * p``.

The constrained least squares is solved here in numpy (accelerated projected gradient onto the
probability simplex; Duchi et al. 2008's projection), because the query install (``count`` runs
there beside ``identify``) has no scipy; ``tests/index/metrics/test_counts.py`` checks it against
``scipy.optimize.nnls``. The interval is a percentile bootstrap that redraws both the validation
crops behind ``R`` (per true class) and the sample's answers.

Raises :class:`index.errors.InvalidInput` for a confusion that cannot adjust anything (wrong shape,
negative or non-finite counts, no validation crop at all, answers outside its outcomes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.errors import InvalidInput

UNKNOWN = "unknown"  # the outcome (and, when held-out crops measured it, the true class) of crops judged unknown
BOOTSTRAP = 200  # bootstrap draws behind an interval
LEVEL = 0.9  # the interval's coverage


@dataclass(frozen=True)
class CountConfusion:
    """Validation crops by true class (rows) and answer (columns), the decision counts are adjusted with.

    ``classes``: the true classes (rows), the known species and, when held-out crops measured it,
    ``unknown``. ``outcomes``: the answers (columns), the known species and ``unknown``. ``crops``:
    (len(classes), len(outcomes)) int counts. ``assumed``: classes without a validation crop, whose
    row is taken as always answered right (named in every count that uses it)."""

    classes: tuple[str, ...]
    outcomes: tuple[str, ...]
    crops: tuple[tuple[int, ...], ...]
    assumed: tuple[str, ...] = ()
    source: str = "validation"

    def matrix(self) -> np.ndarray:
        """(T, O) int64 counts."""
        return np.asarray(self.crops, dtype=np.int64).reshape(len(self.classes), len(self.outcomes))

    def rates(self) -> np.ndarray:
        """(T, O) float64, each row P(answer | true class)."""
        return row_rates(self.matrix())

    def to_dict(self) -> dict:
        return {
            "classes": list(self.classes),
            "outcomes": list(self.outcomes),
            "crops": [list(r) for r in self.crops],
            "assumed": list(self.assumed),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict) -> CountConfusion:
        return cls(
            tuple(d["classes"]),
            tuple(d["outcomes"]),
            tuple(tuple(int(x) for x in r) for r in d["crops"]),
            tuple(d.get("assumed", ())),
            str(d.get("source", "validation")),
        )


def confusion_of(
    true: Sequence[str], answers: Sequence[str], classes: Sequence[str], outcomes: Sequence[str]
) -> CountConfusion:
    """The confusion of labelled crops: ``true[i]`` (a class) answered ``answers[i]`` (an outcome).
    A class without a crop gets the identity row (listed in ``assumed``): it is counted as answered.
    Raises InvalidInput (a label or answer outside ``classes`` / ``outcomes``, a class not an outcome)."""
    classes, outcomes = tuple(classes), tuple(outcomes)
    column = {o: j for j, o in enumerate(outcomes)}
    row = {c: i for i, c in enumerate(classes)}
    if missing := [c for c in classes if c not in column]:
        raise InvalidInput(f"count confusion: classes {', '.join(missing)} are not answers")
    if len(true) != len(answers):
        raise InvalidInput(f"count confusion: {len(true)} labels for {len(answers)} answers")
    crops = np.zeros((len(classes), len(outcomes)), dtype=np.int64)
    for t, a in zip(true, answers, strict=True):
        if t not in row or a not in column:
            raise InvalidInput(f"count confusion: {t!r} answered {a!r} is outside its classes / answers")
        crops[row[t], column[a]] += 1
    empty = crops.sum(axis=1) == 0
    for i in np.flatnonzero(empty):
        crops[i, column[classes[i]]] = 1
    return CountConfusion(
        classes,
        outcomes,
        tuple(tuple(int(x) for x in r) for r in crops),
        tuple(classes[i] for i in np.flatnonzero(empty)),
    )


def row_rates(crops: np.ndarray) -> np.ndarray:
    """(T, O) counts -> (T, O) row shares. Raises InvalidInput for negative / non-finite counts or an empty row."""
    crops = np.asarray(crops, dtype=np.float64)
    if crops.ndim != 2 or crops.shape[0] == 0 or crops.shape[0] > crops.shape[1]:
        raise InvalidInput(
            f"a count confusion needs a (classes, answers) matrix with no more classes than answers, not {crops.shape}"
        )
    if not np.isfinite(crops).all() or (crops < 0).any():
        raise InvalidInput("a count confusion holds crop counts: no negative or non-finite entries")
    totals = crops.sum(axis=1, keepdims=True)
    if (totals == 0).any():
        raise InvalidInput(
            f"{int((totals == 0).sum())} class(es) of the count confusion have no validation crop: "
            "their answer rates are unknown"
        )
    return crops / totals


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of (k,) ``v`` onto {p >= 0, sum p = 1} (Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1.0
    k = np.arange(1, len(v) + 1)
    rho = np.flatnonzero(u - cumulative / k > 0)[-1]
    return np.maximum(v - cumulative[rho] / (rho + 1), 0.0)


def solve_shares(rates: np.ndarray, observed: np.ndarray, iterations: int = 5000, tol: float = 1e-12) -> np.ndarray:
    """argmin_p ||rates.T @ p - observed||^2 over the simplex: (T, O) rates, (O,) answer shares -> (T,) true shares.

    FISTA (Beck & Teboulle 2009) with the simplex projection, step 1 / L with L = 2 sigma_max(rates)^2."""
    rates, observed = np.asarray(rates, dtype=np.float64), np.asarray(observed, dtype=np.float64)
    gram, target = rates @ rates.T, rates @ observed  # the gradient is 2 (gram @ p - target)
    step = 1.0 / np.linalg.eigvalsh(gram)[-1]  # 1 / L with L = 2 lambda_max(gram), times the gradient's 2
    p = project_simplex(np.linalg.lstsq(rates.T, observed, rcond=None)[0])  # a good start: the unconstrained answer
    y, t = p.copy(), 1.0
    for _ in range(iterations):
        nxt = project_simplex(y - step * (gram @ y - target))
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = nxt + (t - 1.0) / t_next * (nxt - p)
        if np.abs(nxt - p).max() < tol:
            p = nxt
            break
        p, t = nxt, t_next
    return p


@dataclass(frozen=True)
class Adjusted:
    """Raw and adjusted counts of one sample: per true class, its estimate and interval."""

    classes: tuple[str, ...]  # the confusion's true classes
    outcomes: tuple[str, ...]
    raw: np.ndarray  # (O,) answers per outcome
    adjusted: np.ndarray  # (T,) estimated organisms per true class (sums to raw.sum())
    low: np.ndarray  # (T,) interval bounds (``level`` percentile bootstrap)
    high: np.ndarray
    level: float
    notes: tuple[str, ...] = ()


def adjusted_counts(
    answers: np.ndarray,
    confusion: CountConfusion,
    rng: np.random.Generator | None = None,
    draws: int = BOOTSTRAP,
    level: float = LEVEL,
) -> Adjusted:
    """ACC for a sample whose answers per outcome are ``answers`` ((O,) int counts, in
    ``confusion.outcomes`` order): the true classes' counts, with a percentile bootstrap interval
    over the validation crops (each class's row redrawn from its crops) and the sample (its answers
    redrawn). ``draws`` = 0: no interval (low = high = the estimate). Raises InvalidInput."""
    rng = rng if rng is not None else np.random.default_rng(0)
    answers = np.asarray(answers, dtype=np.int64)
    crops = confusion.matrix()
    rates = row_rates(crops)
    if answers.shape != (len(confusion.outcomes),) or (answers < 0).any():
        raise InvalidInput(f"answers must be {len(confusion.outcomes)} non-negative counts, one per outcome")
    n = int(answers.sum())
    notes = list(_notes(confusion, rates))
    if n == 0:
        zero = np.zeros(len(confusion.classes))
        return Adjusted(confusion.classes, confusion.outcomes, answers, zero, zero, zero, level, tuple(notes))
    estimate = n * solve_shares(rates, answers / n)
    if draws <= 0:
        return Adjusted(
            confusion.classes, confusion.outcomes, answers, estimate, estimate, estimate, level, tuple(notes)
        )
    boots = np.empty((draws, len(confusion.classes)))
    totals = crops.sum(axis=1)
    for b in range(draws):
        drawn = np.stack([rng.multinomial(totals[i], rates[i]) for i in range(len(totals))])
        sample = rng.multinomial(n, answers / n)
        boots[b] = n * solve_shares(row_rates(drawn), sample / n, iterations=1000, tol=1e-9)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(boots, [tail, 100.0 - tail], axis=0)
    return Adjusted(
        confusion.classes,
        confusion.outcomes,
        answers,
        estimate,
        np.minimum(low, estimate),
        np.maximum(high, estimate),
        level,
        tuple(notes),
    )


def _notes(confusion: CountConfusion, rates: np.ndarray) -> list[str]:
    notes = []
    if confusion.assumed:
        notes.append(
            f"no validation crop of {', '.join(confusion.assumed)}: its crops are taken as always answered right "
            "(how it is confused is not measured)"
        )
    if np.linalg.matrix_rank(rates) < len(confusion.classes):
        notes.append(
            "the confusion rates of some classes cannot be told apart (rank-deficient): "
            "how their organisms are shared between them is not determined"
        )
    return notes


def relative_errors(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(k,) |estimate - truth| / truth (truth > 0)."""
    truth = np.asarray(truth, dtype=np.float64)
    return np.abs(np.asarray(estimate, dtype=np.float64) - truth) / truth
