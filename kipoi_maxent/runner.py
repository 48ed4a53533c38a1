"""``kipoi_maxent.run()``: everything ``kipoi maxent sample`` does, as a function.

A run, in the order that lets it fail fast and keep the user's files safe:

1. every option and input is checked (BED, FASTA, sequences, spec file, β, μ, steps, the
   output directory's ownership) before a deep-learning framework is imported;
2. the output directory is locked, and compared with what it holds: a finished run with the
   same manifest does nothing (or regenerates outputs whose writer options changed), an
   unfinished one resumes, a different one is refused unless ``overwrite``;
3. the model is loaded, β chosen (``auto``: a short pilot, cached), and the inputs not yet done
   are sampled in chunks (in process or on Dask), each chunk landing in ``OUTDIR/.parts``;
4. the writers write into ``.parts/staging``; run.json lists the outputs with their sha256, and
   they are moved into OUTDIR.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from kipoi_maxent import rundir
from kipoi_maxent.auto_beta import PILOT_INPUTS
from kipoi_maxent.samplers import ENGINES as SAMPLER_ENGINES, SAMPLERS
from kipoi_maxent._validation import check_number

logger = logging.getLogger("kipoi_maxent")

#: Packages whose versions change the numbers of a run (the manifest compares them).
NUMERIC_PACKAGES = ("kipoi_maxent", "numpy", "scipy", "numba", "tensorflow", "keras", "torch", "arviz",
                    "arviz-stats", "memelite", "pyjaspar", "kipoi", "kipoiseq", "pyfaidx")
AUTO = "auto"
#: ``--engine`` choices: ``auto`` or an engine of :mod:`kipoi_maxent.samplers`.
ENGINES = (AUTO,) + SAMPLER_ENGINES


def _betas(value) -> tuple[float, ...] | str:
    """``"auto"``, or a tuple of distinct β > 0 from a number, a comma-separated string or a list."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if isinstance(value, str):
        values = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple)):
        values = list(value)
    else:
        values = [value]
    if not values:
        raise ValueError("--beta needs 'auto' or a number (or several, comma-separated)")
    betas = tuple(check_number(v, "beta", minimum=0, exclusive=True,
                               hint="β sets how tightly samples keep x0's penultimate activations") for v in values)
    if len(set(betas)) != len(betas):
        raise ValueError(f"--beta lists a value twice: {value}")
    return betas


def _names(value) -> tuple[str, ...] | None:
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(part).strip() for part in parts if str(part).strip())


@dataclass(frozen=True)
class RunOptions:
    """Every option of a run, with its default; checked on construction (before anything is
    imported or read). The command line's options map one to one (``--max-steps`` →
    ``max_steps``).

    Sampler: ``beta`` (``"auto"``, a number, or several for a grid), ``mu`` (``"auto"``: from
    the genome's GC fraction), ``gc_fraction``, ``chains``, ``steps`` (``"auto"``: until
    converged), ``max_steps``, ``thin`` and ``burnin`` (fixed ``steps`` only), ``seed``,
    ``sampler``, ``engine``, ``batch_size``, ``pilot_inputs`` (inputs of the β pilot).
    Analyses: ``motif_width``, ``features`` (names), ``feature_declarations`` (parsed YAML),
    ``features_file``, ``dummies``, ``importance_percentile``, ``periodicity_bases``,
    ``annotate`` with ``jaspar_release`` and ``jaspar_taxon``, ``pca_components``.
    Outputs: ``save_samples``, ``frequency_tracks``, ``report_top``, ``writers`` (names).
    Execution (never changes results): ``workers``, ``scheduler``, ``chunk_size``,
    ``overwrite``, ``progress``.
    """

    beta: object = AUTO
    mu: object = AUTO
    gc_fraction: float | None = None
    chains: int = 4
    steps: object = AUTO
    max_steps: int = 5_000_000
    thin: int | None = None
    burnin: int | None = None
    seed: int = 0
    sampler: str = "metropolis"
    engine: str = "auto"
    batch_size: int | None = None
    pilot_inputs: int = PILOT_INPUTS
    motif_width: int = 19
    features: object = None
    feature_declarations: tuple = ()
    features_file: str | None = None
    dummies: int = 300
    importance_percentile: float = 90.0
    periodicity_bases: str = "GC"
    annotate: bool = True
    jaspar_release: str = "JASPAR2024"
    jaspar_taxon: str = "vertebrates"
    pca_components: int = 0
    save_samples: bool = False
    frequency_tracks: bool = False
    report_top: int = 20
    writers: object = None
    workers: int | None = None
    scheduler: str | None = None
    chunk_size: int = 64
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self):
        def set_(name, value):
            object.__setattr__(self, name, value)

        set_("beta", _betas(self.beta))
        if isinstance(self.mu, str) and self.mu.strip().lower() == AUTO:
            set_("mu", AUTO)
        else:
            try:
                set_("mu", float(self.mu))
            except (TypeError, ValueError):
                raise ValueError(f"--mu must be 'auto' or a number, got {self.mu!r}") from None
            check_number(self.mu, "--mu")
        if self.gc_fraction is not None:
            from kipoi_maxent.genome_composition import gc_chemical_potential

            gc_chemical_potential(self.gc_fraction)  # 0 < f < 1
        steps = self.steps.strip().lower() if isinstance(self.steps, str) else self.steps
        set_("steps", AUTO if steps == AUTO else check_number(steps, "--steps", integer=True, minimum=1,
                                                              hint="or 'auto': until converged"))
        for name, minimum in (("chains", 1), ("max_steps", 1), ("seed", 0), ("pilot_inputs", 1),
                              ("motif_width", 1), ("dummies", 1), ("pca_components", 0), ("report_top", 0),
                              ("chunk_size", 1)):
            set_(name, check_number(getattr(self, name), f"--{name.replace('_', '-')}", integer=True,
                                    minimum=minimum))
        for name in ("thin", "burnin", "batch_size", "workers"):
            if getattr(self, name) is not None:
                set_(name, check_number(getattr(self, name), f"--{name.replace('_', '-')}", integer=True,
                                        minimum=0 if name == "burnin" else 1))
        set_("importance_percentile", check_number(self.importance_percentile, "--importance-percentile",
                                                   minimum=0, maximum=100))
        if self.sampler not in SAMPLERS:
            raise ValueError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.workers and self.scheduler:
            raise ValueError("give --workers (a local cluster) or --scheduler (an existing one), not both")
        set_("features", _names(self.features))
        set_("writers", _names(self.writers))
        set_("feature_declarations", tuple(self.feature_declarations or ()))
        for beta in ((50.0,) if self.beta == AUTO else self.beta):  # the sampler's own checks, e.g. thin vs steps
            self.sampler_config(beta, 0.0)

    def sampler_config(self, beta: float, mu: float):
        from kipoi_maxent.samplers import SamplerConfig

        return SamplerConfig(beta=beta, mu=mu, chains=self.chains, steps=self.steps, max_steps=self.max_steps,
                             thin=self.thin, burnin=self.burnin, seed=self.seed, sampler=self.sampler)

    @property
    def output_options(self) -> dict:
        """The options that change only which files are written (not the samples)."""
        return {"writers": list(self.writers) if self.writers else None, "frequency_tracks": self.frequency_tracks,
                "report_top": self.report_top}


