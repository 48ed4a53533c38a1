"""Importance of global sequence features (METHOD §5): δ = 1/s² − 1/σ² and its dummy control.

A feature is ``V(x) = Σ_i c_i · I(x_i ∈ S_i)``, stored as an ``(L, 4)`` coefficient matrix ``C``
with ``C[i, b] = c_i`` if base ``b`` (:data:`~kipoi_maxent.sequence.ALPHABET` order) is in
``S_i``, else 0, so ``V(x) = Σ_i C[i, x_i]``: many features over many samples are one matrix
product of the one-hot samples. Unknown bases (code -1) contribute 0; they never change
during sampling, so background moments leave them out.

``σ²`` is V's variance under the background q (positions independent with marginal
:func:`~kipoi_maxent.sequence.background_probabilities`), ``s²`` its variance over the MCMC
samples of p. A large δ means the network's penultimate activations pin V down. The paper's
control (3.5): the percentile of δ among 300 "dummy" features over the same positions, each
position counting one of the six base pairs {GC, GA, GT, CA, CT, AT} drawn at random.

Pure functions on numpy arrays.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats

from kipoi_maxent._validation import check_codes, check_number
from kipoi_maxent.sequence import ALPHABET, GC_CODES, background_probabilities, one_hot

#: Base pairs a dummy feature counts at each position (METHOD §5), as codes in ALPHABET order.
DUMMY_PAIRS = tuple(tuple(ALPHABET.index(base) for base in pair) for pair in ("GC", "GA", "GT", "CA", "CT", "AT"))
#: Normality rule (see :func:`normality`): largest |skewness| and |excess kurtosis| called normal.
MAX_ABS_SKEWNESS = 1.0
MAX_ABS_EXCESS_KURTOSIS = 2.0
#: Keys of one feature declaration in the run config.
DECLARATION_KEYS = ("name", "bases", "window", "weights")
#: Samples one-hot encoded at a time by :func:`feature_importance`.
_SAMPLE_BLOCK = 4096
_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")


@dataclass(frozen=True, eq=False)
class Feature:
    """A global feature ``V(x) = Σ_i coefficients[i, x_i]``.

    Attributes
    ----------
    name : str
        Used as the prefix of the feature's summary.tsv columns.
    coefficients : np.ndarray, shape (L, 4), float64
        ``coefficients[i, b] = c_i`` if base ``b`` (A, C, G, T) is in ``S_i``, else 0.
        Stored as a read-only copy.
    """

    name: str
    coefficients: np.ndarray

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a feature name must be a non-empty string, got {self.name!r}")
        coefficients = np.array(self.coefficients, dtype=np.float64)
        if coefficients.ndim != 2 or coefficients.shape[1] != len(ALPHABET) or len(coefficients) == 0:
            raise ValueError(f"feature {self.name!r}: coefficients must have shape (L, 4), got {coefficients.shape}")
        if not np.isfinite(coefficients).all():
            raise ValueError(f"feature {self.name!r}: coefficients must be finite")
        if not np.ptp(coefficients, axis=1).any():
            raise ValueError(f"feature {self.name!r} is empty: its value does not depend on any base; "
                             "give it a non-empty base set that is not all of ACGT, and a non-zero weight")
        coefficients.flags.writeable = False
        object.__setattr__(self, "coefficients", coefficients)

    @property
    def length(self) -> int:
        """Input length L."""
        return len(self.coefficients)

    @property
    def window(self) -> tuple[int, int]:
        """``[start, end)``: the span of positions whose base changes V (its dummies' window)."""
        depends = np.flatnonzero(np.ptp(self.coefficients, axis=1))
        return int(depends[0]), int(depends[-1]) + 1


class Moments(NamedTuple):
    """Mean and variance of features under the background q, each ``(F,)`` float64."""

    mean: np.ndarray
    variance: np.ndarray


class Normality(NamedTuple):
    """Shape of each feature's sample distribution, each ``(F,)``; NaN / False when V is constant."""

    skewness: np.ndarray
    excess_kurtosis: np.ndarray
    normal: np.ndarray


class FeatureImportance(NamedTuple):
    """δ of one feature for one input.

    Attributes
    ----------
    name : str
    delta : float
        ``1/s² − 1/σ²``; ``inf`` if V never changed in the samples (s² = 0); NaN if V cannot
        vary at all (σ² = 0: every position it depends on is unknown in x0).
    percentile : float
        Percentile (0–100) of ``delta`` among its dummies' deltas, ties counting half
        (``scipy.stats.percentileofscore(kind="mean")``), so a frozen feature among frozen
        dummies gets 50, not 100; NaN without dummies or when ``delta`` is NaN.
    important : bool
        ``percentile > percentile_threshold`` (False when the percentile is NaN).
    sample_mean : float
        Mean of V over the samples.
    input_value : float
        V(x0).
    skewness, excess_kurtosis : float
        Of V over the samples (NaN when s² = 0).
    normal : bool
        Whether δ's Gaussian reading holds (:func:`normality`).
    """

    name: str
    delta: float
    percentile: float
    important: bool
    sample_mean: float
    input_value: float
    skewness: float
    excess_kurtosis: float
    normal: bool


# ----------------------------------------------------------------------------- declarations


def builtin_features(length: int) -> dict[str, Feature]:
    """Features every run offers: ``gc``, the G+C count over the whole input of ``length`` bp."""
    length = check_number(length, "input length", integer=True, minimum=1)
    coefficients = np.zeros((length, len(ALPHABET)))
    coefficients[:, list(GC_CODES)] = 1.0
    return {"gc": Feature("gc", coefficients)}


def parse_features(declarations, length: int) -> dict[str, Feature]:
    """Features declared in a run config (already parsed from YAML).

    Parameters
    ----------
    declarations : list of mapping, or None
        Each ``{name, bases, window, weights}``:

        - ``name`` (required): letters, digits, ``_ . -``, starting with a letter; may be
          ``gc`` to override the built-in feature.
        - ``bases`` (required): the set S of every position as a string of ``ACGT`` letters
          (case-insensitive), e.g. ``"GC"``; or a list with one string per window position.
        - ``window`` (default: the whole input): ``[start, end]``, 0-based, end exclusive,
          ``0 <= start < end <= length``; or ``{center: w}``, the central ``w`` positions
          (``start = (length − w) // 2``: an odd leftover base goes to the right flank).
        - ``weights`` (default 1): the weight c of every position, or a list with one number
          per window position.
    length : int
        Input length L.

    Returns
    -------
    dict of str to Feature, in declaration order.
    """
    length = check_number(length, "input length", integer=True, minimum=1)
    if declarations is None:
        return {}
    if not isinstance(declarations, (list, tuple)):
        raise ValueError(f"features must be a list of mappings {{name, bases, window, weights}}, "
                         f"got {type(declarations).__name__}")
    features: dict[str, Feature] = {}
    for number, declaration in enumerate(declarations, start=1):
        feature = _parse_declaration(declaration, number, length)
        if feature.name in features:
            raise ValueError(f"feature {feature.name!r} is declared twice (declarations "
                             f"{list(features).index(feature.name) + 1} and {number}); rename one")
        features[feature.name] = feature
    return features


def select_features(names: Sequence[str], declared: Mapping[str, Feature], length: int) -> list[Feature]:
    """The features ``names``, in that order, from the built-ins overridden by ``declared``.

    Parameters
    ----------
    names : sequence of str
    declared : mapping of str to Feature
        From :func:`parse_features`; a declared ``gc`` replaces the built-in one.
    length : int
        Input length L.
    """
    available = {**builtin_features(length), **declared}
    selected = []
    for name in names:
        if name not in available:
            raise ValueError(f"unknown feature {name!r}; available: {', '.join(available)} "
                             "(declare others under features: in the run config)")
        if any(feature.name == name for feature in selected):
            raise ValueError(f"feature {name!r} is requested twice")
        selected.append(available[name])
    for feature in selected:
        if feature.length != length:
            raise ValueError(f"feature {feature.name!r} is for {feature.length}-bp inputs, the model takes {length}")
    return selected


def _parse_declaration(declaration, number: int, length: int) -> Feature:
    """One declaration to a Feature; errors say which declaration and what to fix."""
    if not isinstance(declaration, Mapping):
        raise ValueError(f"feature declaration {number} must be a mapping with keys "
                         f"{', '.join(DECLARATION_KEYS)}, got {declaration!r}")
    unknown = sorted(set(declaration) - set(DECLARATION_KEYS))
    if unknown:
        raise ValueError(f"feature declaration {number} has unknown key(s) {', '.join(map(str, unknown))}; "
                         f"allowed: {', '.join(DECLARATION_KEYS)}")
    name = declaration.get("name")
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(f"feature declaration {number} needs a name of letters, digits, _ . - starting "
                         f"with a letter (it prefixes summary.tsv columns), got {name!r}")
    label = f"feature {name!r}"
    start, end = _parse_window(declaration.get("window"), label, length)
    width = end - start
    base_sets = _per_position(declaration.get("bases"), "bases", label, width)
    weights = _per_position(declaration.get("weights", 1.0), "weights", label, width)

    coefficients = np.zeros((length, len(ALPHABET)))
    for offset, (bases, weight) in enumerate(zip(base_sets, weights)):
        codes = _parse_bases(bases, label)
        coefficients[start + offset, codes] = check_number(weight, f"{label}: weight at position {start + offset}")
    try:
        return Feature(name, coefficients)
    except ValueError as error:
        raise ValueError(f"{error} (declaration {number})") from None


def _parse_window(window, label: str, length: int) -> tuple[int, int]:
    """``None`` / ``[start, end]`` / ``{center: w}`` to ``(start, end)`` within ``0..length``."""
    if window is None:
        return 0, length
    if isinstance(window, Mapping):
        if set(window) != {"center"}:
            raise ValueError(f"{label}: a window mapping must be {{center: width}}, got {dict(window)!r}")
        width = check_number(window["center"], f"{label}: window center width", integer=True, minimum=1,
                             maximum=length, hint=f"the input has {length} bp")
        start = (length - width) // 2
        return start, start + width
    if isinstance(window, (list, tuple)) and len(window) == 2:
        start = check_number(window[0], f"{label}: window start", integer=True, minimum=0, maximum=length - 1,
                             hint=f"windows are 0-based [start, end) within the {length}-bp input")
        end = check_number(window[1], f"{label}: window end", integer=True, minimum=start + 1, maximum=length,
                           hint=f"windows are 0-based [start, end) within the {length}-bp input")
        return start, end
    raise ValueError(f"{label}: window must be [start, end] or {{center: width}}, got {window!r}")


def _per_position(value, key: str, label: str, width: int) -> list:
    """One value per window position: a list of exactly ``width`` items, or a scalar repeated."""
    if value is None:
        raise ValueError(f"{label} needs {key}: (e.g. bases: GC)")
    if isinstance(value, (list, tuple)):
        if len(value) != width:
            raise ValueError(f"{label}: {key} lists {len(value)} values but the window has {width} positions; "
                             f"give one per position or a single value")
        return list(value)
    return [value] * width


def _parse_bases(bases, label: str) -> list[int]:
    """A string of ACGT letters (any case, possibly empty) to sorted distinct codes."""
    if not isinstance(bases, str):
        raise ValueError(f"{label}: bases must be a string of ACGT letters such as 'GC', got {bases!r}")
    unknown = sorted({letter for letter in bases.upper() if letter not in ALPHABET})
    if unknown:
        raise ValueError(f"{label}: bases {bases!r} has unknown letter(s) {', '.join(unknown)}; use A, C, G, T")
    return sorted({ALPHABET.index(letter) for letter in bases.upper()})


# ----------------------------------------------------------------------------- dummies


def dummy_features(n: int, window: tuple[int, int], length: int, seed: int = 0) -> list[Feature]:
    """The paper's control features (METHOD §5), named ``dummy_0 … dummy_{n-1}``.

    Each counts, at every position of ``window``, whether the base is in a pair drawn
    uniformly from {GC, GA, GT, CA, CT, AT} (weight 1).

    Parameters
    ----------
    n : int
        Number of dummies (the paper: 300).
    window : tuple of int
        ``(start, end)``, 0-based, end exclusive.
    length : int
        Input length L.
    seed : int, default 0
        Seed of ``np.random.default_rng``: the same arguments always give the same dummies.

    Returns
    -------
    list of Feature
    """
    n = check_number(n, "number of dummy features", integer=True, minimum=1)
    length = check_number(length, "input length", integer=True, minimum=1)
    start, end = _parse_window(list(window), "dummy features", length)
    pair_index = np.random.default_rng(seed).integers(0, len(DUMMY_PAIRS), size=(n, end - start))
    coefficients = np.zeros((n, length, len(ALPHABET)))
    positions = np.arange(start, end)
    for codes in np.array(DUMMY_PAIRS).T:  # first base of each pair, then second
        coefficients[np.arange(n)[:, None], positions, codes[pair_index]] = 1.0
    return [Feature(f"dummy_{i}", coefficients[i]) for i in range(n)]


def dummy_sets(features: Sequence[Feature], n: int = 300, seed: int = 0) -> dict[tuple[int, int], list[Feature]]:
    """Dummies for every distinct window of ``features``: the ``dummies`` of :func:`feature_importance`.

    Build them once per run so every input's percentiles are against the same control.
    Every window uses the same ``seed``.
    """
    return {window: dummy_features(n, window, feature.length, seed)
            for window, feature in {feature.window: feature for feature in features}.items()}


# ----------------------------------------------------------------------------- statistics


def background_moments(features: Sequence[Feature], mu: float, known: np.ndarray | None = None) -> Moments:
    """Exact mean and variance of each feature under the background q.

    Under q the positions are independent with marginal ``q = background_probabilities(mu)``:
    ``mean = Σ_i Σ_b C[i,b] q_b`` and ``variance = Σ_i (Σ_b C[i,b]² q_b − (Σ_b C[i,b] q_b)²)``,
    which for indicator features is METHOD's ``σ² = Σ_i c_i² π_i (1 − π_i)``.

    Parameters
    ----------
    features : sequence of Feature
        F features of one length L.
    mu : float
        GC chemical potential.
    known : np.ndarray, shape (L,), bool, optional
        False where x0's base is unknown: those positions never change and count 0 in V, so
        they are left out. Default: every position known.

    Returns
    -------
    Moments
        ``mean`` and ``variance``, each ``(F,)`` float64.
    """
    coefficients = _stack(features)  # (L, 4, F)
    if known is not None:
        known = np.asarray(known)
        if known.shape != (coefficients.shape[0],) or known.dtype != bool:
            raise ValueError(f"known must be a boolean array of shape ({coefficients.shape[0]},), "
                             f"got {known.dtype} {known.shape}")
        coefficients = coefficients[known]
    q = background_probabilities(check_number(mu, "mu"))
    site_mean = np.einsum("lbf,b->lf", coefficients, q)
    site_second = np.einsum("lbf,b->lf", coefficients**2, q)
    # clip: a constant site's variance may round to −1e-17
    return Moments(site_mean.sum(axis=0), np.clip(site_second - site_mean**2, 0.0, None).sum(axis=0))


def normality(values: np.ndarray) -> Normality:
    """Is each feature roughly normal over the samples, so that δ's Gaussian reading holds?

    Rule: ``|skewness| <= MAX_ABS_SKEWNESS`` (1) and ``|excess kurtosis| <=
    MAX_ABS_EXCESS_KURTOSIS`` (2), both biased sample estimates (``scipy.stats.skew``,
    ``scipy.stats.kurtosis``). A size-of-effect rule, not a test: with ~10⁴ samples every
    significance test rejects trivial departures (a binomial count is never exactly normal),
    while these bounds, the usual rule of thumb, let through near-symmetric unimodal
    distributions (a binomial with n·π·(1−π) ≥ 1 has |skew| ≤ 1, |excess kurtosis| ≤ 2) and
    flag skewed, heavy-tailed or pinned-at-a-bound ones. Constant features get NaN and False.

    Parameters
    ----------
    values : np.ndarray, shape (n, F)
        V of each of n samples.

    Returns
    -------
    Normality
    """
    values = np.asarray(values, dtype=np.float64)
    varies = np.ptp(values, axis=0) > 0
    skewness = np.full(values.shape[1], np.nan)
    excess_kurtosis = np.full(values.shape[1], np.nan)
    if varies.any():
        skewness[varies] = stats.skew(values[:, varies], axis=0)
        excess_kurtosis[varies] = stats.kurtosis(values[:, varies], axis=0, fisher=True)
    normal = (np.abs(skewness) <= MAX_ABS_SKEWNESS) & (np.abs(excess_kurtosis) <= MAX_ABS_EXCESS_KURTOSIS)
    return Normality(skewness, excess_kurtosis, normal)


def feature_importance(
    samples: np.ndarray,
    reference: np.ndarray,
    features: Sequence[Feature],
    mu: float,
    *,
    dummies: Mapping[tuple[int, int], Sequence[Feature]] | None = None,
    percentile_threshold: float = 90.0,
) -> list[FeatureImportance]:
    """δ = 1/s² − 1/σ² of each feature for one input, with its percentile among dummies.

    Parameters
    ----------
    samples : np.ndarray, shape (chains, draws, L), int8
        Kept MCMC states (codes 0..3, -1 where x0 is unknown); pooled across chains.
    reference : np.ndarray, shape (L,), int8
        x0.
    features : sequence of Feature
        F features of length L.
    mu : float
        GC chemical potential of the sampled distribution (sets σ²).
    dummies : mapping of (start, end) to sequence of Feature, optional
        Control features for each feature's :attr:`Feature.window` (:func:`dummy_sets`, built
        once per run). Dummies have weight 1, so percentiles are meaningful for features
        with weights of order 1. Default None: percentiles are NaN.
    percentile_threshold : float, default 90.0
        A feature is important above this percentile (the paper's 90).

    Returns
    -------
    list of FeatureImportance, one per feature, in order.
    """
    length = _stack(features).shape[0]
    samples = np.asarray(samples)
    if samples.ndim < 2:
        raise ValueError(f"samples must have shape (chains, draws, L), got {samples.shape}")
    flat = check_codes(samples.reshape(-1, samples.shape[-1]), "samples", length)
    if len(flat) < 2:
        raise ValueError(f"samples must hold at least 2 sequences to estimate a variance, got {len(flat)}")
    reference = check_codes(reference, "reference", length)
    if len(reference) != 1:
        raise ValueError(f"reference must be one sequence (L,), got {len(reference)}")
    percentile_threshold = check_number(percentile_threshold, "percentile_threshold", minimum=0, maximum=100)
    controls = _controls(features, dummies)
    columns = list(features) + [dummy for group in controls.values() for dummy in group]

    matrix = _stack(columns).reshape(length * len(ALPHABET), len(columns))
    # integer coefficients keep float32 exact; the moments are then taken in float64. Blocks of
    # samples bound the one-hot copy's memory (30 000 x 201 bp would be 96 MB at once).
    values = np.empty((len(flat), len(columns)))
    matrix32 = matrix.astype(np.float32)
    for start in range(0, len(flat), _SAMPLE_BLOCK):
        block = flat[start:start + _SAMPLE_BLOCK]
        values[start:start + len(block)] = one_hot(block, np.float32).reshape(len(block), -1) @ matrix32
    input_values = one_hot(reference[0], np.float64).reshape(-1) @ matrix
    # centre on the first sample, in place: a feature that never moved is exact zeros (s² = 0),
    # and a moving one is within a few s of 0, so E[v²] − E[v]² loses no precision; einsum
    # avoids the (n, F) temporaries of np.var
    first = values[0].copy()
    values -= first
    centred_mean = values.mean(axis=0)
    sample_variance = np.clip(np.einsum("ij,ij->j", values, values) / len(values) - centred_mean**2, 0.0, None)
    background_variance = background_moments(columns, mu, known=reference[0] >= 0).variance
    with np.errstate(divide="ignore", invalid="ignore"):  # s² = 0 gives inf; σ² = 0 is masked to NaN
        delta = np.where(background_variance > 0, 1.0 / sample_variance - 1.0 / background_variance, np.nan)

    n_features = len(features)
    percentiles = np.full(n_features, np.nan)
    offset = n_features
    for window, group in controls.items():
        control_delta = delta[offset:offset + len(group)]
        control_delta = control_delta[~np.isnan(control_delta)]
        offset += len(group)
        for index, feature in enumerate(features):
            if feature.window == window and control_delta.size and not np.isnan(delta[index]):
                percentiles[index] = stats.percentileofscore(control_delta, delta[index], kind="mean")
    shape = normality(values[:, :n_features])
    sample_mean = centred_mean[:n_features] + first[:n_features]
    return [
        FeatureImportance(
            name=feature.name,
            delta=float(delta[i]),
            percentile=float(percentiles[i]),
            important=bool(percentiles[i] > percentile_threshold),
            sample_mean=float(sample_mean[i]),
            input_value=float(input_values[i]),
            skewness=float(shape.skewness[i]),
            excess_kurtosis=float(shape.excess_kurtosis[i]),
            normal=bool(shape.normal[i]),
        )
        for i, feature in enumerate(features)
    ]


def feature_columns(importances: Sequence[FeatureImportance]) -> dict:
    """summary.tsv fields of one input: per feature ``f``, ``f_delta, f_percentile, f_important,
    f_sample_mean, f_input_value, f_normality`` (``normal`` / ``non-normal``), ``f_skewness``,
    ``f_excess_kurtosis``, in that order."""
    columns = {}
    for result in importances:
        f = result.name
        columns.update({
            f"{f}_delta": result.delta,
            f"{f}_percentile": result.percentile,
            f"{f}_important": result.important,
            f"{f}_sample_mean": result.sample_mean,
            f"{f}_input_value": result.input_value,
            f"{f}_normality": "normal" if result.normal else "non-normal",
            f"{f}_skewness": result.skewness,
            f"{f}_excess_kurtosis": result.excess_kurtosis,
        })
    return columns


def _controls(features: Sequence[Feature], dummies) -> dict[tuple[int, int], Sequence[Feature]]:
    """The dummies of each distinct window of ``features`` (empty without dummies)."""
    if dummies is None:
        return {}
    controls = {}
    for feature in features:
        window = feature.window
        if window not in dummies or not dummies[window]:
            raise ValueError(f"no dummy features for window {list(window)} of feature {feature.name!r}; "
                             "build them with dummy_sets(features)")
        for dummy in dummies[window]:
            if dummy.length != feature.length or dummy.window != window:
                raise ValueError(f"dummy {dummy.name!r} spans {list(dummy.window)} of a {dummy.length}-bp input, "
                                 f"not feature {feature.name!r}'s window {list(window)} of {feature.length} bp")
        controls[window] = dummies[window]
    return controls


def _stack(features: Sequence[Feature]) -> np.ndarray:
    """Coefficients of F features of one length as one ``(L, 4, F)`` float64 array."""
    features = list(features)
    if not features:
        raise ValueError("no features given; select at least one (e.g. gc)")
    lengths = sorted({feature.length for feature in features})
    if len(lengths) != 1:
        raise ValueError(f"features must all be for one input length, got lengths {lengths}")
    return np.stack([feature.coefficients for feature in features], axis=-1)
