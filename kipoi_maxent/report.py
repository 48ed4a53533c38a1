"""A self-contained HTML report of a run, with its plots (issue 5 §5).

``write_report(path, data)`` writes one HTML file that needs nothing else: no scripts, no
external URLs or fonts, every image an inline base64 PNG. Sections: the run's parameters,
warnings, aggregate plots (δ percentiles, Fourier amplitudes, PCA spectrum, consensus logo;
each only when its data is given), then per interval a nucleotide-frequency plot in the
style of the paper's Fig. 2 above the per-base KL importance, a logo of the motif window and
a table of its summary fields.

The plot helpers (:func:`frequency_plot`, :func:`logo_plot`, :func:`percentile_histograms`,
:func:`fourier_plot`, :func:`pca_spectrum_plot`) return PNG bytes and can be used on their own.
They draw on a bare :class:`~matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so no global figure registry grows over thousands of calls and the global backend
does not matter.
"""
from __future__ import annotations

import base64
import heapq
import html
import io
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from kipoi_maxent._validation import check_number
from kipoi_maxent.fileio import atomic_path
from kipoi_maxent.outputs import format_value
from kipoi_maxent.sequence import ALPHABET

#: Resolution of every PNG, and the size of its palette: small files (a report of many
#: intervals stays small), still sharp.
DPI = 100
PNG_COLOURS = 64
#: Base colours of the paper's Fig. 2: G yellow/gold, C blue, A green, T red.
BASE_COLOURS = {"A": "#2ca02c", "C": "#1f5fbf", "G": "#e6a800", "T": "#d62728"}
#: δ percentile above which a feature counts as learned (METHOD §5).
LEARNED_PERCENTILE = 90.0
#: Helical period band of nucleosomal DNA marked on Fourier plots (METHOD §6, Fig. 4B).
HELICAL_PERIOD_BP = (10.0, 10.5)

_MOTIF_SHADE = "#d9d9d9"