@dataclass(frozen=True)
class RunResult:
    """A finished run.

    Attributes
    ----------
    output : Path
        The output directory.
    files : dict of str to Path
        Every output file, by name (``summary.tsv``, ``importance.bw``, …, ``run.json``).
    record : dict
        The run record (``run.json``): parameters, β and its source, μ, versions, manifest.
    runs : tuple of RunResult
        For a β grid, one per β (``output`` is then their parent); empty otherwise.
    """

    output: Path
    files: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    runs: tuple = ()

    def summary(self):
        """``summary.tsv`` as a pandas DataFrame (one row per input)."""
        import pandas as pd

        return pd.read_csv(self.files["summary.tsv"], sep="\t")


# ---------------------------------------------------------------------------------------------
# what every sampling command shares: the model, the inputs, μ (all before any framework import)


@dataclass
class Prepared:
    """A run's model and inputs, checked; what does not depend on β."""

    model: str
    source: str
    spec: object                 # the spec given, or found by the model's name, or None
    spec_text: str | None        # the content of that spec file
    length: int | None           # the model's input length, when known before loading it
    bed: str | None              # the BED file of the intervals
    intervals: list | None       # the checked intervals (of the BED, or of the sequences' FASTA)
    fasta: str | None
    sequences: str | None
    dataloader: str | None
    dataloader_source: str
    dataloader_args: dict
    mu: float
    mu_source: str
    gc_fraction: float | None
    base_frequencies: tuple | None
    fingerprint: dict = field(default_factory=dict)
    resolved: object = None

    @property
    def genome(self) -> str | None:
        return self.fasta or self.dataloader_args.get("fasta_file")

    def items(self) -> Iterator:
        """The inputs, read lazily (sequences of checked intervals, or the dataloader's)."""
        from kipoi_maxent import inputs as input_sources

        if self.intervals is not None:
            return input_sources.interval_inputs(self.intervals, self.fasta or self.sequences)
        from kipoi_maxent import api

        kipoi_model = api.load_model(self.model, self.source)
        if self.dataloader:
            import kipoi

            factory = kipoi.get_dataloader_factory(self.dataloader, source=self.dataloader_source)
        else:
            factory = kipoi_model.default_dataloader
        return input_sources.dataloader_inputs(factory, self.dataloader_args, self.resolved.encoder)

    @property
    def n_inputs(self) -> int | None:
        return None if self.intervals is None else len(self.intervals)


def _model_length(model: str, source: str, spec) -> int | None:
    """The model's input length from the spec or Kipoi's model description (no framework
    import); None when neither says."""
    if spec is not None and spec.sequence_length:
        return int(spec.sequence_length)
    try:
        import kipoi

        from kipoi_maxent.spec import infer_layout

        shape = tuple(kipoi.get_model_descr(model, source=source).schema.inputs.shape)
        layout = spec.layout if spec is not None and spec.layout is not None else infer_layout(shape)
        length = shape[list(layout).index("L")]
        return int(length) if length else None
    except Exception:  # a description Kipoi cannot read here: the model load will say why
        return None


def _file_record(path) -> dict:
    from kipoi_maxent.cache import file_digest

    path = Path(path).resolve()
    return {"path": str(path), "sha256": file_digest(path)}


