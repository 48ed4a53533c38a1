"""Choosing β (METHOD §8): the paper's two rules, from samples drawn over a grid of β.

1. **Distance** (paper 3.4): β such that the distance from Φ(x0) to the nearest *other*
   data-set element is 2–3 standard deviations beyond the mean distance of x0's samples,
   ``z = (nearest − mean) / sd`` in ``[2, 3]``. Larger β shrinks the samples' distances, so z
   grows with β.
2. **Entropy** (paper 3.5): the largest β that still lets every position fluctuate across the
   samples. Finite samples make "fluctuates" a threshold: a position that never changes has
   entropy exactly 0, one that changed in a single correlated stretch of draws has a tiny
   entropy. :data:`ENTROPY_THRESHOLD` asks for at least 1 % of the samples carrying another
   base, the entropy of a 99 : 1 position, ``h(0.01) ≈ 0.081`` bits (with the paper's 3×10⁴
   samples that is 300 samples, many chains' worth, not a lone excursion).

Pure functions on numpy arrays, plus one matplotlib figure writer.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from kipoi_maxent._validation import check_number
from kipoi_maxent.energy import weighted_distance
from kipoi_maxent.fileio import atomic_path

#: Minority fraction below which a position counts as frozen (see the module docstring).
FROZEN_MINORITY_FRACTION = 0.01
#: Bits: entropy of a position whose minority bases make up :data:`FROZEN_MINORITY_FRACTION`.
ENTROPY_THRESHOLD = float(
    -(FROZEN_MINORITY_FRACTION * np.log2(FROZEN_MINORITY_FRACTION)
      + (1 - FROZEN_MINORITY_FRACTION) * np.log2(1 - FROZEN_MINORITY_FRACTION))
)
#: Bound on the (rows × inputs × units) block of :func:`nearest_other_distances` (~32 MB).
_CHUNK_ELEMENTS = 1 << 22


class CalibrationRow(NamedTuple):
    """One input sampled at one β.

    Attributes
    ----------
    beta : float
    name : str
        The input's name.
    mean_distance, sd_distance : float
        Mean and standard deviation (ddof 0) of the samples' distances d(Φ(x0), Φ(x)).
    nearest_distance : float
        Distance from Φ(x0) to the nearest other data-set element (:func:`nearest_other_distances`).
    z : float
        ``(nearest_distance − mean_distance) / sd_distance`` (inf when the samples never moved).
    min_entropy : float
        Bits: the lowest per-position entropy of the samples (:func:`min_position_entropy`).
    acceptance_rate : float
        Fraction of MCMC steps that changed the state.
    max_kl : float
        Bits: the largest per-base importance (KL from the background) of the samples.
    """

    beta: float
    name: str
    mean_distance: float
    sd_distance: float
    nearest_distance: float
    z: float
    min_entropy: float
    acceptance_rate: float
    max_kl: float


class BetaSummary(NamedTuple):
    """All inputs at one β: medians across inputs, and how many inputs still fluctuate everywhere.

    Attributes
    ----------
    beta : float
    n_inputs : int
    median_mean_distance, median_sd_distance, median_nearest_distance, median_z : float
    median_min_entropy : float
        Bits.
    fraction_fluctuating : float
        Fraction of inputs whose ``min_entropy`` exceeds ``entropy_threshold``.
    entropy_threshold : float
        Bits: the threshold ``fraction_fluctuating`` was counted with.
    median_acceptance_rate : float
    median_max_kl : float
        Bits: the median input's largest per-base importance.
    """

    beta: float
    n_inputs: int
    median_mean_distance: float
    median_sd_distance: float
    median_nearest_distance: float
    median_z: float
    median_min_entropy: float
    fraction_fluctuating: float
    entropy_threshold: float
    median_acceptance_rate: float
    median_max_kl: float


class Recommendation(NamedTuple):
    """β chosen by each rule (None when the grid holds no suitable β) and why."""

    by_distance: float | None
    by_entropy: float | None
    explanation: str


def nearest_other_distances(reference_activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted distance from each input's Φ(x0) to the nearest other input's Φ.

    Parameters
    ----------
    reference_activations : np.ndarray, shape (n, k)
        Φ of the data-set elements, ``n >= 2``.
    weights : np.ndarray, shape (k,)
        Output-layer weights of the distance (:func:`kipoi_maxent.energy.weighted_distance`).

    Returns
    -------
    np.ndarray, shape (n,), float64
        Identical inputs count as others (distance 0).
    """
    activations = np.asarray(reference_activations, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if activations.ndim != 2 or weights.shape != activations.shape[1:]:
        raise ValueError(f"reference_activations must be (n, k) and weights (k,), got shapes "
                         f"{activations.shape} and {weights.shape}")
    n, k = activations.shape
    if n < 2:
        raise ValueError(f"the nearest other input needs at least 2 inputs, got {n}; pass the whole data set")
    nearest = np.empty(n)
    chunk = max(1, _CHUNK_ELEMENTS // (n * max(k, 1)))
    for start in range(0, n, chunk):
        distances = weighted_distance(activations[start:start + chunk, None, :], activations[None], weights)
        rows = np.arange(len(distances))
        distances[rows, start + rows] = np.inf  # not itself
        nearest[start:start + chunk] = distances.min(axis=1)
    return nearest


def min_position_entropy(frequencies: np.ndarray) -> float:
    """The lowest per-position Shannon entropy (bits) of the samples' base frequencies.

    Parameters
    ----------
    frequencies : np.ndarray, shape (L, 4)
        :func:`kipoi_maxent.statistics.nucleotide_frequencies`; rows summing to 0 (positions
        unknown in x0, never sampled) are ignored.

    Returns
    -------
    float
        In ``[0, 2]``; 0 when some position never changed.
    """
    f = np.asarray(frequencies, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != 4:
        raise ValueError(f"frequencies must have shape (L, 4), got {f.shape}")
    f = f[f.sum(axis=1) > 0]
    if len(f) == 0:
        raise ValueError("frequencies have no position with a base (all unknown): no entropy to measure")
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(f > 0, f * np.log2(f), 0.0).sum(axis=1)
    return float(max(entropy.min(), 0.0))  # -0.0 from an all-one row


def calibration_row(
    beta: float,
    name: str,
    *,
    mean_distance: float,
    sd_distance: float,
    nearest_distance: float,
    frequencies: np.ndarray,
    acceptance_rate: float,
    max_kl: float,
) -> CalibrationRow:
    """The :class:`CalibrationRow` of one input sampled at ``beta``: computes z and the min entropy.

    Parameters
    ----------
    beta : float
    name : str
    mean_distance, sd_distance : float
        Of the samples' distances (``ChainSamples.distances.mean()`` / ``.std()``).
    nearest_distance : float
        From :func:`nearest_other_distances`.
    frequencies : np.ndarray, shape (L, 4)
        The samples' base frequencies (:func:`kipoi_maxent.statistics.nucleotide_frequencies`).
    acceptance_rate : float
    max_kl : float
        Bits: the input's largest per-base importance.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        z = float(np.float64(nearest_distance - mean_distance) / sd_distance)  # inf when sd is 0
    return CalibrationRow(float(beta), str(name), float(mean_distance), float(sd_distance), float(nearest_distance),
                          z, min_position_entropy(frequencies), float(acceptance_rate), float(max_kl))


def summarise(rows: Sequence[CalibrationRow], entropy_threshold: float = ENTROPY_THRESHOLD) -> list[BetaSummary]:
    """Per-β summaries of the rows, in increasing β.

    Parameters
    ----------
    rows : sequence of CalibrationRow
    entropy_threshold : float, default :data:`ENTROPY_THRESHOLD` (≈ 0.081 bits)
        An input fluctuates everywhere when its ``min_entropy`` exceeds this.

    Returns
    -------
    list of BetaSummary
    """
    threshold = check_number(entropy_threshold, "entropy_threshold", minimum=0, maximum=2,
                             hint="per-position entropy of 4 bases lies in [0, 2] bits")
    rows = list(rows)
    if not rows:
        raise ValueError("no calibration rows to summarise: sample at least one β")
    summaries = []
    for beta in sorted({row.beta for row in rows}):
        group = [row for row in rows if row.beta == beta]
        numeric_fields = CalibrationRow._fields[2:]  # all but beta and name
        median = {field: float(np.median([getattr(row, field) for row in group])) for field in numeric_fields}
        summaries.append(BetaSummary(
            beta=beta, n_inputs=len(group),
            median_mean_distance=median["mean_distance"], median_sd_distance=median["sd_distance"],
            median_nearest_distance=median["nearest_distance"], median_z=median["z"],
            median_min_entropy=median["min_entropy"],
            fraction_fluctuating=float(np.mean([row.min_entropy > threshold for row in group])),
            entropy_threshold=threshold, median_acceptance_rate=median["acceptance_rate"],
            median_max_kl=median["max_kl"],
        ))
    return summaries


def recommend_beta(
    summaries: Sequence[BetaSummary], z_range: tuple[float, float] = (2.0, 3.0), min_fraction: float = 0.95
) -> Recommendation:
    """Apply the paper's two rules to a β grid.

    Rule 1 (distance): the β whose median z lies in ``z_range``, the one closest to the
    range's centre if several. Rule 2 (entropy): scanning β upwards from the smallest, the
    last β before the first one at which fewer than ``min_fraction`` of the inputs fluctuate at
    every position (threshold: the summaries' ``entropy_threshold``); "nearly all" rather than
    all so one odd input does not set β for the whole data set.

    Parameters
    ----------
    summaries : sequence of BetaSummary
        From :func:`summarise`.
    z_range : (float, float), default (2, 3)
    min_fraction : float, default 0.95

    Returns
    -------
    Recommendation
        A rule's β is None when the grid holds none; the explanation then says which way to
        move the grid. It also says when every β of the grid passes the entropy rule.
    """
    summaries = sorted(summaries, key=lambda s: s.beta)
    if not summaries:
        raise ValueError("no summaries: sample at least one β")
    low = check_number(z_range[0], "z_range[0]")
    high = check_number(z_range[1], "z_range[1]", minimum=low, hint="z_range is (low, high)")
    min_fraction = check_number(min_fraction, "min_fraction", minimum=0, maximum=1)
    by_distance, distance_text = _distance_rule(summaries, low, high)
    by_entropy, entropy_text = _entropy_rule(summaries, min_fraction)
    return Recommendation(by_distance, by_entropy, f"{distance_text}\n{entropy_text}")


def write_calibration_tables(summaries: Sequence[BetaSummary], path, rows: Sequence[CalibrationRow] = (),
                             rows_path=None) -> None:
    """``calibration.tsv`` (one line per β, the :class:`BetaSummary` fields) and, with ``rows``,
    ``calibration_inputs.tsv`` (one line per input and β)."""
    def write(records, fields, target):
        with atomic_path(target) as stream:
            stream.write("\t".join(fields) + "\n")
            for record in records:
                stream.write("\t".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in record) + "\n")

    write(summaries, BetaSummary._fields, path)
    if rows_path is not None:
        write(rows, CalibrationRow._fields, rows_path)


def plot_calibration(summaries: Sequence[BetaSummary], path, recommendation: Recommendation | None = None,
                     z_range: tuple[float, float] = (2.0, 3.0)) -> None:
    """PNG of the median z and the median minimum entropy against β (log axis), recommended βs marked.

    Parameters
    ----------
    summaries : sequence of BetaSummary
    path : str or Path
        Output PNG.
    recommendation : Recommendation, optional
        Default: :func:`recommend_beta` of ``summaries`` with ``z_range``.
    z_range : (float, float), default (2, 3)
        Shaded on the z panel.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg without touching pyplot's state
    from matplotlib.figure import Figure

    summaries = sorted(summaries, key=lambda s: s.beta)
    if recommendation is None:
        recommendation = recommend_beta(summaries, z_range)
    betas = [s.beta for s in summaries]
    figure = Figure(figsize=(6.4, 6.0), layout="constrained")
    FigureCanvasAgg(figure)
    z_axes, entropy_axes = figure.subplots(2, 1, sharex=True)
    z_axes.axhspan(*z_range, color="tab:green", alpha=0.15, label=f"z in [{z_range[0]:g}, {z_range[1]:g}]")
    z_axes.plot(betas, [s.median_z for s in summaries], "o-", color="tab:blue", label="median z")
    z_axes.set_ylabel("(nearest other − mean sample) / sd\n(distance z)")
    entropy_axes.plot(betas, [s.median_min_entropy for s in summaries], "o-", color="tab:purple",
                      label="median min entropy")
    entropy_axes.plot(betas, [s.fraction_fluctuating for s in summaries], "s--", color="tab:gray",
                      label="fraction of inputs fluctuating")
    entropy_axes.axhline(summaries[0].entropy_threshold, color="tab:purple", linestyle=":",
                         label=f"threshold {summaries[0].entropy_threshold:.3f} bits")
    entropy_axes.set_ylabel("min per-position entropy (bits)\n/ fraction of inputs")
    entropy_axes.set_xlabel("β")
    entropy_axes.set_xscale("log")
    for beta, rule, colour in ((recommendation.by_distance, "distance rule", "tab:green"),
                               (recommendation.by_entropy, "entropy rule", "tab:red")):
        if beta is not None:
            for axes in (z_axes, entropy_axes):
                axes.axvline(beta, color=colour, linestyle="--", label=f"{rule}: β = {beta:g}")
    z_axes.legend(fontsize="small")
    entropy_axes.legend(fontsize="small")
    figure.suptitle("Choosing β (METHOD §8)")
    with atomic_path(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=100)


def _distance_rule(summaries: list[BetaSummary], low: float, high: float) -> tuple[float | None, str]:
    """Rule 1 on β-sorted summaries: (β or None, one line of explanation)."""
    betas = np.array([s.beta for s in summaries])
    z = np.array([s.median_z for s in summaries])
    centre = (low + high) / 2
    inside = np.flatnonzero((z >= low) & (z <= high))
    if len(inside):
        best = inside[np.argmin(np.abs(z[inside] - centre))]
        return float(betas[best]), (f"distance rule: β = {betas[best]:g} (median z = {z[best]:.2f}, "
                                    f"within [{low:g}, {high:g}])")
    if np.all(z < low):
        return None, (f"distance rule: no β gives median z in [{low:g}, {high:g}]; z stays below {low:g} "
                      f"(largest {np.nanmax(z):.2f}): raise β above {betas[-1]:g}")
    if np.all(z > high):
        return None, (f"distance rule: no β gives median z in [{low:g}, {high:g}]; z is above {high:g} "
                      f"everywhere (smallest {np.nanmin(z):.2f}): lower β below {betas[0]:g}")
    crossing = next((i for i in range(len(z) - 1) if (z[i] < low) != (z[i + 1] < low)), None)
    where = (f"between β = {betas[crossing]:g} (z = {z[crossing]:.2f}) and β = {betas[crossing + 1]:g} "
             f"(z = {z[crossing + 1]:.2f})" if crossing is not None else "somewhere in the grid")
    return None, (f"distance rule: the grid steps over [{low:g}, {high:g}] {where}: add βs in between")


def _entropy_rule(summaries: list[BetaSummary], min_fraction: float) -> tuple[float | None, str]:
    """Rule 2 on β-sorted summaries: (β or None, one line of explanation)."""
    threshold = summaries[0].entropy_threshold
    passing = [s.fraction_fluctuating >= min_fraction for s in summaries]
    condition = (f"at least {min_fraction:.0%} of inputs with every position's entropy > {threshold:.3f} bits")
    if not passing[0]:
        return None, (f"entropy rule: even β = {summaries[0].beta:g} freezes some position "
                      f"({summaries[0].fraction_fluctuating:.0%} of inputs fluctuate everywhere; need "
                      f"{condition}): lower β below {summaries[0].beta:g}")
    last = passing.index(False) - 1 if False in passing else len(passing) - 1
    chosen = summaries[last]
    text = (f"entropy rule: β = {chosen.beta:g} ({chosen.fraction_fluctuating:.0%} of inputs fluctuate "
            f"everywhere; need {condition})")
    if last == len(summaries) - 1:
        text += "; every β in the grid passes, the limit may lie higher: extend the grid upwards"
    return chosen.beta, text


# ---------------------------------------------------------------------------------------------
# β by the paper's distance rule, within two guards (``--beta auto``)

#: ``--beta auto``: the distance rule aims at the middle of the paper's 2–3 SD.
Z_TARGET = 2.5
#: Guard: never a β at which the median input's chains accept fewer proposals (frozen chains).
MIN_ACCEPTANCE = 0.15
#: Guard: never a β at which the median input's most important base has less KL (bits).
MIN_MAX_KL = 0.3


class AutoBeta(NamedTuple):
    """β chosen from a pilot's :class:`BetaSummary` rows (:func:`auto_beta`).

    Attributes
    ----------
    beta : float or None
        None when the grid does not bracket what is needed; ``direction`` says where to look.
    rule : str
        What decided: ``"distance rule"``, ``"acceptance guard"`` or ``"importance guard"``.
    explanation : str
        One line: the rule's β, the guards' limits, which won and why.
    direction : str
        ``""``, ``"up"`` or ``"down"``: where the grid must grow to decide.
    """

    beta: float | None
    rule: str
    explanation: str
    direction: str = ""


def log_interpolated_crossing(betas: Sequence[float], values: Sequence[float], target: float,
                              rising: bool) -> float | None:
    """The β (log-linear interpolation between grid points) where ``values`` first crosses
    ``target`` going up (``rising``) or down with β; None when it does not cross in the grid.

    Parameters
    ----------
    betas : sequence of float
        Increasing.
    values : sequence of float
        One per β (NaN entries are skipped).
    """
    points = [(float(b), float(v)) for b, v in zip(betas, values) if np.isfinite(v)]
    for (b0, v0), (b1, v1) in zip(points, points[1:]):
        below0, below1 = (v0 < target, v1 < target) if rising else (v0 > target, v1 > target)
        if below0 and not below1:
            if v1 == v0:
                return b1
            fraction = (target - v0) / (v1 - v0)
            return float(np.exp(np.log(b0) + fraction * (np.log(b1) - np.log(b0))))
    return None


def auto_beta(summaries: Sequence[BetaSummary], z_target: float = Z_TARGET,
              min_acceptance: float = MIN_ACCEPTANCE, min_max_kl: float = MIN_MAX_KL) -> AutoBeta:
    """β by the paper's distance rule (median z = ``z_target``, interpolated between grid
    points), kept between two guards: below the β at which the median input's acceptance drops
    under ``min_acceptance`` (frozen chains) and above the one at which its largest per-base
    KL rises over ``min_max_kl`` (nothing constrained). When the guards overlap, the acceptance
    guard wins: a mixing chain that constrains little is honest, a frozen one is not.

    Parameters
    ----------
    summaries : sequence of BetaSummary
        The pilot's grid (any order).

    Returns
    -------
    AutoBeta
    """
    summaries = sorted(summaries, key=lambda s: s.beta)
    betas = [s.beta for s in summaries]
    z = np.array([s.median_z for s in summaries], dtype=float)
    acceptance = [s.median_acceptance_rate for s in summaries]
    max_kl = [s.median_max_kl for s in summaries]
    if acceptance[0] < min_acceptance:
        return AutoBeta(None, "acceptance guard", f"median acceptance {acceptance[0]:.2f} < {min_acceptance} already "
                        f"at β = {betas[0]:g}", "down")
    # the guards: chains freeze above `highest`; nothing is constrained below `lowest`
    highest = log_interpolated_crossing(betas, acceptance, min_acceptance, rising=False)
    lowest = betas[0] if max_kl[0] >= min_max_kl else log_interpolated_crossing(betas, max_kl, min_max_kl, True)
    by_distance = log_interpolated_crossing(betas, z, z_target, rising=True)
    if by_distance is None:
        if np.all(z[np.isfinite(z)] < z_target):  # the rule's β lies above the grid
            if highest is None:
                return AutoBeta(None, "distance rule", f"median z stays below {z_target} up to β = {betas[-1]:g}",
                                "up")
            chosen, reason = highest, f"median z < {z_target} up to β = {highest:.3g}, where the chains freeze"
        else:  # above the target everywhere: the rule's β lies below the grid
            if lowest is None or lowest == betas[0]:
                return AutoBeta(None, "distance rule", f"median z is above {z_target} from β = {betas[0]:g} on",
                                "down")
            chosen, reason = lowest, f"median z > {z_target} over the grid, down to where nothing is constrained"
    else:
        chosen, reason = by_distance, f"distance rule: median z = {z_target} at β = {by_distance:.3g}"
    if lowest is None:
        return AutoBeta(None, "importance guard", f"the median input's largest KL stays below {min_max_kl} bit up "
                        f"to β = {betas[-1]:g}", "up")
    limits = (f"chains freeze above β = {highest:.3g}" if highest is not None
              else f"median acceptance ≥ {min_acceptance} up to β = {betas[-1]:g}")
    limits += (f"; nothing constrained below β = {lowest:.3g}" if lowest > betas[0]
               else f"; median max KL ≥ {min_max_kl} bit from β = {betas[0]:g}")
    if highest is not None and chosen > highest:
        if lowest > highest:
            return AutoBeta(highest, "acceptance guard", f"{reason}; the guards overlap (importance needs β ≥ "
                            f"{lowest:.3g}, mixing β ≤ {highest:.3g}): mixing wins; {limits}")
        return AutoBeta(highest, "acceptance guard", f"{reason}, but the acceptance guard wins; {limits}")
    if chosen < lowest:
        return AutoBeta(lowest, "importance guard", f"{reason}, but the importance guard wins; {limits}")
    rule = "distance rule" if by_distance is not None else (
        "acceptance guard" if chosen == highest else "importance guard")
    return AutoBeta(chosen, rule, f"{reason}; {limits}")