def _array(value, name: str, shape: tuple, description: str) -> np.ndarray:
    """``value`` as a float64 array whose shape matches ``shape`` (``None`` = any size)."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, array.shape)):
        raise ValueError(f"{name} must have shape {description}, got shape {array.shape}")
    return array


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on arrays is ambiguous
class ReportInterval:
    """One interval shown in the report.

    Attributes
    ----------
    name, chrom : str
    start, end : int
        Genome coordinates of the input, 0-based half-open.
    frequencies : np.ndarray, shape (L, 4), float
        Sample base frequencies, A, C, G, T (rows of 0 at unknown bases).
    importance : np.ndarray, shape (L,), float
        Per-base KL divergence (bits) from the background; NaN at unknown bases.
    motif_start, motif_end : int
        Motif window in input coordinates (``0 <= start < end <= L``), half-open.
    motif_score : float
        Mean KL (bits) over the motif window.
    acceptance_rate : float
        Fraction of accepted proposals, in [0, 1].
    annotation : str
        Free text shown under the heading, e.g. ``"MA0139.2 CTCF p=3e-9"``. Default ``""``.
    extra : dict
        More summary fields (name -> value) for the interval's table. Default empty.
    """

    name: str
    chrom: str
    start: int
    end: int
    frequencies: np.ndarray
    importance: np.ndarray
    motif_start: int
    motif_end: int
    motif_score: float
    acceptance_rate: float
    annotation: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        frequencies = _array(self.frequencies, f"frequencies of {self.name!r}", (None, 4), "(L, 4)")
        length = len(frequencies)
        importance = _array(self.importance, f"importance of {self.name!r}", (length,), f"(L,) = ({length},)")
        # The dataclass is frozen; normalising the inputs once here keeps every use simple.
        object.__setattr__(self, "frequencies", frequencies)
        object.__setattr__(self, "importance", importance)
        object.__setattr__(self, "extra", dict(self.extra))
        check_number(self.start, "interval start", integer=True, minimum=0)
        check_number(self.end, "interval end", integer=True, minimum=self.start,
                     hint="coordinates are 0-based half-open")
        check_number(self.motif_start, "motif start", integer=True, minimum=0, maximum=length - 1,
                     hint="motif coordinates are relative to the input, 0-based")
        check_number(self.motif_end, "motif end", integer=True, minimum=self.motif_start + 1, maximum=length,
                     hint="motif coordinates are relative to the input, half-open")
        check_number(self.motif_score, "motif score")
        check_number(self.acceptance_rate, "acceptance rate", minimum=0, maximum=1)


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything :func:`write_report` shows.

    Attributes
    ----------
    title : str
    parameters : dict
        The run's parameters (name -> value), shown as a table.
    intervals : sequence of ReportInterval
        The intervals to show, in display order: the top ones by motif score
        (:func:`top_by_motif_score`), as the report says.
    n_intervals : int
        Number of intervals in the run (``>= len(intervals)``).
    feature_percentiles : dict of str -> np.ndarray, shape (n,)
        Per global feature, the δ percentile (0..100) of every input among its dummy
        features (Fig. 5B). NaN entries are left out. Default empty: no histogram.
    fourier : tuple (periods (F,), mean_signal (F,), individual (F,)), optional
        Fourier amplitudes averaged over inputs: of the sample-mean signal and the mean over
        individual samples, at the given periods in bp (Fig. 4B), e.g. a
        :class:`kipoi_maxent.periodicity.Periodicity`. Default None: no plot.
    pca_spectra : np.ndarray, shape (n, L), optional
        Ranked principal-component variances of each input's samples, NaN-padded (stacked
        :attr:`kipoi_maxent.denovo.SamplePCA.spectrum`; Fig. 5C). Default None.
    consensus : tuple (matrix (W, 4) A, C, G, T probabilities, label str), optional
        A consensus motif, shown as a logo. Default None.
    warnings : list of str
        Shown in a warnings section when not empty (e.g. frozen chains). Default empty.
    """

    title: str
    parameters: dict
    intervals: Sequence[ReportInterval]
    n_intervals: int
    feature_percentiles: dict = field(default_factory=dict)
    fourier: tuple | None = None
    pca_spectra: np.ndarray | None = None
    consensus: tuple | None = None
    warnings: list = field(default_factory=list)

    def __post_init__(self):
        object.__setattr__(self, "intervals", tuple(self.intervals))
        object.__setattr__(self, "warnings", [str(w) for w in self.warnings])
        check_number(self.n_intervals, "n_intervals", integer=True, minimum=len(self.intervals),
                     hint="it counts every interval of the run, shown or not")
        # The arrays are checked by the plot helpers, before the report file is opened.
        if self.fourier is not None and len(self.fourier) != 3:
            raise ValueError("fourier must be a tuple (periods, mean_signal, individual)")
        if self.consensus is not None and len(self.consensus) != 2:
            raise ValueError("consensus must be a tuple (matrix (W, 4), label)")


def report_interval(result, *, annotation: str = "", extra: Mapping | None = None) -> ReportInterval:
    """A :class:`ReportInterval` from an :class:`~kipoi_maxent.api.IntervalResult`."""
    return ReportInterval(
        result.name, result.chrom, result.start, result.end, result.frequencies, result.importance,
        result.motif.start, result.motif.end, result.motif.score, result.acceptance_rate,
        annotation=annotation, extra=dict(extra or {}),
    )


def top_by_motif_score(intervals: Iterable[ReportInterval], count: int) -> list[ReportInterval]:
    """The ``count`` intervals of largest motif score, best first (earlier first if tied).

    Consumes ``intervals`` lazily, holding at most ``count`` of them.
    """
    count = check_number(count, "count", integer=True, minimum=0)
    return heapq.nlargest(count, intervals, key=lambda interval: interval.motif_score)


# --------------------------------------------------------------------------- plots