def prepare(model, *, source: str = "kipoi", spec=None, output_units=None, intervals=None, fasta=None,
            sequences=None, dataloader_args=None, dataloader=None, dataloader_source: str = "kipoi",
            options: RunOptions) -> Prepared:
    """Check the model's files, spec and inputs and compute μ, without importing a framework."""
    from kipoi_maxent import inputs as input_sources
    from kipoi_maxent.genome_composition import cached_base_counts, gc_chemical_potential
    from kipoi_maxent.spec import ModelSpec, find_spec, load_spec

    if not model:
        raise ValueError("no model given: pass a Kipoi model name or directory (with --source dir)")
    model = str(model)
    if source == "dir":
        directory = Path(model)
        if not directory.is_dir():
            raise ValueError(f"model directory {model} does not exist" + (" (it is a file)" if directory.exists()
                                                                           else ""))
        model = str(directory.resolve())  # workers may run elsewhere
    given = [intervals is not None, sequences is not None, dataloader_args is not None]
    if sum(given) != 1:
        raise ValueError("give exactly one input: --intervals BED (with --fasta), --sequences FASTA, or "
                         "--dataloader_args")
    if intervals is not None and not fasta:
        raise ValueError("--intervals needs --fasta (the genome the intervals refer to)")
    parsed_args = {}
    if dataloader_args is not None:
        if isinstance(dataloader_args, dict):
            parsed_args = dict(dataloader_args)
        else:
            from kipoi_utils.utils import parse_json_file_str_or_arglist

            try:
                parsed_args = parse_json_file_str_or_arglist(
                    [dataloader_args] if isinstance(dataloader_args, str) else list(dataloader_args))
            except Exception as error:  # Kipoi's parser raises RuntimeError or json errors
                raise ValueError(f"cannot parse --dataloader_args: {error}") from None

    spec_text = None
    if spec is not None and not isinstance(spec, ModelSpec):
        spec_text = Path(spec).read_text() if Path(spec).is_file() else None
        spec = load_spec(spec)
    elif spec is None:
        spec = find_spec(model)
    if spec is not None and spec.source and Path(str(spec.source)).is_file():
        spec_text = Path(spec.source).read_text()
    if output_units is not None:
        try:
            units = tuple(int(u) for u in (str(output_units).split(",") if isinstance(output_units, str)
                                           else output_units))
        except (TypeError, ValueError):
            raise ValueError(f"--output-units must be o or a,b (integers), got {output_units!r}") from None
        if len(units) not in (1, 2) or min(units) < 0:
            raise ValueError(f"--output-units must be o or a,b (non-negative integers), got {output_units!r}")
        spec = dataclasses.replace(spec or ModelSpec(), output_units=units)
    length = _model_length(model, source, spec)

    # μ first: counting the genome also checks the FASTA, with the clearest messages
    genome = fasta or parsed_args.get("fasta_file")
    base_frequencies, composition_source, gc_fraction = None, None, None
    if genome:
        counts, composition_source = cached_base_counts(genome)
        base_frequencies = tuple(float(f) for f in counts.base_frequencies)
        gc_fraction = counts.gc_fraction
    if options.mu != AUTO:
        mu, mu_source = float(options.mu), "--mu"
    elif options.gc_fraction is not None:
        gc_fraction = options.gc_fraction
        mu, mu_source = gc_chemical_potential(gc_fraction), "--gc-fraction"
    elif gc_fraction is not None:
        mu, mu_source = gc_chemical_potential(gc_fraction), f"GC fraction of {genome} ({composition_source})"
    else:
        mu, mu_source = 0.0, "no genome FASTA: uniform background"

    # inputs, checked whole (when the model's length is known: otherwise once it is loaded)
    checked = None
    if intervals is not None and length is not None:
        checked = input_sources.read_bed(intervals, fasta, length)
    elif sequences is not None and length is not None:
        checked = input_sources.read_sequences(sequences, length)

    prepared = Prepared(model, source, spec, spec_text, length, None if intervals is None else str(intervals), checked,
                        fasta, sequences, dataloader, dataloader_source, parsed_args, mu, mu_source, gc_fraction,
                        base_frequencies)
    prepared.fingerprint = _fingerprint(prepared)
    return prepared


def _fingerprint(prepared: Prepared) -> dict:
    """Every file a run reads, by content: the model's files, the inputs, files named in the
    dataloader arguments."""
    from kipoi_maxent.cache import tree_digests

    record: dict = {}
    if prepared.bed is not None:
        record["intervals"] = _file_record(prepared.bed)
        record["fasta"] = _file_record(prepared.fasta)
    if prepared.sequences is not None:
        record["sequences"] = _file_record(prepared.sequences)
    if prepared.dataloader_args or prepared.dataloader:
        record["dataloader"] = prepared.dataloader
        record["dataloader_args"] = prepared.dataloader_args
        record["dataloader_files"] = {key: _file_record(value) for key, value in sorted(prepared.dataloader_args.items())
                                      if isinstance(value, str) and Path(value).is_file()}
    directory = Path(prepared.model) if prepared.source == "dir" else _zoo_model_directory(prepared)
    record["model_files"] = tree_digests(directory) if directory is not None else None
    return record


def _zoo_model_directory(prepared: Prepared) -> Path | None:
    try:
        import kipoi

        return Path(kipoi.get_source(prepared.source).get_model_dir(prepared.model))
    except Exception:  # not pulled yet, or no such source: the model load reports it
        return None


