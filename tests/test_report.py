"""kipoi_maxent.report: the self-contained HTML report, its plots, and its rendering in
headless Chromium."""
import base64
import gc
import html
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from kipoi_maxent.api import IntervalResult
from kipoi_maxent.report import (
    BASE_COLOURS,
    ReportData,
    ReportInterval,
    fourier_plot,
    frequency_plot,
    logo_plot,
    pca_spectrum_plot,
    percentile_histograms,
    render_report,
    report_interval,
    top_by_motif_score,
    write_report,
)
from kipoi_maxent.sequence import ALPHABET, background_probabilities
from kipoi_maxent.statistics import MotifCall, kl_divergence

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE = re.compile(r"<img\b([^>]*)>")
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
EVIL_NAME = "<script>alert(1)</script>"
LENGTH, MOTIF = 101, (40, 59)


def make_interval(name: str, seed: int, length: int = LENGTH, **options) -> ReportInterval:
    """Near-uniform frequencies with a sharp motif window and one unknown base."""
    rng = np.random.default_rng(seed)
    frequencies = rng.dirichlet(np.full(4, 30.0), size=length)
    frequencies[MOTIF[0]:MOTIF[1]] = rng.dirichlet(np.full(4, 0.2), size=MOTIF[1] - MOTIF[0])
    frequencies[3] = 0.0
    importance = kl_divergence(frequencies, background_probabilities(0.0))
    return ReportInterval(name, "chr1", 1000 * seed, 1000 * seed + length, frequencies, importance,
                          *MOTIF, float(np.nanmean(importance[slice(*MOTIF)])), 0.25, **options)