def _figure(width: float, height: float, rows: int = 1, columns: int = 1, **subplot_options):
    """A pyplot-free figure on the Agg canvas and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns, squeeze=False, **subplot_options)


def _png(figure, dpi: int) -> bytes:
    """The figure as a palette PNG of :data:`PNG_COLOURS` colours."""
    from PIL import Image  # pillow: a dependency of matplotlib

    figure.set_dpi(dpi)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    buffer = io.BytesIO()
    # Plots use few colours: a palette makes the PNG 3-4 times smaller than matplotlib's RGBA
    # one, at no visible cost (and PIL writes no text chunk, so no URL ends up in the report).
    Image.fromarray(pixels).quantize(colors=PNG_COLOURS).save(buffer, format="png", optimize=True)
    return buffer.getvalue()


def _plain(text: str) -> str:
    """``text`` for a matplotlib label: ``$`` would otherwise start mathtext (and can fail)."""
    return str(text).replace("$", r"\$")


def frequency_plot(frequencies: np.ndarray, importance: np.ndarray, motif: tuple[int, int] | None = None,
                   *, dpi: int = DPI) -> bytes:
    """Per-position base frequencies (paper's Fig. 2) above the per-base KL importance.

    Parameters
    ----------
    frequencies : np.ndarray, shape (L, 4)
        A, C, G, T frequencies; rows of 0 (unknown bases) are left blank.
    importance : np.ndarray, shape (L,)
        KL divergence in bits; unknown bases (NaN) are marked with a grey tick.
    motif : (start, end), optional
        Window shaded in both panels, input coordinates, half-open. Default None.
    dpi : int
        Default :data:`DPI` (100).

    Returns
    -------
    bytes
        A PNG, 9 × 3.4 inches.
    """
    frequencies = _array(frequencies, "frequencies", (None, 4), "(L, 4)")
    length = len(frequencies)
    importance = _array(importance, "importance", (length,), f"(L,) = ({length},)")
    unknown = frequencies.sum(axis=1) == 0
    positions = np.arange(length)
    figure, axes = _figure(9, 3.4, 2, 1, sharex=True, height_ratios=(2, 1))
    top, bottom = axes[:, 0]
    for column, base in enumerate(ALPHABET):
        top.plot(positions, np.where(unknown, np.nan, frequencies[:, column]), color=BASE_COLOURS[base],
                 linewidth=1.0, label=base)
    top.set_ylim(0, 1.02)
    top.set_ylabel("frequency")
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize="small")
    # One filled step patch, not L bars: fast and small for long inputs too.
    bottom.stairs(np.nan_to_num(importance, nan=0.0), np.arange(length + 1) - 0.5, fill=True, color="#555555")
    if unknown.any():
        bottom.plot(positions[unknown], np.zeros(unknown.sum()), "|", color="#999999", markersize=6)
    bottom.set_ylim(bottom=0)
    bottom.set_ylabel("KL (bits)")
    bottom.set_xlabel("position in input")
    bottom.set_xlim(-0.5, length - 0.5)
    if motif is not None:
        for axis in (top, bottom):
            axis.axvspan(motif[0] - 0.5, motif[1] - 0.5, color=_MOTIF_SHADE, zorder=0, linewidth=0)
    return _png(figure, dpi)


def logo_plot(matrix: np.ndarray, *, background: np.ndarray | None = None, first_position: int = 0,
              title: str = "", dpi: int = DPI) -> bytes:
    """Information-content logo (logomaker) of a probability matrix, in the Fig. 2 colours.

    Parameters
    ----------
    matrix : np.ndarray, shape (W, 4)
        A, C, G, T probabilities (or counts: rows are normalised). Rows of 0 (unknown bases)
        get height 0.
    background : np.ndarray, shape (4,), optional
        The information is the KL divergence from it. Default uniform (height = 2 − entropy).
    first_position : int
        Label of the first column on the x axis. Default 0.
    title : str
        Default none.
    dpi : int
        Default :data:`DPI` (100).

    Returns
    -------
    bytes
        A PNG, 1.6 inches high and about 0.3 inches per position wide.
    """
    import logomaker
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    matrix = _array(matrix, "logo matrix", (None, 4), "(W, 4)")
    if np.any(matrix < 0) or not np.all(np.isfinite(matrix)):
        raise ValueError("logo matrix must hold finite non-negative probabilities or counts")
    background = np.full(4, 0.25) if background is None else _array(background, "background", (4,), "(4,)")
    totals = matrix.sum(axis=1, keepdims=True)
    # An unknown base (row of 0) gets the background, i.e. no information and no letters.
    probabilities = np.where(totals > 0, matrix / np.where(totals > 0, totals, 1), background)
    frame = pd.DataFrame(probabilities, columns=list(ALPHABET),
                         index=pd.RangeIndex(first_position, first_position + len(matrix)))
    information = logomaker.transform_matrix(frame, from_type="probability", to_type="information",
                                             background=background)
    figure, axes = _figure(max(2.0, 0.3 * len(matrix) + 0.8), 1.6)
    axis = axes[0, 0]
    with warnings.catch_warnings():
        # A logo without information makes logomaker set equal y limits; they are set below.
        warnings.filterwarnings("ignore", "Attempting to set identical low and high ylims", UserWarning)
        logomaker.Logo(information, ax=axis, color_scheme=BASE_COLOURS, font_name="DejaVu Sans")
    axis.set_ylim(0, max(2.0, float(information.to_numpy().sum(axis=1).max())))
    axis.set_ylabel("bits")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.spines[["top", "right"]].set_visible(False)
    if title:
        axis.set_title(_plain(title), fontsize="medium")
    return _png(figure, dpi)


def percentile_histograms(feature_percentiles: Mapping[str, np.ndarray], *, dpi: int = DPI) -> bytes:
    """Histogram of the δ percentile of every input, one panel per feature (Fig. 5B).

    Parameters
    ----------
    feature_percentiles : dict of str -> np.ndarray, shape (n,)
        Percentiles in 0..100 (NaN left out); at least one feature.
    dpi : int
        Default :data:`DPI` (100).

    Returns
    -------
    bytes
        A PNG; the :data:`LEARNED_PERCENTILE` is marked and the fraction of inputs above it
        is in each panel's title.
    """
    if not feature_percentiles:
        raise ValueError("feature_percentiles is empty: give at least one feature")
    figure, axes = _figure(min(3.2 * len(feature_percentiles), 9.6), 2.4, 1, len(feature_percentiles))
    for axis, (feature, values) in zip(axes[0], feature_percentiles.items()):
        values = _array(values, f"δ percentiles of feature {feature!r}", (None,), "(n,)")
        values = values[np.isfinite(values)]
        if np.any((values < 0) | (values > 100)):
            raise ValueError(f"δ percentiles of feature {feature!r} must lie in 0..100")
        axis.hist(values, bins=np.linspace(0, 100, 21), color="#7f7f7f")
        axis.axvline(LEARNED_PERCENTILE, color="#d62728", linestyle="--", linewidth=1)
        above = float(np.mean(values > LEARNED_PERCENTILE)) if len(values) else float("nan")
        axis.set_title(_plain(f"{feature}: {above:.0%} > {LEARNED_PERCENTILE:g}th"), fontsize="medium")
        axis.set_xlabel("δ percentile among dummies")
        axis.set_xlim(0, 100)
    axes[0, 0].set_ylabel("inputs")
    return _png(figure, dpi)


def fourier_plot(periods: np.ndarray, mean_signal: np.ndarray, individual: np.ndarray, *,
                 dpi: int = DPI) -> bytes:
    """Fourier amplitude against period: sample-mean signal vs individual samples (Fig. 4B).

    Parameters
    ----------
    periods : np.ndarray, shape (F,)
        Periods in bp; non-finite ones (the zero frequency) are left out.
    mean_signal, individual : np.ndarray, shape (F,)
        Amplitude of the sample-mean signal; mean amplitude of individual samples.
    dpi : int
        Default :data:`DPI` (100).

    Returns
    -------
    bytes
        A PNG with a logarithmic period axis and the :data:`HELICAL_PERIOD_BP` band shaded.
    """
    from matplotlib.ticker import NullFormatter

    periods = _array(periods, "periods", (None,), "(F,)")
    size = f"(F,) = ({len(periods)},)"
    mean_signal = _array(mean_signal, "mean_signal", (len(periods),), size)
    individual = _array(individual, "individual", (len(periods),), size)
    shown = np.isfinite(periods) & (periods > 0)
    order = np.argsort(periods[shown])
    figure, axes = _figure(6, 2.6)
    axis = axes[0, 0]
    axis.axvspan(*HELICAL_PERIOD_BP, color="#f2c94c", alpha=0.5, linewidth=0,
                 label=f"{HELICAL_PERIOD_BP[0]:g}–{HELICAL_PERIOD_BP[1]:g} bp")
    axis.plot(periods[shown][order], mean_signal[shown][order], color="#1f5fbf", label="sample-mean signal")
    axis.plot(periods[shown][order], individual[shown][order], color="#7f7f7f", label="individual samples")
    axis.set_xscale("log")
    # Plain bp labels (2, 5, 10, ...) rather than powers of ten.
    span = periods[shown].min(initial=np.inf), periods[shown].max(initial=0)
    ticks = [t for t in (2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if span[0] <= t <= span[1]]
    axis.set_xticks(ticks, labels=[str(t) for t in ticks])
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlabel("period (bp)")
    axis.set_ylabel("normalised amplitude")
    axis.legend(frameon=False, fontsize="small")
    return _png(figure, dpi)


def pca_spectrum_plot(spectra: np.ndarray, *, dpi: int = DPI) -> bytes:
    """Ranked principal-component variances: median and quartiles over inputs (Fig. 5C).

    Parameters
    ----------
    spectra : np.ndarray, shape (n, L)
        Per input, the variances of its samples' principal components, in rank order (e.g.
        :attr:`kipoi_maxent.denovo.SamplePCA.spectrum`, ascending); NaN padding is left out.
    dpi : int
        Default :data:`DPI` (100).

    Returns
    -------
    bytes
        A PNG.
    """
    spectra = _array(spectra, "pca spectra", (None, None), "(n, L)")
    if len(spectra) == 0:
        raise ValueError("pca spectra is empty: give the spectrum of at least one input")
    with warnings.catch_warnings():
        # A rank that is NaN padding in every input is left blank.
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        quartile_low, median, quartile_high = np.nanpercentile(spectra, [25, 50, 75], axis=0)
    ranks = np.arange(1, spectra.shape[1] + 1)
    figure, axes = _figure(6, 2.6)
    axis = axes[0, 0]
    axis.fill_between(ranks, quartile_low, quartile_high, color="#9ecae1", linewidth=0, label="quartiles")
    axis.plot(ranks, median, color="#1f5fbf", label="median")
    axis.set_xlabel("principal component (rank)")
    axis.set_ylabel("variance")
    axis.set_title(f"{len(spectra)} input{'s' if len(spectra) != 1 else ''}", fontsize="medium")
    axis.legend(frameon=False, fontsize="small")
    return _png(figure, dpi)


# --------------------------------------------------------------------------- HTML

_STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
h3 { margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 0.15em 0.8em 0.15em 0; vertical-align: top; }
td { font-family: monospace; word-break: break-all; }
figure { margin: 0.5em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; height: auto; }
.warnings li { color: #a33; }
.interval { border-top: 1px solid #eee; padding-top: 0.5em; }
.annotation { margin: 0.2em 0; font-style: italic; }
"""