def versions() -> dict:
    """Versions of the packages that change a run's numbers (those installed), and Python's."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in NUMERIC_PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    found["python"] = sys.version.split()[0]
    return found


# ---------------------------------------------------------------------------------------------
# analyses and writers


def analysis_config(options: RunOptions, length: int):
    """The per-input analyses of a sampling run: features (+ dummies), PCA, annotation."""
    import numpy as np

    from kipoi_maxent._validation import read_yaml
    from kipoi_maxent.features import dummy_sets, parse_features, select_features
    from kipoi_maxent.plugin.manager import plugin_manager
    from kipoi_maxent.records import AnalysisConfig

    declarations = list(options.feature_declarations)
    if options.features_file:
        loaded = read_yaml(options.features_file, "--features-file")
        declarations += loaded if isinstance(loaded, list) else [loaded]
    declared = parse_features(declarations, length) if declarations else {}
    from_plugins = {f.name: f for features in plugin_manager().hook.kipoi_maxent_features(length=length)
                    for f in features}
    names = list(options.features) if options.features else list(declared)
    features = select_features(names, {**from_plugins, **declared}, length) if names else []
    dummies = dummy_sets(features, options.dummies, seed=options.seed) if features else {}
    control = None
    if options.pca_components:
        from kipoi_maxent.denovo import random_orthonormal

        check_number(options.pca_components, "--components", integer=True, minimum=1, maximum=length)
        control = np.asarray(random_orthonormal(length, options.pca_components, seed=options.seed))
    jaspar = None
    if options.annotate:
        taxon = None if options.jaspar_taxon in ("all", "none", "") else options.jaspar_taxon
        jaspar = {"release": options.jaspar_release, "collection": "CORE", "tax_group": taxon}
        from kipoi_maxent.motifs import load_jaspar

        load_jaspar(**jaspar)  # fail early on an unknown release or taxon
    check_number(options.motif_width, "--motif-width", integer=True, minimum=1, maximum=length,
                 hint="the motif window cannot be longer than the input")
    return AnalysisConfig(
        motif_width=options.motif_width, features=tuple(features), dummies=dummies,
        importance_percentile=options.importance_percentile, periodicity_bases=options.periodicity_bases,
        pca_components=options.pca_components, pca_control=control, keep_samples=options.save_samples,
        jaspar=jaspar)


def writers(selection: Sequence[str] | None) -> list:
    """The output writers of a run: every registered one, or those named (in that order)."""
    from kipoi_maxent.plugin.manager import plugin_manager

    available = {}
    for group in reversed(plugin_manager().hook.kipoi_maxent_writers()):  # built-ins first
        for writer in group:
            available.setdefault(writer.name, writer)
    if not selection:
        return list(available.values())
    unknown = [name for name in selection if name not in available]
    if unknown:
        raise ValueError(f"unknown writer(s) {', '.join(unknown)}; available: {', '.join(available)}")
    return [available[name] for name in selection]


def _analysis_manifest(analysis) -> dict:
    import hashlib

    import numpy as np

    def digest(arrays: Iterable) -> str:
        sha = hashlib.sha256()
        for array in arrays:
            sha.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        return sha.hexdigest()[:16]

    return {
        "motif_width": analysis.motif_width,
        "features": [f.name for f in analysis.features],
        "features_digest": digest(f.coefficients for f in analysis.features),
        "dummies": sum(len(group) for group in analysis.dummies.values()),
        "dummies_digest": digest(f.coefficients for group in analysis.dummies.values() for f in group),
        "importance_percentile": analysis.importance_percentile,
        "periodicity_bases": analysis.periodicity_bases,
        "pca_components": analysis.pca_components,
        "keep_samples": analysis.keep_samples,
        "jaspar": analysis.jaspar,
    }


def manifest_of(prepared: Prepared, options: RunOptions, beta, analysis) -> dict:
    """Everything that determines a run's results, JSON-ready: compared with a directory's
    previous run to resume it, regenerate its outputs, or refuse to mix two runs."""
    import json

    from kipoi_maxent import __version__

    spec = prepared.spec
    record = {
        "schema_version": rundir.SCHEMA_VERSION,
        "kipoi_maxent_version": __version__,
        "versions": versions(),
        "model": {"name": prepared.model, "source": prepared.source},
        "spec": None if spec is None else {**spec.to_dict(), "file_content": prepared.spec_text},
        "inputs": prepared.fingerprint,
        "base_frequencies": list(prepared.base_frequencies) if prepared.base_frequencies else None,
        "sampler": {"beta": beta, "mu": prepared.mu, "chains": options.chains, "steps": options.steps,
                    "max_steps": options.max_steps if options.steps == AUTO else None, "thin": options.thin,
                    "burnin": options.burnin, "seed": options.seed, "sampler": options.sampler,
                    "engine": options.engine, "pilot_inputs": options.pilot_inputs if beta == AUTO else None},
        "analysis": _analysis_manifest(analysis),
    }
    return json.loads(json.dumps(record, sort_keys=True, default=str))


def _differences(previous: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (to one level below the top), for the refusal message."""
    keys = []
    for key in sorted(set(previous) | set(current)):
        a, b = previous.get(key), current.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and not prefix:
            keys += _differences(a, b, f"{key}.")
        else:
            keys.append(prefix + key)
    return keys


# ---------------------------------------------------------------------------------------------
# run()


