"""De novo features (METHOD §7, paper 3.5 and Fig. 5C): PCA of the samples, nearest-neighbour check.

Each sample is encoded as a length-L vector, G/C → +1, A/T → −1. Since the importance of a
feature V is δ = 1/s² − 1/σ² ≈ 1/s² (METHOD §5), the lowest-variance principal components of
one input's samples are its most important linear features. The paper checks them with a
10-nearest-neighbour classifier whose distance from a test element t to an exemplar (the mean
encoded sample of one interpreted input) is measured along that exemplar's lowest-variance
components, each coordinate divided by the component's standard deviation; its control uses
random orthonormal directions instead.

Pure functions on numpy arrays, plus one npz writer/reader pair (``pca.npz``).
"""
from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from kipoi_maxent._validation import check_codes, check_number
from kipoi_maxent.fileio import atomic_path
from kipoi_maxent.sequence import GC_CODES

#: Bound on the (test rows × exemplars × components) block of :func:`knn_classify` (~32 MB).
_CHUNK_ELEMENTS = 1 << 22


class SamplePCA(NamedTuple):
    """PCA of one input's ±1-encoded samples (positions unknown in x0 left out).

    Attributes
    ----------
    mean : np.ndarray, shape (L,), float64
        Mean encoded sample: the input's nearest-neighbour exemplar (0 at unknown positions).
    components : np.ndarray, shape (k, L), float64
        Unit principal axes, lowest variance first; 0 at unknown positions. Each axis's sign is
        fixed so that its largest-magnitude entry is positive (eigenvectors have no sign).
    variances : np.ndarray, shape (k,), float64
        Sample variance (ddof 1) along each component, ascending.
    spectrum : np.ndarray, shape (L,), float64
        All ``L_known`` variances, ascending, then NaN padding up to L (so inputs with different
        numbers of unknown bases stack into one array).
    control_sd : np.ndarray, shape (m,), float64, or None
        Sample standard deviation (ddof 1) along each of the random control directions (the
        paper's control), or None when no control was given.
    n_samples : int
        Number of pooled samples (sets the resolution of the variances; see :func:`knn_accuracy`).
    """

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    spectrum: np.ndarray
    control_sd: np.ndarray | None
    n_samples: int


class KnnAccuracy(NamedTuple):
    """Fractions of test elements classified correctly, with their uncertainty.

    Attributes
    ----------
    components : float
        With each exemplar's lowest-variance principal components.
    control : float or None
        With the random orthonormal control directions (None when no control was given).
    n_test : int
        Test elements classified.
    components_interval, control_interval : (float, float) or None
        95 % Wilson score intervals of the two accuracies (:func:`accuracy_interval`).
    paired_p : float or None
        Exact two-sided McNemar p of "components and control are equally accurate" on the same
        test elements (:func:`paired_p_value`); None without a control.
    """

    components: float
    control: float | None
    n_test: int
    components_interval: tuple[float, float]
    control_interval: tuple[float, float] | None
    paired_p: float | None