def _escape(value) -> str:
    return html.escape(format_value(value), quote=True)


def _image(png: bytes, alt: str, caption: str = "") -> str:
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    caption = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{source}" alt="{html.escape(alt, quote=True)}">{caption}</figure>'


def _table(rows: Mapping) -> str:
    cells = "".join(f"<tr><th>{_escape(key)}</th><td>{_escape(value)}</td></tr>" for key, value in rows.items())
    return f"<table>{cells}</table>"


def _aggregate_sections(data: ReportData) -> list[str]:
    parts = []
    if data.feature_percentiles:
        parts.append('<section id="percentiles"><h3>Global features: δ percentiles</h3>' + _image(
            percentile_histograms(data.feature_percentiles),
            "Histograms of the δ percentile of each input among dummy features, per feature",
            f"Per input, the percentile of the feature's δ among its dummy features; a feature counts "
            f"as learned above the {LEARNED_PERCENTILE:g}th percentile (dashed).") + "</section>")
    if data.fourier is not None:
        parts.append('<section id="fourier"><h3>Periodicity</h3>' + _image(
            fourier_plot(*data.fourier),
            "Fourier amplitudes of the sample-mean signal and of individual samples against period",
            f"Averaged over inputs; the {HELICAL_PERIOD_BP[0]:g}–{HELICAL_PERIOD_BP[1]:g} bp band is "
            "shaded.") + "</section>")
    if data.pca_spectra is not None:
        parts.append('<section id="pca"><h3>PCA spectrum</h3>' + _image(
            pca_spectrum_plot(data.pca_spectra),
            "Ranked principal-component variances of the samples: median and quartiles over inputs",
            "Samples encoded G, C = +1, A, T = −1; low-variance components are the most important "
            "features.") + "</section>")
    if data.consensus is not None:
        matrix, label = data.consensus
        parts.append('<section id="consensus"><h3>Consensus motif</h3>' + _image(
            logo_plot(matrix), f"Consensus motif logo: {label}", str(label)) + "</section>")
    if not parts:
        return []
    return ['<section id="aggregate"><h2>Aggregate plots</h2>', *parts, "</section>"]