def run(model, *, output, source: str = "kipoi", spec=None, output_units=None, intervals=None, fasta=None,
        sequences=None, dataloader_args=None, dataloader=None, dataloader_source: str = "kipoi",
        **options) -> RunResult:
    """Interpret inputs of a Kipoi model by maximum-entropy sampling and write the results.

    The Python equivalent of ``kipoi maxent sample``: same defaults, chunks, resuming, Dask,
    writers and report.

    Parameters
    ----------
    model : str
        Kipoi zoo name, or a model directory with ``source="dir"``.
    output : str or Path
        Output directory (created; an existing one must be empty or hold a kipoi_maxent run).
    source : str
        Kipoi model source (``kipoi``, ``dir``, …).
    spec : str, Path or ModelSpec, optional
        Model spec; default: a shipped spec matching the model's name, else inferred.
    output_units : int, str or sequence, optional
        Output unit ``o`` or ``(a, b)`` weighting the distance (multi-task models).
    intervals, fasta : str or Path
        BED intervals (resized to the model's length) and the genome FASTA; or
    sequences : str or Path
        a FASTA of sequences of the model's length; or
    dataloader_args : dict, str or list
        the model's Kipoi dataloader (``dataloader``, ``dataloader_source``) and its arguments.
    **options
        :class:`RunOptions` (``beta="auto"``, ``steps="auto"``, ``chains=4``, …).

    Returns
    -------
    RunResult

    Raises
    ------
    ValueError
        A bad option or input, or an output directory that is not this run's (one line each).

    Examples
    --------
    >>> result = kipoi_maxent.run("example_configs/models/ctcf_cnn", source="dir",
    ...                           intervals="peaks.bed", fasta="genome.fa", output="out/")
    >>> result.summary()[["name", "motif_start", "motif_end", "converged"]]
    """
    import contextlib

    from kipoi_maxent._quiet import messages_held

    with contextlib.ExitStack() as locks:
        with messages_held():  # a refused option, input or directory is one line, not one after info lines
            unknown = sorted(set(options) - {f.name for f in dataclasses.fields(RunOptions)})
            if unknown:
                raise ValueError(f"unknown option(s) {', '.join(unknown)}; the options are the fields of "
                                 "kipoi_maxent.RunOptions")
            options = RunOptions(**options)
            writer_list = writers(options.writers)
            output, targets, prepared, analysis = _checked(
                model, output, options, source=source, spec=spec, output_units=output_units, intervals=intervals,
                fasta=fasta, sequences=sequences, dataloader_args=dataloader_args, dataloader=dataloader,
                dataloader_source=dataloader_source)
            claims = [_claim(prepared, options, beta, directory, analysis, locks) for beta, directory in targets]
        client = None
        try:
            results = []
            for claim in claims:
                result, client = _run_one(prepared, options, claim, writer_list, client)
                results.append(result)
        finally:
            if client is not None:
                cluster = client.cluster
                client.close()
                if cluster is not None and not options.scheduler:
                    cluster.close()
    if len(targets) == 1:
        return results[0]
    from kipoi_maxent.fileio import write_json

    record = {"format": rundir.GRID_FORMAT, "runs": {d.name: b for b, d in targets}}
    write_json(record, output / rundir.GRID_RECORD)
    return RunResult(output, {rundir.GRID_RECORD: output / rundir.GRID_RECORD}, record, tuple(results))


def _checked(model, output, options: RunOptions, **inputs):
    """The output directories (ownership first: cheap, and the most important), the model and
    inputs, the analyses: ``(output, [(β, directory)], Prepared, AnalysisConfig or None)``."""
    output = Path(output)
    betas = [AUTO] if options.beta == AUTO else list(options.beta)
    grid = len(betas) > 1
    targets = [(beta, output / f"beta_{beta:g}" if grid else output) for beta in betas]
    state = rundir.ownership(output)
    if grid and state in ("finished", "unfinished"):
        raise ValueError(f"{output} holds a single run; a β grid writes one directory per β: choose another -o")
    if not grid and state == "grid":
        raise ValueError(f"{output} holds a β grid (grid.json); choose another -o for a single run")
    for _, directory in targets if grid else ():
        rundir.ownership(directory)
    prepared = prepare(model, options=options, **inputs)
    analysis = analysis_config(options, prepared.length) if prepared.length is not None else None
    return output, targets, prepared, analysis


def _result(directory: Path, record: dict) -> RunResult:
    names = list(record.get("outputs", {})) + [rundir.RUN_RECORD, rundir.EXECUTION_RECORD]
    return RunResult(directory, {name: directory / name for name in names if (directory / name).is_file()}, record)


@dataclass
class _Claim:
    """An output directory this run holds (locked) and what it found there."""

    beta: object
    outdir: Path
    store: object
    previous: dict | None
    analysis: object
    manifest: dict | None = None
    nothing_to_do: bool = False


def _claim(prepared: Prepared, options: RunOptions, beta, outdir: Path, analysis, locks) -> _Claim:
    """Create and lock ``outdir`` (released with ``locks``), clean up after a killed run, and
    settle its previous run when the manifest is known already."""
    from kipoi_maxent.fileio import remove_temporaries
    from kipoi_maxent.pipeline import PartStore

    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot write to output directory {outdir}: {error.strerror}; choose another -o") from None
    locks.enter_context(rundir.locked(outdir))
    state = rundir.ownership(outdir)  # again, now that nobody else can change it
    remove_temporaries(outdir)
    claim = _Claim(beta, outdir, PartStore(outdir), None, analysis)
    claim.previous = rundir.ours(outdir / rundir.RUN_RECORD, rundir.RUN_FORMAT) if state == "finished" else None
    if analysis is not None:
        _settle(claim, prepared, options)
    return claim


def _settle(claim: _Claim, prepared: Prepared, options: RunOptions) -> None:
    claim.manifest = manifest_of(prepared, options, claim.beta, claim.analysis)
    claim.previous, claim.nothing_to_do = _settle_previous(claim.outdir, claim.store, claim.previous, claim.manifest,
                                                           options)