def accuracy_interval(correct: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the fraction of True in ``correct`` (shape (T,), bool, T >= 1).

    Elements are treated as independent trials: true of a test set of distinct sequences.
    """
    from scipy.stats import binomtest

    correct = np.asarray(correct, dtype=bool)
    if correct.size == 0:
        raise ValueError("accuracy_interval needs at least one test element")
    interval = binomtest(int(correct.sum()), int(correct.size)).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def paired_p_value(first_correct: np.ndarray, second_correct: np.ndarray) -> float:
    """Exact two-sided McNemar p of two classifiers scored on the same test elements.

    Only the elements exactly one classifier gets right carry information; under "equally
    accurate" each of them is a fair coin (binomial test). 1.0 when there are none.

    Parameters
    ----------
    first_correct, second_correct : np.ndarray, shape (T,), bool
    """
    first_correct = np.asarray(first_correct, dtype=bool)
    second_correct = np.asarray(second_correct, dtype=bool)
    if first_correct.shape != second_correct.shape:
        raise ValueError(f"paired_p_value needs two results on the same elements, got shapes "
                         f"{first_correct.shape} and {second_correct.shape}")
    from scipy.stats import binomtest

    only_first = int(np.sum(first_correct & ~second_correct))
    discordant = only_first + int(np.sum(~first_correct & second_correct))
    return 1.0 if discordant == 0 else float(binomtest(only_first, discordant).pvalue)


def pm_encode(samples: np.ndarray) -> np.ndarray:
    """±1 encoding of the paper's PCA: G, C → +1; A, T → −1; unknown (-1) → 0.

    Parameters
    ----------
    samples : np.ndarray, shape (..., L), int
        Codes 0..3 (A, C, G, T) or -1.

    Returns
    -------
    np.ndarray, shape (..., L), float64
    """
    codes = np.asarray(samples)
    check_codes(codes.reshape(-1, codes.shape[-1]) if codes.ndim > 1 else codes, "samples")
    return np.where(codes < 0, 0.0, np.where(np.isin(codes, GC_CODES), 1.0, -1.0))


def random_orthonormal(length: int, k: int, seed: int) -> np.ndarray:
    """``k`` random orthonormal directions in ``R^length`` (paper Methods 2.3.4).

    QR decomposition of a ``length × k`` standard normal matrix, each column's sign matched to
    R's diagonal so the set is uniformly (Haar) distributed.

    Parameters
    ----------
    length : int
        L.
    k : int
        Number of directions, ``1 <= k <= L``.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    np.ndarray, shape (k, L), float64
        Orthonormal rows.
    """
    length = check_number(length, "length", integer=True, minimum=1)
    k = check_number(k, "k", integer=True, minimum=1, maximum=length,
                     hint="there are at most L orthonormal directions in L dimensions")
    gaussian = np.random.default_rng(check_number(seed, "seed", integer=True, minimum=0)).standard_normal((length, k))
    q, r = np.linalg.qr(gaussian)
    return (q * np.where(np.diag(r) < 0, -1.0, 1.0)).T


def sample_pca(
    samples: np.ndarray, reference: np.ndarray, n_components: int = 5, control: np.ndarray | None = None
) -> SamplePCA:
    """PCA of one input's ±1-encoded samples, pooled over chains (``numpy.linalg.eigh``).

    Positions unknown in x0 (code -1) never change, so they would appear as spurious
    zero-variance "features": they are left out of the covariance and the components are 0
    there.

    Parameters
    ----------
    samples : np.ndarray, shape (chains, draws, L), int8
        Any leading shape; all samples are pooled. There must be more samples than positions
        known in x0, else the lowest variances are the exact zeros of a rank-deficient
        covariance, not features.
    reference : np.ndarray, shape (L,), int8
        x0.
    n_components : int, default 5
        Number of lowest-variance components kept (the paper's 5), ``<= L_known``.
    control : np.ndarray, shape (m, L), float, optional
        Random orthonormal directions (:func:`random_orthonormal`) for the paper's control;
        the same set for every input of a run.

    Returns
    -------
    SamplePCA
    """
    if np.ndim(reference) != 1:
        raise ValueError(f"reference must be one sequence of shape (L,), got shape {np.shape(reference)}")
    reference = check_codes(reference, "reference")[0]
    length = len(reference)
    encoded = pm_encode(samples)
    if encoded.ndim < 2 or encoded.shape[-1] != length:
        raise ValueError(f"samples must have shape (..., {length}) like the reference, got {encoded.shape}")
    encoded = encoded.reshape(-1, length)
    known = reference >= 0
    n_known, n_samples = int(known.sum()), len(encoded)
    if n_known == 0:
        raise ValueError("the reference has no known base (all N): nothing to analyse")
    n_components = check_number(n_components, "n_components", integer=True, minimum=1, maximum=n_known,
                                hint="at most the number of known positions")
    if n_samples <= n_known:
        raise ValueError(
            f"PCA needs more samples than variable positions: got {n_samples} samples for "
            f"{n_known} positions; sample more (raise --chains or --steps, or lower --thin)"
        )

    mean = encoded.mean(axis=0)
    centred = encoded - mean
    known_centred = centred[:, known]
    variances, axes = np.linalg.eigh(known_centred.T @ known_centred / (n_samples - 1))
    variances = np.clip(variances, 0.0, None)  # rounding can push zero eigenvalues below 0
    axes = axes[:, :n_components].T
    axes *= np.where(axes[np.arange(n_components), np.abs(axes).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
    components = np.zeros((n_components, length))
    components[:, known] = axes
    spectrum = np.full(length, np.nan)
    spectrum[:n_known] = variances

    control_sd = None
    if control is not None:
        control = _check_directions(control, length, "control")
        control_sd = (centred @ control.T).std(axis=0, ddof=1)
    return SamplePCA(mean, components, variances[:n_components].copy(), spectrum, control_sd, n_samples)


def save_pca(path, names: Sequence[str], pcas: Sequence[SamplePCA], control: np.ndarray | None) -> Path:
    """Write the PCAs of a run to one npz file (atomically: temporary name, then ``os.replace``).

    Arrays: ``names`` (E,) str, ``mean`` (E, L), ``components`` (E, k, L), ``variances``
    (E, k), ``spectrum`` (E, L), ``n_samples`` (E,) int64 and, with a control, ``control``
    (m, L) and ``control_sd`` (E, m).

    Parameters
    ----------
    path : str or Path
    names : sequence of str, length E
        One name per input.
    pcas : sequence of SamplePCA, length E
        All with the same L and k (and, with a control, its ``control_sd``).
    control : np.ndarray, shape (m, L), or None
        The random directions the ``control_sd`` were measured along.

    Returns
    -------
    Path
    """
    names, pcas = list(names), list(pcas)
    if not pcas or len(names) != len(pcas):
        raise ValueError(f"need one name per PCA and at least one PCA, got {len(names)} names, {len(pcas)} PCAs")
    shapes = {pca.components.shape for pca in pcas}
    if len(shapes) != 1:
        raise ValueError(f"all PCAs must have one (k, L) shape to be stacked, got {sorted(shapes)}")
    arrays = {
        "names": np.array(names, dtype=str),
        "mean": np.stack([pca.mean for pca in pcas]),
        "components": np.stack([pca.components for pca in pcas]),
        "variances": np.stack([pca.variances for pca in pcas]),
        "spectrum": np.stack([pca.spectrum for pca in pcas]),
        "n_samples": np.array([pca.n_samples for pca in pcas], dtype=np.int64),
    }
    if control is not None:
        control = _check_directions(control, pcas[0].components.shape[1], "control")
        if any(pca.control_sd is None or pca.control_sd.shape != (len(control),) for pca in pcas):
            raise ValueError(f"with a control of {len(control)} directions every PCA needs control_sd of that length; "
                             "pass the same control to sample_pca")
        arrays["control"] = control
        arrays["control_sd"] = np.stack([pca.control_sd for pca in pcas])
    path = Path(path)
    with atomic_path(path, "wb") as stream:
        np.savez(stream, **arrays)
    return path


def load_pca(path) -> tuple[list[str], list[SamplePCA], np.ndarray | None]:
    """Read a file written by :func:`save_pca`.

    Returns
    -------
    names : list of str
    pcas : list of SamplePCA
    control : np.ndarray, shape (m, L), or None
    """
    with np.load(path, allow_pickle=False) as data:
        control = data.get("control")
        control_sd = data["control_sd"] if control is not None else [None] * len(data["names"])
        pcas = [
            SamplePCA(mean, components, variances, spectrum, sd, int(n))
            for mean, components, variances, spectrum, sd, n in zip(
                data["mean"], data["components"], data["variances"], data["spectrum"], control_sd, data["n_samples"]
            )
        ]
        return [str(name) for name in data["names"]], pcas, control


def knn_classify(
    exemplar_means: np.ndarray,
    exemplar_components: np.ndarray,
    exemplar_sd: np.ndarray,
    exemplar_labels: np.ndarray,
    test: np.ndarray,
    n_neighbors: int = 10,
) -> np.ndarray:
    """k-nearest-neighbour classes with each exemplar's own scaled projection distance.

    Distance from test element t to exemplar e (METHOD §7):
    ``‖((t − mean_e) · components_eᵀ) / sd_e‖``. A test element takes the majority label of its
    ``n_neighbors`` nearest exemplars; among labels tied for the majority, the one of the
    nearest neighbour carrying a tied label wins (with two classes: the nearest neighbour's).
    Work is chunked over test elements so memory stays near 32 MB.

    Parameters
    ----------
    exemplar_means : np.ndarray, shape (E, L)
    exemplar_components : np.ndarray, shape (E, k, L)
        Directions of each exemplar (its lowest-variance PCs, or the random control).
    exemplar_sd : np.ndarray, shape (E, k)
        Standard deviation along each direction, > 0.
    exemplar_labels : np.ndarray, shape (E,)
        Class of each exemplar (any dtype).
    test : np.ndarray, shape (T, L), float
        ±1-encoded test elements (:func:`pm_encode`).
    n_neighbors : int, default 10
        ``1 <= n_neighbors <= E``.

    Returns
    -------
    np.ndarray, shape (T,)
        Predicted labels, of ``exemplar_labels``' dtype.
    """
    means = _float_array(exemplar_means, "exemplar_means", ndim=2)
    n_exemplars, length = means.shape
    components = _float_array(exemplar_components, "exemplar_components", ndim=3)
    sd = _float_array(exemplar_sd, "exemplar_sd", ndim=2)
    labels = np.asarray(exemplar_labels)
    test = _float_array(test, "test", ndim=2)
    k = components.shape[1]
    expected = {"exemplar_components": ((n_exemplars, k, length), components.shape),
                "exemplar_sd": ((n_exemplars, k), sd.shape), "exemplar_labels": ((n_exemplars,), labels.shape),
                "test": ((len(test), length), test.shape)}
    for name, (want, got) in expected.items():
        if want != got:
            raise ValueError(f"{name} must have shape {want} to match exemplar_means {means.shape}, got {got}")
    if not (sd > 0).all():
        raise ValueError("exemplar_sd must be > 0: a zero standard deviation makes the distance infinite; "
                         "floor it at the samples' resolution (exemplar_axes does: 2 / sqrt(n_samples))")
    n_neighbors = check_number(n_neighbors, "n_neighbors", integer=True, minimum=1, maximum=n_exemplars,
                               hint="at most the number of exemplars")

    classes, class_of_exemplar = np.unique(labels, return_inverse=True)
    directions = components.reshape(n_exemplars * k, length)
    offsets = np.einsum("el,ekl->ek", means, components).ravel()
    inverse_sd = 1.0 / sd.ravel()
    predicted = np.empty(len(test), dtype=np.intp)
    chunk = max(1, _CHUNK_ELEMENTS // (n_exemplars * k))
    for start in range(0, len(test), chunk):
        block = test[start:start + chunk]
        scaled = (block @ directions.T - offsets) * inverse_sd
        squared = (scaled ** 2).reshape(len(block), n_exemplars, k).sum(axis=2)
        nearest = np.argpartition(squared, n_neighbors - 1, axis=1)[:, :n_neighbors]
        rows = np.arange(len(block))[:, None]
        nearest = nearest[rows, np.argsort(squared[rows, nearest], axis=1, kind="stable")]
        neighbour_class = class_of_exemplar[nearest]
        votes = np.zeros((len(block), len(classes)), dtype=np.intp)
        np.add.at(votes, (np.broadcast_to(rows, neighbour_class.shape), neighbour_class), 1)
        tied = votes == votes.max(axis=1, keepdims=True)
        first_tied = np.argmax(tied[rows, neighbour_class], axis=1)  # neighbours are sorted nearest first
        predicted[start:start + chunk] = neighbour_class[rows[:, 0], first_tied]
    return classes[predicted]


def knn_accuracy(
    pcas: Sequence[SamplePCA],
    exemplar_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    control: np.ndarray | None = None,
    n_neighbors: int = 10,
) -> KnnAccuracy:
    """Accuracy of :func:`knn_classify` with the exemplars' PCs and with the random control.

    Exemplar ``e`` is ``pcas[e].mean`` with directions ``pcas[e].components`` (SDs
    ``sqrt(variances)``); in the control, directions ``control`` (the same for all) with SDs
    ``pcas[e].control_sd``; SDs floored as :func:`exemplar_axes` says.

    Parameters
    ----------
    pcas : sequence of SamplePCA, length E
        From :func:`sample_pca` (or :func:`load_pca`); one (k, L) shape.
    exemplar_labels : np.ndarray, shape (E,)
    test : np.ndarray, shape (T, L)
        ±1-encoded test elements.
    test_labels : np.ndarray, shape (T,)
    control : np.ndarray, shape (m, L), optional
        The directions the PCAs' ``control_sd`` were measured along; None: no control accuracy.
    n_neighbors : int, default 10

    Returns
    -------
    KnnAccuracy
        Fractions of test elements classified correctly, their 95 % intervals and the paired
        test of the two (the control's fields None without a control).
    """
    pcas = list(pcas)
    test_labels = np.asarray(test_labels)
    if test_labels.shape != (len(test),):
        raise ValueError(f"test_labels must have shape ({len(test)},) like test's rows, got {test_labels.shape}")
    by_pcs = knn_classify(*exemplar_axes(pcas), exemplar_labels, test, n_neighbors) == test_labels
    if control is None:
        return KnnAccuracy(float(by_pcs.mean()), None, len(test), accuracy_interval(by_pcs), None, None)
    by_control = knn_classify(*exemplar_axes(pcas, control), exemplar_labels, test, n_neighbors) == test_labels
    return KnnAccuracy(float(by_pcs.mean()), float(by_control.mean()), len(test), accuracy_interval(by_pcs),
                       accuracy_interval(by_control), paired_p_value(by_pcs, by_control))


class ExemplarAxes(NamedTuple):
    """What :func:`knn_classify` measures distances with: each exemplar's mean ``(E, L)``, its
    directions ``(E, k, L)`` and their floored standard deviations ``(E, k)``."""

    means: np.ndarray
    directions: np.ndarray
    sd: np.ndarray


def exemplar_axes(pcas: Sequence[SamplePCA], control: np.ndarray | None = None) -> ExemplarAxes:
    """The k-NN axes of exemplars: their lowest-variance components (SDs ``sqrt(variances)``),
    or, with ``control``, those random directions for all (SDs ``control_sd``).

    A direction along which the samples never moved has SD 0; every SD is floored at
    ``2 / sqrt(n_samples)``, the SD of a ±1 coordinate that changed in exactly one of the
    ``n_samples`` samples (the smallest the samples resolve).

    Parameters
    ----------
    pcas : sequence of SamplePCA, length E
    control : np.ndarray, shape (m, L), optional
        The directions the PCAs' ``control_sd`` were measured along.
    """
    pcas = list(pcas)
    if not pcas:
        raise ValueError("need at least one exemplar PCA")
    means = np.stack([pca.mean for pca in pcas])
    floor = np.array([2.0 / np.sqrt(pca.n_samples) for pca in pcas])[:, None]
    if control is None:
        return ExemplarAxes(means, np.stack([pca.components for pca in pcas]),
                            np.maximum(np.sqrt(np.stack([pca.variances for pca in pcas])), floor))
    control = _check_directions(control, means.shape[1], "control")
    if any(pca.control_sd is None or pca.control_sd.shape != (len(control),) for pca in pcas):
        raise ValueError("every PCA needs control_sd measured along this control; pass it to sample_pca")
    return ExemplarAxes(means, np.broadcast_to(control, (len(pcas),) + control.shape),
                        np.maximum(np.stack([pca.control_sd for pca in pcas]), floor))


def _check_directions(directions, length: int, name: str) -> np.ndarray:
    """Validate an (m, L) array of finite directions."""
    directions = _float_array(directions, name, ndim=2)
    if directions.shape[1] != length or len(directions) == 0:
        raise ValueError(f"{name} must have shape (m >= 1, {length}), got {directions.shape}")
    return directions


def _float_array(values, name: str, ndim: int) -> np.ndarray:
    """A finite float64 array of ``ndim`` dimensions, or a clear error."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return array