def full_data(intervals) -> ReportData:
    rng = np.random.default_rng(1)
    periods = np.r_[np.inf, LENGTH / np.arange(1, 51)]  # inf: the zero frequency, left out of the plot
    return ReportData(
        title="CTCF <run> & co",
        parameters={"beta": 400.0, "mu": -0.477, "model": "<b>zoo/model</b>", "fasta": "/data/a&b.fa"},
        intervals=intervals,
        n_intervals=1000,
        feature_percentiles={"GC": rng.uniform(0, 100, 300), "dummy <i>": rng.uniform(0, 100, 300)},
        fourier=(periods, rng.random(51), rng.random(51)),
        pca_spectra=np.sort(rng.random((12, LENGTH)), axis=1)[:, ::-1],
        consensus=(rng.dirichlet(np.full(4, 0.3), size=19), "consensus of <19> bp"),
        warnings=["2 chains frozen <img src=x onerror=alert(1)>"],
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One full report (written once: plotting dominates the test time)."""
    intervals = [
        make_interval(EVIL_NAME, 1, annotation='MA0139.2 CTCF p=3e-9 "<x>"', extra={"note": "<b>bold</b>"}),
        make_interval("peak 2", 2),
        make_interval("peak $3$", 3),
    ]
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(path, full_data(intervals))
    return path


def images(document: str) -> list[dict]:
    return [dict(ATTRIBUTE.findall(match.group(1))) for match in IMAGE.finditer(document)]


def decode_png(data: bytes) -> np.ndarray:
    assert data.startswith(PNG_SIGNATURE)
    return matplotlib.image.imread(io.BytesIO(data), format="png")


def test_user_strings_are_escaped(report):
    document = report.read_text(encoding="utf-8")
    assert "<script" not in document.lower()
    assert html.escape(EVIL_NAME) in document
    assert "&lt;img src=x onerror=alert(1)&gt;" in document and "<img src=x" not in document
    assert "&lt;b&gt;zoo/model&lt;/b&gt;" in document and "<b>" not in document
    assert "/data/a&amp;b.fa" in document
    assert "MA0139.2 CTCF p=3e-9 &quot;&lt;x&gt;&quot;" in document
    assert "<title>CTCF &lt;run&gt; &amp; co</title>" in document
    # Inside alt attributes too: every attribute value is free of raw markup characters.
    for attributes in images(document):
        assert not set(attributes["alt"]) & set("<>\"")
    assert html.escape(f"Sequence logo of the motif window of {EVIL_NAME}", quote=True) in document


def test_every_image_is_an_inline_png_with_alt_text(report):
    found = images(report.read_text(encoding="utf-8"))
    assert len(found) == 4 + 2 * 3  # aggregates, then frequency plot and logo per interval
    for attributes in found:
        assert attributes["alt"].strip()
        prefix = "data:image/png;base64,"
        assert attributes["src"].startswith(prefix)
        pixels = decode_png(base64.b64decode(attributes["src"][len(prefix):], validate=True))
        assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 100
        assert pixels.std() > 0.05  # something is drawn


def test_self_contained(report):
    document = report.read_text(encoding="utf-8").lower()
    for reference in ("http://", "https://", "<link", "@import", "url(", "<script", "<iframe", "@font-face"):
        assert reference not in document
    # Real tags only: escaped user text (a warning reads "&lt;img src=x ...") holds no "<".
    references = [value for tag in re.findall(r"<[a-z][^>]*>", document)
                  for name, value in ATTRIBUTE.findall(tag) if name in ("src", "href")]
    assert len(references) == len(images(document)) and all(v.startswith("data:image/png;") for v in references)


def test_sections_and_counts(report):
    document = report.read_text(encoding="utf-8")
    for section in ("parameters", "warnings", "aggregate", "percentiles", "fourier", "pca", "consensus", "intervals"):
        assert f'id="{section}"' in document
    assert "Showing 3 of 1000 intervals (top by motif score)." in document
    order = [document.index(f'id="{s}"') for s in ("parameters", "warnings", "aggregate", "intervals")]
    assert order == sorted(order)
    assert [document.index(f'id="interval-{i}"') for i in range(3)] == sorted(
        document.index(f'id="interval-{i}"') for i in range(3))
    # The summary table of an interval: motif in genome coordinates, score, extra fields.
    assert "chr1:1040-1059" in document and "&lt;b&gt;bold&lt;/b&gt;" in document


def test_optional_sections_absent_and_size_bound(tmp_path):
    one = tmp_path / "one.html"
    data = ReportData("run", {"beta": 100}, [make_interval("a", 1)], 1)
    write_report(one, data)
    document = one.read_text(encoding="utf-8")
    assert document == render_report(data)  # deterministic, written as rendered
    for section in ("warnings", "aggregate", "percentiles", "fourier", "pca", "consensus"):
        assert f'id="{section}"' not in document
    assert "Showing all 1 intervals." in document and len(images(document)) == 2
    two = tmp_path / "two.html"
    write_report(two, ReportData("run", {"beta": 100}, [make_interval("a", 1), make_interval("b", 2)], 5))
    per_interval = two.stat().st_size - one.stat().st_size
    assert 5_000 < per_interval < 100_000
    assert one.stat().st_size < 100_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.html", "two.html"]  # no temporary left


def test_failed_render_keeps_previous_report(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("previous")
    bad = ReportData("run", {}, [], 0, consensus=(np.full((3, 4), -1.0), "negative"))
    with pytest.raises(ValueError, match="non-negative"):
        write_report(path, bad)
    assert path.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_input_validation():
    good = make_interval("a", 1)
    fields = {"name": "a", "chrom": "chr1", "start": 0, "end": LENGTH, "frequencies": good.frequencies,
              "importance": good.importance, "motif_start": 40, "motif_end": 59, "motif_score": 1.0,
              "acceptance_rate": 0.2}
    with pytest.raises(ValueError, match=r"frequencies of 'a' must have shape \(L, 4\), got shape \(101, 3\)"):
        ReportInterval(**{**fields, "frequencies": good.frequencies[:, :3]})
    with pytest.raises(ValueError, match=r"importance of 'a' must have shape"):
        ReportInterval(**{**fields, "importance": good.importance[:-1]})
    with pytest.raises(ValueError, match="motif end must be"):
        ReportInterval(**{**fields, "motif_end": LENGTH + 1})
    with pytest.raises(ValueError, match="acceptance rate must be"):
        ReportInterval(**{**fields, "acceptance_rate": 1.5})
    with pytest.raises(ValueError, match="n_intervals must be >= 1"):
        ReportData("run", {}, [good], 0)
    with pytest.raises(ValueError, match="fourier must be a tuple"):
        ReportData("run", {}, [], 0, fourier=(np.arange(1, 4), np.ones(3)))
    # Arrays are checked by the plot helpers, which write_report calls before opening the file.
    with pytest.raises(ValueError, match="must lie in 0..100"):
        percentile_histograms({"GC": [50, 101]})
    with pytest.raises(ValueError, match=r"individual must have shape \(F,\) = \(3,\)"):
        fourier_plot(np.arange(1, 4), np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"pca spectra must have shape \(n, L\)"):
        pca_spectrum_plot(np.ones(5))


def test_report_interval_and_top_by_motif_score():
    rng = np.random.default_rng(0)
    frequencies = rng.dirichlet(np.ones(4), size=30)
    importance = kl_divergence(frequencies, np.full(4, 0.25))
    unused = dict.fromkeys(IntervalResult._fields)  # fields the report does not read
    results = [
        IntervalResult(**{**unused, "name": f"r{i}", "chrom": "chr2", "start": 100 * i, "end": 100 * i + 30,
                          "frequencies": frequencies, "importance": importance, "motif": MotifCall(3, 22, score),
                          "acceptance_rate": 0.4})
        for i, score in enumerate([0.5, 1.5, 0.1, 1.5, 0.9])
    ]
    converted = [report_interval(r, annotation="ann", extra={"k": 1}) for r in results]
    assert (converted[1].motif_start, converted[1].motif_end, converted[1].motif_score) == (3, 22, 1.5)
    assert converted[0].annotation == "ann" and converted[0].extra == {"k": 1}
    np.testing.assert_array_equal(converted[0].frequencies, frequencies)
    top = top_by_motif_score(iter(converted), 3)
    assert [t.name for t in top] == ["r1", "r3", "r4"]  # ties keep input order
    assert top_by_motif_score(converted, 0) == []


def _colour_pixels(pixels: np.ndarray, colour: str) -> int:
    target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    return int((np.abs(pixels[..., :3] - target).max(axis=-1) < 0.08).sum())


def test_logo_plot_heights_and_colours():
    # Position 0 is G only (2 bits), position 1 uniform (0 bits), position 2 unknown (0 bits).
    matrix = np.array([[0, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=float)
    pixels = decode_png(logo_plot(matrix, title="cost $5"))
    assert _colour_pixels(pixels, BASE_COLOURS["G"]) > 200
    assert all(_colour_pixels(pixels, BASE_COLOURS[b]) == 0 for b in "ACT")
    # Uniform and unknown positions draw no letters at all.
    blank = decode_png(logo_plot(matrix[1:]))
    assert all(_colour_pixels(blank, BASE_COLOURS[b]) == 0 for b in ALPHABET)
    with pytest.raises(ValueError, match="logo matrix must have shape"):
        logo_plot(np.ones((3, 5)))


def test_frequency_plot_colours_and_figures_are_released():
    interval = make_interval("a", 4)
    gc.collect()
    # type(), not isinstance(): gc also holds dead weak proxies, which raise on isinstance
    before = sum(type(o) is Figure for o in gc.get_objects())
    for _ in range(3):
        png = frequency_plot(interval.frequencies, interval.importance, MOTIF)
        percentile_histograms({"GC": np.linspace(0, 100, 50)})
        fourier_plot(np.array([np.inf, 20.0, 10.0, 5.0]), np.ones(4), np.ones(4))
        pca_spectrum_plot(np.array([[0.1, 0.5, 1.0, np.nan], [0.2, 0.6, np.nan, np.nan]]))  # NaN padding
    gc.collect()
    assert sum(type(o) is Figure for o in gc.get_objects()) == before
    pixels = decode_png(png)
    assert pixels.shape[:2] == (340, 900)  # 9 × 3.4 inches at 100 dpi
    assert all(_colour_pixels(pixels, BASE_COLOURS[b]) > 50 for b in ALPHABET)


# --------------------------------------------------------------------------- headless Chromium

#: Injected first in <head> of a copy of the report: records script errors, console errors,
#: failed loads and CSP violations; on load, checks that every image decoded.
RENDER_CHECK = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    errors.push("error: " + (e.message || (e.target && e.target.tagName) || e.type));
  }, true);
  window.addEventListener("unhandledrejection", function (e) { errors.push("rejection: " + e.reason); });
  document.addEventListener("securitypolicyviolation", function (e) {
    errors.push("csp: " + e.violatedDirective + " " + e.blockedURI);
  });
  var consoleError = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    consoleError.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var undecoded = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                          .map(function (i) { return i.alt; });
    var check = document.createElement("pre");
    check.id = "render-check";
    check.textContent = JSON.stringify({errors: errors, images: images.length, undecoded: undecoded});
    document.body.appendChild(check);
  });
})();
</script>"""

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--virtual-time-budget=5000",
]


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        message = "headless Chromium not found (Debian package chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run the render test")
        pytest.skip(message)
    return path


def run_chromium(chromium: str, page: Path, profile: Path, *extra: str) -> str:
    completed = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        check=False, capture_output=True, text=True, timeout=180,  # the assert shows stderr
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def test_renders_in_headless_chromium(report, chromium, tmp_path):
    document = report.read_text(encoding="utf-8")
    checked = tmp_path / "checked.html"
    checked.write_text(document.replace("<head>", "<head>" + RENDER_CHECK, 1), encoding="utf-8")
    dom = run_chromium(chromium, checked, tmp_path / "profile", "--dump-dom")
    match = re.search(r'<pre id="render-check">(.*?)</pre>', dom, re.DOTALL)
    assert match, "the render check did not run: " + dom[-500:]
    outcome = json.loads(html.unescape(match.group(1)))
    assert outcome == {"errors": [], "images": len(images(document)), "undecoded": []}
    # The escaped name is text in the rendered page, not an element.
    assert html.escape(EVIL_NAME) in dom

    screenshot = tmp_path / "report.png"
    run_chromium(chromium, report, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1200,2000")
    pixels = decode_png(screenshot.read_bytes())
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels[..., :3].std() > 0.05 and (pixels[..., :3].mean(axis=-1) < 0.5).mean() > 0.001