def _run_one(prepared: Prepared, options: RunOptions, claim: _Claim, writer_list, client):
    """One β of a run, in its claimed directory: ``(RunResult, Dask client or None)``."""
    outdir, store, beta = claim.outdir, claim.store, claim.beta
    started = time.time()
    if claim.analysis is None:  # the model's length was not known before loading it
        claim.analysis = analysis_config(options, _load(prepared, options)[0].sequence_length)
        _settle(claim, prepared, options)
    if claim.nothing_to_do:
        logger.info("%s already holds this run's results; nothing to do (--overwrite to redo it)", outdir)
        return _result(outdir, claim.previous), client
    resolved, engine, fallback = _load(prepared, options)
    analysis, manifest, previous = claim.analysis, claim.manifest, claim.previous
    chosen, beta_source, beta_record = _choose_beta(prepared, options, beta, store, resolved, engine)
    if store.manifest() is None:
        store.create(manifest, {"beta": chosen, "source": beta_source, "record": beta_record})
        resumed = 0
    else:
        resumed = store.load()
    config = options.sampler_config(chosen, prepared.mu)
    from kipoi_maxent import pipeline

    plan = pipeline.RunPlan(
        pipeline.ModelSource(prepared.model, prepared.source, prepared.spec, prepared.base_frequencies,
                             options.engine), config, analysis, options.batch_size, beta_source)
    pipeline.loaded_model(plan.model, resolved)  # the workers in this process reuse it
    logger.info("beta = %g (%s), %d chains x %s steps; engine: %s%s; sampler: %s; output %s", chosen,
                beta_source, config.chains, "auto" if config.auto else config.steps, engine.name,
                f" ({fallback})" if fallback else "", config.sampler, outdir)
    if client is None and (options.workers or options.scheduler):
        client = pipeline.dask_client(options.workers, options.scheduler)
    from kipoi_maxent._progress import Progress

    display = Progress(prepared.n_inputs, enabled=options.progress)
    try:
        stats = pipeline.execute(plan, prepared.items(), store, chunk_size=options.chunk_size, client=client,
                                 progress=display)
    finally:
        display.close()
    if resumed:
        logger.info("resumed: %d input(s) were already done", resumed)
    if stats.n_inputs == 0:
        store.remove()
        raise ValueError("no input to interpret: the inputs are empty, or every one was skipped (see the warnings)")
    record = _run_record(prepared, options, manifest, config, chosen, beta_source, beta_record, resolved, engine,
                         fallback, analysis, stats.n_inputs)
    written = _write_outputs(outdir, store, record, writer_list, analysis, options, stats.n_inputs, prepared,
                             previous)
    from kipoi_maxent.fileio import write_json

    write_json({"format": rundir.EXECUTION_FORMAT, "command": sys.argv, "workers": options.workers,
                "scheduler": options.scheduler, "chunk_size": options.chunk_size,
                "batch_size": options.batch_size, "chunks_run": stats.chunks_run, "inputs_resumed": resumed,
                "model_loads_per_worker": stats.model_loads, "runtime_seconds": round(time.time() - started, 2)},
               outdir / rundir.EXECUTION_RECORD)
    logger.info("wrote %s, run.json, execution.json to %s", ", ".join(written), outdir)
    return _result(outdir, record), client


def _settle_previous(outdir: Path, store, previous: dict | None, manifest: dict, options: RunOptions):
    """Compare the directory's previous run (finished: ``previous``; unfinished: the parts)
    with ``manifest``; discard it (``overwrite``) or refuse when it differs. Returns the
    previous run record still standing and whether there is nothing to do."""
    parts = store.manifest()
    if previous is not None and previous.get("manifest") != manifest:
        if not options.overwrite:
            changed = _differences(previous.get("manifest") or {}, manifest)
            raise ValueError(f"{outdir} holds the results of a different run (differing: {', '.join(changed)}); "
                             "choose another output directory or pass --overwrite to replace them")
        kept = rundir.remove_outputs(outdir, previous.get("outputs") or {})
        if kept:
            logger.warning("not deleting %s in %s: changed since kipoi_maxent wrote them", ", ".join(kept), outdir)
        (outdir / rundir.RUN_RECORD).unlink()
        store.remove()
        previous, parts = None, None
    if parts is not None and parts != manifest:
        if not options.overwrite:
            changed = _differences(parts, manifest)
            raise ValueError(f"{outdir} holds an unfinished run with other parameters (differing: "
                             f"{', '.join(changed)}); rerun with its parameters to resume it, or pass --overwrite "
                             "to discard it")
        store.remove()
    if (previous is not None and previous.get("status") == "complete"
            and previous.get("output_options") == options.output_options
            and not rundir.changed_outputs(outdir, previous.get("outputs") or {})):
        return previous, True
    return previous, False


def _load(prepared: Prepared, options: RunOptions):
    """Load and resolve the model (framework output hidden), and check the deferred inputs."""
    from kipoi_maxent import api, inputs as input_sources
    from kipoi_maxent._quiet import framework_output_hidden
    from kipoi_maxent.samplers import make_engine

    if prepared.resolved is None:
        prepared.resolved = api.resolve_model(prepared.model, prepared.spec, source=prepared.source,
                                              base_frequencies=prepared.base_frequencies)
        length = prepared.resolved.sequence_length
        logger.info("model %s: penultimate layer %s, %d units; %d bp inputs", prepared.model,
                    prepared.resolved.network.layer, len(prepared.resolved.weights), length)
        if prepared.gc_fraction is None or prepared.mu_source == "--mu":
            logger.info("mu = %.4f (%s)", prepared.mu, prepared.mu_source)
        else:
            logger.info("GC fraction %.5f -> mu = ln(f/(1-f)) = %.4f (%s)", prepared.gc_fraction, prepared.mu,
                        prepared.mu_source)
        if prepared.intervals is None and prepared.bed is not None:
            prepared.intervals = input_sources.read_bed(prepared.bed, prepared.fasta, length)
        elif prepared.intervals is None and prepared.sequences:
            prepared.intervals = input_sources.read_sequences(prepared.sequences, length)
    with framework_output_hidden():
        engine, fallback = make_engine(options.engine, prepared.resolved)
    return prepared.resolved, engine, fallback


def _choose_beta(prepared: Prepared, options: RunOptions, beta, store, resolved, engine):
    """β of this run: the one given, the one an unfinished run of this directory chose, or
    :func:`kipoi_maxent.auto_beta.choose_beta` (cached per model). ``(β, source, pilot record)``."""
    if beta != AUTO:
        return float(beta), "given", None
    kept = store.beta_choice()
    if kept is not None:  # a resumed run, or one whose outputs are regenerated, keeps the β it started with
        return float(kept["beta"]), kept["source"], kept.get("record")
    from kipoi_maxent.auto_beta import choose_beta

    choice = choose_beta(prepared, options, resolved, engine)
    return choice.beta, choice.source, choice.record