def _interval_section(index: int, interval: ReportInterval) -> str:
    location = f"{interval.chrom}:{interval.start}-{interval.end}"
    motif = (interval.motif_start, interval.motif_end)
    fields = {
        "location": location,
        "motif (input)": f"{motif[0]}-{motif[1]}",
        "motif (genome)": f"{interval.chrom}:{interval.start + motif[0]}-{interval.start + motif[1]}",
        "motif score (mean KL, bits)": float(interval.motif_score),
        "acceptance rate": float(interval.acceptance_rate),
        **interval.extra,
    }
    annotation = (f'<p class="annotation">{html.escape(interval.annotation)}</p>'
                  if interval.annotation else "")
    return "".join([
        f'<article class="interval" id="interval-{index}">',
        f"<h3>{html.escape(interval.name)} <small>{html.escape(location)}</small></h3>",
        annotation,
        _image(frequency_plot(interval.frequencies, interval.importance, motif),
               f"Nucleotide frequencies and per-base KL importance of {interval.name}",
               "Base frequencies of the samples per position (G gold, C blue, A green, T red) above "
               "the per-base KL importance; the motif window is shaded."),
        _image(logo_plot(interval.frequencies[motif[0]:motif[1]], first_position=motif[0]),
               f"Sequence logo of the motif window of {interval.name}",
               f"Motif window {motif[0]}-{motif[1]} (input coordinates), information content."),
        _table(fields),
        "</article>",
    ])