def _run_record(prepared, options, manifest, config, beta, beta_source, beta_record, resolved, engine, fallback,
                analysis, n_inputs) -> dict:
    import numpy as np

    from kipoi_maxent import __version__
    from kipoi_maxent.sequence import ALPHABET, background_probabilities

    return {
        "format": rundir.RUN_FORMAT,
        "schema_version": rundir.SCHEMA_VERSION,
        "status": "installing",
        "kipoi_maxent_version": __version__,
        "manifest": manifest,
        "model": prepared.model,
        "source": prepared.source,
        "spec": resolved.spec.to_dict(),
        "inferred": resolved.inferred,
        "penultimate_layer": resolved.network.layer,
        "framework": resolved.network.framework,
        "inputs": {"intervals": prepared.bed, "fasta": prepared.fasta,
                   "sequences": prepared.sequences, "dataloader": prepared.dataloader,
                   "dataloader_args": prepared.dataloader_args, "n_inputs": n_inputs},
        "sampler": {"beta": beta, "beta_source": beta_source, "mu": config.mu, "chains": config.chains,
                    "steps": config.steps, "max_steps": config.max_steps if config.auto else None,
                    "thin": None if config.auto else config.thin_steps,
                    "burnin": None if config.auto else config.burnin_steps, "seed": config.seed,
                    "sampler": config.sampler, "engine": engine.name, "engine_fallback_reason": fallback,
                    "draws_per_chain": config.draws_per_chain},
        "beta_choice": beta_record,
        "mu": config.mu, "mu_source": prepared.mu_source, "gc_fraction": prepared.gc_fraction,
        "motif_width": analysis.motif_width,
        "analysis": manifest["analysis"],
        "background": dict(zip(ALPHABET, np.round(background_probabilities(config.mu), 6).tolist())),
        "versions": versions(),
        "output_options": options.output_options,
    }


def _write_outputs(outdir: Path, store, record: dict, writer_list, analysis, options: RunOptions, n_inputs: int,
                   prepared: Prepared, previous: dict | None) -> list[str]:
    """Run the writers into ``.parts/staging``, then install their files in ``outdir``:
    run.json (status ``installing``) lists them with their sha256 first, so a crash in
    between leaves every file accounted for; the previous run's files not written again go."""
    from kipoi_maxent.fileio import write_json
    from kipoi_maxent.outputs.writers import OutputOptions, RunOutputs

    staging = store.staging
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    outputs = RunOutputs(staging, record, store, OutputOptions(options.report_top, options.frequency_tracks),
                         n_inputs, analysis, genome=prepared.genome)
    record["warnings"] = run_warnings(outputs)
    for message in record["warnings"]:
        logger.warning("%s", message)
    written: list[str] = []
    for writer in writer_list:
        for name in writer.write(outputs):
            if not rundir.is_plain_name(name) or name in (rundir.RUN_RECORD, rundir.EXECUTION_RECORD):
                raise ValueError(f"writer {writer.name!r} wrote {name!r}: outputs are plain file names, and "
                                 "run.json and execution.json are the run's own")
            if name not in written:
                written.append(name)
    record["outputs"] = {name: rundir.output_entry(staging / name) for name in written}
    write_json(record, outdir / rundir.RUN_RECORD)
    stale = {name: entry for name, entry in ((previous or {}).get("outputs") or {}).items() if name not in written}
    kept = rundir.remove_outputs(outdir, stale)
    if kept:
        logger.warning("not deleting %s in %s: changed since kipoi_maxent wrote them", ", ".join(kept), outdir)
    for name in written:
        os.replace(staging / name, outdir / name)
    record["status"] = "complete"
    write_json(record, outdir / rundir.RUN_RECORD)
    shutil.rmtree(staging, ignore_errors=True)
    return written


def run_warnings(outputs) -> list[str]:
    """β off the network's scale (frozen or unconstrained chains) and unconverged chains."""
    import numpy as np

    from kipoi_maxent.diagnostics import MAX_RHAT, MIN_ESS

    n = outputs.n_intervals
    frozen = unconstrained = unconverged = 0
    for record in outputs.records():
        frozen += record.row["acceptance_rate"] < 0.01
        unconstrained += bool(np.nanmax(record.importance) < 0.1)
        unconverged += not record.row["converged"]
    messages = []
    if frozen:
        messages.append(
            f"{frozen} of {n} input(s) have acceptance < 1%: chains are frozen and importance is high everywhere; "
            "beta is too large for this network's distance scale. Lower --beta (or use --beta auto) until "
            "acceptance rises and importance concentrates.")
    if unconstrained:
        messages.append(
            f"{unconstrained} of {n} input(s) have no position with KL > 0.1 bit: nothing is constrained; beta may "
            "be too small (or too few steps). Raise --beta.")
    if unconverged:
        auto = outputs.run["sampler"]["steps"] == AUTO
        messages.append(
            f"{unconverged} of {n} input(s) did not converge (rank R-hat > {MAX_RHAT} or bulk/tail ESS < {MIN_ESS:g} "
            "for the distance or GC count; see summary.tsv): " + (
                "raise --max-steps" if auto else "run more --steps (or --steps auto)") +
            "; a frozen chain wants a lower --beta, a distance switching slowly between a bound and a melted "
            "motif a higher one (README: beta and run length).")
    return messages


# ---------------------------------------------------------------------------------------------
# calibrate, knn


def calibrate(model, *, output, betas="10,40,160,640", max_inputs: int = 20, source: str = "kipoi", spec=None,
              output_units=None, intervals=None, fasta=None, sequences=None, dataloader_args=None,
              dataloader=None, dataloader_source: str = "kipoi", **options):
    """Sample the first ``max_inputs`` inputs at every β of a grid and recommend β by the
    paper's two rules (METHOD §8), and by ``--beta auto``'s rule with its guards.

    Writes ``calibration.tsv`` (per β), ``calibration_inputs.tsv`` (per input and β),
    ``calibration.png`` and ``calibration.json`` to ``output``.

    Returns
    -------
    kipoi_maxent.calibration.Recommendation
    """
    import itertools

    import numpy as np

    from kipoi_maxent import api
    from kipoi_maxent.calibration import (auto_beta, calibration_row, nearest_other_distances, plot_calibration,
                                          recommend_beta, summarise, write_calibration_tables)
    from kipoi_maxent.fileio import write_json

    options = RunOptions(beta=betas, **{"chains": 20, "steps": 5000, "thin": 10, **options})
    if options.beta == AUTO:
        raise ValueError("calibrate needs a β grid, e.g. --beta 10,40,160,640")
    count = check_number(max_inputs, "--max-inputs", integer=True, minimum=2,
                         hint="the distance rule compares each input with its nearest other input")
    prepared = prepare(model, source=source, spec=spec, output_units=output_units, intervals=intervals, fasta=fasta,
                       sequences=sequences, dataloader_args=dataloader_args, dataloader=dataloader,
                       dataloader_source=dataloader_source, options=options)
    resolved, engine, _ = _load(prepared, options)
    items = list(itertools.islice(prepared.items(), count))
    if len(items) < 2:
        raise ValueError(f"calibrate needs at least 2 inputs, the input file has {len(items)}")
    nearest = nearest_other_distances(resolved.penultimate(np.stack([item.codes for item in items])),
                                      resolved.weights)
    rows = []
    for beta in sorted(options.beta):
        logger.info("beta = %g: sampling %d inputs", beta, len(items))
        results = api.iter_sample(resolved, items, options.sampler_config(beta, prepared.mu),
                                  batch_size=options.batch_size, engine=engine, keep_samples=False)
        for result, distance in zip(results, nearest):
            rows.append(calibration_row(
                beta, result.name, mean_distance=result.mean_distance, sd_distance=result.sd_distance,
                nearest_distance=float(distance), frequencies=result.frequencies,
                acceptance_rate=result.acceptance_rate, max_kl=float(np.nanmax(result.importance))))
    summaries = summarise(rows)
    recommendation = recommend_beta(summaries)
    automatic = auto_beta(summaries)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    write_calibration_tables(summaries, output / "calibration.tsv", rows, output / "calibration_inputs.tsv")
    plot_calibration(summaries, output / "calibration.png", recommendation)
    write_json({"betas": sorted(options.beta), "mu": prepared.mu, "mu_source": prepared.mu_source,
                "n_inputs": len(items), "recommendation": recommendation._asdict(),
                "auto": automatic._asdict()}, output / "calibration.json")
    logger.info("wrote calibration.tsv, calibration_inputs.tsv, calibration.png, calibration.json to %s", output)
    return recommendation, automatic


def knn(*, positives, negatives, test_positives, test_negatives, output, fasta=None, neighbors: int = 10) -> dict:
    """The paper's 10-nearest-neighbour check of de novo features (METHOD §7).

    Exemplars are the interpreted inputs of two ``denovo`` runs (``pca.npz`` or its run
    directory); labelled test sequences (a FASTA of sequences, or a BED with ``fasta``) are
    classified by their distance to the exemplars along each exemplar's lowest-variance
    components, and, as a control, along random orthonormal directions. Writes ``knn.json``.

    Returns
    -------
    dict
        What ``knn.json`` holds: exemplar and test counts, ``neighbors``, ``components`` and
        ``control`` accuracies with their 95 % Wilson intervals (``components_interval``,
        ``control_interval``) and the exact McNemar p of their difference (``paired_p``).
    """
    import numpy as np

    from kipoi_maxent import inputs as input_sources
    from kipoi_maxent.denovo import knn_accuracy, load_pca, pm_encode
    from kipoi_maxent.fileio import write_json

    for name, value in (("positives", positives), ("negatives", negatives), ("test-positives", test_positives),
                        ("test-negatives", test_negatives), ("output", output)):
        if not value:
            raise ValueError(f"knn needs --{name}")
    neighbors = check_number(neighbors, "--neighbors", integer=True, minimum=1)

    def exemplars(path):
        path = Path(path)
        return load_pca(path / "pca.npz" if path.is_dir() else path)

    _, positive_pcas, control = exemplars(positives)
    _, negative_pcas, _ = exemplars(negatives)
    if not positive_pcas or not negative_pcas:
        raise ValueError("knn needs at least one positive and one negative exemplar")
    length = len(positive_pcas[0].mean)

    def test_set(path):
        if str(path).endswith((".bed", ".bed.gz")):
            if not fasta:
                raise ValueError(f"{path} is a BED file: give the genome with --fasta")
            items = input_sources.bed_inputs(path, fasta, length)
        else:
            items = input_sources.fasta_inputs(path, length)
        return pm_encode(np.stack([item.codes for item in items]))

    test_pos, test_neg = test_set(test_positives), test_set(test_negatives)
    labels = np.array([1] * len(positive_pcas) + [0] * len(negative_pcas))
    test = np.concatenate([test_pos, test_neg])
    truth = np.array([1] * len(test_pos) + [0] * len(test_neg))
    accuracy = knn_accuracy(positive_pcas + negative_pcas, labels, test, truth, control=control,
                            n_neighbors=neighbors)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    result = {"exemplars": {"positive": len(positive_pcas), "negative": len(negative_pcas)},
              "test": {"positive": int(len(test_pos)), "negative": int(len(test_neg))},
              "neighbors": neighbors,
              **{key: value for key, value in accuracy._asdict().items() if key != "n_test"}}
    write_json(result, output / "knn.json")
    return result