def render_report(data: ReportData) -> str:
    """The report's HTML (see :func:`write_report`)."""
    shown, total = len(data.intervals), data.n_intervals
    showing = (f"Showing all {total} intervals." if shown == total else
               f"Showing {shown} of {total} intervals (top by motif score).")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Defence in depth: even a string that escaped escaping could load or run nothing.
        ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
         'img-src data:; style-src \'unsafe-inline\'">'),
        f"<title>{html.escape(data.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(data.title)}</h1>",
        '<section id="parameters"><h2>Run parameters</h2>', _table(data.parameters), "</section>",
    ]
    if data.warnings:
        items = "".join(f"<li>{html.escape(warning)}</li>" for warning in data.warnings)
        parts.append(f'<section id="warnings" class="warnings"><h2>Warnings</h2><ul>{items}</ul></section>')
    parts.extend(_aggregate_sections(data))
    parts.append(f'<section id="intervals"><h2>Intervals</h2><p id="showing">{showing}</p>')
    parts.extend(_interval_section(index, interval) for index, interval in enumerate(data.intervals))
    parts.append("</section></body></html>\n")
    return "\n".join(parts)


def write_report(path, data: ReportData) -> None:
    """Write the self-contained HTML report of ``data`` to ``path``, atomically.

    The HTML is rendered in full before the file is opened, so a failed plot leaves any
    previous report in place.
    """
    document = render_report(data).encode("utf-8")  # bytes: independent of the locale's encoding
    with atomic_path(path, "wb") as stream:
        stream.write(document)
