"""Command line: ``kipoi maxent …``, ``kipoi postproc maxent …``, ``kipoi-maxent …``,
``python -m kipoi_maxent …``. A thin layer over :mod:`kipoi_maxent.api` and
:mod:`kipoi_maxent.pipeline`.

Commands: ``sample`` (interpret inputs: tracks, motif calls, features, report), ``denovo``
(``sample`` plus PCA of the samples), ``knn`` (the paper's nearest-neighbour check of de novo
features), ``calibrate`` (choose β), ``plugins`` (list extensions).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

logger = logging.getLogger("kipoi_maxent")

#: Options whose values are paths; in a ``--config`` file they are relative to it.
_PATH_OPTIONS = ("spec", "intervals", "fasta", "sequences", "features_file", "positives", "negatives",
                 "test_positives", "test_negatives")


# ---------------------------------------------------------------------------------------------
# parsers


def _new_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", help="YAML file of option values (keys as the long options, '-' or '_'); "
                        "command-line options override it; its paths are relative to the file")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or info messages")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model (Kipoi conventions)")
    model.add_argument("model", nargs="?", help="Kipoi model: a zoo name, or a model directory with --source dir")
    model.add_argument("--source", default="kipoi", help="Kipoi model source: kipoi, dir, or a configured source")
    model.add_argument("--spec", help="model spec YAML (penultimate layer, output units, input layout); "
                       "default: a shipped spec matching the model name, else inferred from the model")
    model.add_argument("--output-units", help="output unit(s) whose weights scale the distance, overriding the "
                       "spec: o, or a,b for unit a minus unit b (multi-task models: your task's unit)")
    model.add_argument("--dataloader", help="Kipoi dataloader to read inputs with (default: the model's default dataloader)")
    model.add_argument("--dataloader_source", default="kipoi", help="source of --dataloader")
    model.add_argument("--dataloader_args", nargs="+",
                       help="dataloader arguments: a JSON string, a JSON file, or key=value pairs (as `kipoi predict`)")
    inputs = parser.add_argument_group("inputs (give one of: --intervals with --fasta, --sequences, --dataloader_args)")
    inputs.add_argument("--intervals", help="BED file of intervals, resized around their centre to the model's length")
    inputs.add_argument("--fasta", help="genome FASTA the intervals refer to; also sets mu (see --mu)")
    inputs.add_argument("--sequences", help="FASTA of plain sequences of the model's length (no coordinates)")


def _add_sampler_options(parser: argparse.ArgumentParser, beta_help: str) -> None:
    sampler = parser.add_argument_group("sampler (METHOD §3)")
    sampler.add_argument("--beta", default="400", help=beta_help)
    sampler.add_argument("--mu", default="auto",
                         help="GC chemical potential μ: 'auto' = ln(f/(1-f)) with f the GC fraction of the "
                         "--fasta genome (0 without one), or a number; 0 gives the plain distribution (eq. 3)")
    sampler.add_argument("--gc-fraction", type=float, help="use this genome GC fraction f for μ instead of counting --fasta")
    sampler.add_argument("--chains", type=int, default=100, help="chains per input, each started at the input")
    sampler.add_argument("--steps", type=int, default=30000, help="proposals per chain")
    sampler.add_argument("--thin", type=int, default=100, help="keep every THIN-th state")
    sampler.add_argument("--burnin", type=int, default=0, help="proposals per chain discarded first")
    sampler.add_argument("--seed", type=int, default=0, help="random seed; fixes every output")
    sampler.add_argument("--sampler", choices=("metropolis", "gibbs"), default="metropolis",
                         help="metropolis: the paper's (uniform alternative base, Metropolis rule); gibbs: "
                         "heat bath over the four bases at the position (both exact)")
    sampler.add_argument("--engine", choices=("auto", "naive", "incremental", "windowed"), default="auto",
                         help="how proposals are evaluated: naive = a full forward pass each (the paper's); "
                         "incremental = update only the mutated window (Conv1D → Flatten → Dense nets); "
                         "windowed = recompute only the affected window of every conv/pool layer (deeper conv "
                         "nets); auto = the first of incremental, windowed that qualifies, else naive. Same "
                         "samples either way")
    sampler.add_argument("--batch-size", type=int, help="inputs per batched forward call (default ~1000 chains; "
                         "does not change results)")


def _sample_parser(prog: str, denovo: bool = False) -> argparse.ArgumentParser:
    parser = _new_parser(prog, (
        "Sample, by MCMC, the maximum-entropy distribution of sequences whose penultimate-layer activations "
        "stay close to each input's (Finnegan & Song), and write per-base importance, motif calls, global-"
        "feature importance, periodicity and a report." + (
            " denovo also writes pca.npz: per input, the lowest-variance principal components of the "
            "±1-encoded samples (G, C = +1; A, T = -1), the de novo features of METHOD §7." if denovo else "")))
    _add_model_options(parser)
    _add_sampler_options(parser, "constraint strength β, or several comma-separated (each run goes to "
                         "OUTDIR/beta_<β>/); network-specific: calibrate it (kipoi maxent calibrate)")
    analysis = parser.add_argument_group("analyses")
    analysis.add_argument("--motif-width", type=int, default=19, help="width of the motif-call window (bp)")
    analysis.add_argument("--features", help="global features to score by δ, comma-separated: gc (built in), "
                          "names declared under 'features:' in --config or in --features-file, or from plugins "
                          "(default: every declared feature)")
    analysis.add_argument("--features-file", help="YAML list of feature declarations {name, bases, window, weights}")
    analysis.add_argument("--dummies", type=int, default=300, help="random dummy features for the δ percentile")
    analysis.add_argument("--importance-percentile", type=float, default=90.0,
                          help="a feature is important when its δ exceeds this percentile of the dummies'")
    analysis.add_argument("--periodicity-bases", default="GC", help="base set of the Fourier signal (fourier.tsv)")
    analysis.add_argument("--jaspar-release", default="JASPAR2024", help="JASPAR release to annotate motif calls with")
    analysis.add_argument("--jaspar-taxon", default="vertebrates",
                          help="JASPAR taxonomic group (e.g. vertebrates, insects, plants, fungi), or 'all'")
    analysis.add_argument("--no-annotation", action="store_true", help="do not match motif calls against JASPAR")
    if denovo:
        analysis.add_argument("--components", type=int, default=5, help="lowest-variance principal components kept")
    output = parser.add_argument_group("output")
    output.add_argument("-o", "--output", help="output directory (created)")
    output.add_argument("--save-samples", action="store_true", help="also write samples.h5 (all samples; large)")
    output.add_argument("--frequency-tracks", action="store_true",
                        help="also write per-base frequency bigWigs frequency_A.bw … frequency_T.bw")
    output.add_argument("--report-top", type=int, default=20, help="inputs shown in report.html (top by motif score)")
    output.add_argument("--writers", help="comma-separated output writers to run (default: all; see kipoi maxent plugins)")
    run = parser.add_argument_group("execution (results never depend on these)")
    run.add_argument("--workers", type=int, help="run chunks on a local Dask cluster of this many worker processes")
    run.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://HOST:PORT) to run chunks on")
    run.add_argument("--chunk-size", type=int, default=64, help="inputs per chunk (unit of resuming and of Dask tasks)")
    run.add_argument("--overwrite", action="store_true",
                     help="discard results of a different run in the output directory instead of refusing")
    return parser


def _calibrate_parser(prog: str) -> argparse.ArgumentParser:
    parser = _new_parser(prog, (
        "Choose β for a network (METHOD §8): sample a subset of inputs at each β of a grid and report the "
        "sample distance, its z-score against the distance to the nearest other input, and the minimum "
        "per-position entropy; recommend β by the paper's two rules."))
    _add_model_options(parser)
    _add_sampler_options(parser, "comma-separated β grid")
    parser.set_defaults(beta="10,40,160,640", steps=5000, chains=20, thin=10)
    parser.add_argument("--max-inputs", type=int, default=20, help="inputs (the first ones) sampled per β")
    parser.add_argument("-o", "--output", help="output directory (created)")
    return parser


def _knn_parser(prog: str) -> argparse.ArgumentParser:
    parser = _new_parser(prog, (
        "The paper's 10-nearest-neighbour check of de novo features (METHOD §7): exemplars are interpreted "
        "inputs of both classes (pca.npz of two `kipoi maxent denovo` runs, same β and μ); test sequences are "
        "classified by distance along each exemplar's lowest-variance components, and, as a control, along "
        "random orthonormal directions."))
    parser.add_argument("--positives", help="pca.npz (or its run directory) of interpreted positive inputs")
    parser.add_argument("--negatives", help="pca.npz (or its run directory) of interpreted negative inputs")
    parser.add_argument("--test-positives", help="labelled test positives: FASTA of sequences, or BED with --fasta")
    parser.add_argument("--test-negatives", help="labelled test negatives: FASTA of sequences, or BED with --fasta")
    parser.add_argument("--fasta", help="genome FASTA for BED test sets")
    parser.add_argument("--neighbors", type=int, default=10, help="neighbours that vote")
    parser.add_argument("-o", "--output", help="output directory (created)")
    return parser


def _plugins_parser(prog: str) -> argparse.ArgumentParser:
    return _new_parser(prog, "List loaded plugins, model backends, global features and output writers.")


def _apply_config(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` with the defaults taken from ``--config`` (if any)."""
    first = parser.parse_args(argv)
    if not first.config:
        return first
    from kipoi_maxent._validation import read_yaml

    config_path = Path(first.config)
    values = read_yaml(config_path, "config") or {}
    if not isinstance(values, dict):
        raise ValueError(f"config {config_path} must be a mapping of option: value")
    known = {action.dest for action in parser._actions}
    defaults = {}
    for key, value in values.items():
        dest = key.replace("-", "_")
        if dest == "outdir":
            dest = "output"
        if dest == "features" and isinstance(value, list) and "features_file" in known:
            defaults["feature_declarations"] = value  # declarations, scored unless --features picks
            continue
        if dest not in known:
            raise ValueError(f"config {config_path}: unknown option {key!r}")
        if dest in _PATH_OPTIONS or (dest == "model" and values.get("source") == "dir"):
            value = str((config_path.parent / value).resolve()) if value is not None else None
        if dest == "beta" and isinstance(value, list):
            value = ",".join(str(v) for v in value)
        defaults[dest] = value
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kipoi-maxent: %(message)s"))
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


# ---------------------------------------------------------------------------------------------
# what every sampling command shares: μ, the resolved model, the inputs


@dataclass
class Session:
    """The parts of a sampling command that do not depend on β."""

    args: argparse.Namespace
    resolved: object
    mu: float
    mu_source: str
    gc_fraction: float | None
    base_frequencies: tuple | None
    inputs_record: dict
    fingerprint: dict
    items: Callable[[], Iterator]
    spec: object = None
    dataloader_args: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return self.resolved.sequence_length


def _prepare(args: argparse.Namespace) -> Session:
    from kipoi_maxent import api, inputs as input_sources
    from kipoi_maxent.genome_composition import cached_base_counts, gc_chemical_potential
    from kipoi_maxent.pipeline import file_fingerprint
    from kipoi_maxent.spec import load_spec

    if not args.model:
        raise ValueError("no model given: pass a Kipoi model name or directory (with --source dir)")
    if not args.output:
        raise ValueError("no output directory given: pass -o OUTDIR")
    given = [bool(args.intervals), bool(args.sequences), bool(args.dataloader_args)]
    if sum(given) != 1:
        raise ValueError("give exactly one input: --intervals BED (with --fasta), --sequences FASTA, or --dataloader_args")
    if args.intervals and not args.fasta:
        raise ValueError("--intervals needs --fasta (the genome the intervals refer to)")
    if args.source == "dir":
        args.model = str(Path(args.model).resolve())  # workers may run elsewhere

    dataloader_args = {}
    if args.dataloader_args:
        from kipoi_utils.utils import parse_json_file_str_or_arglist

        try:
            dataloader_args = parse_json_file_str_or_arglist(args.dataloader_args)
        except Exception as error:  # Kipoi's parser raises RuntimeError or json errors
            raise ValueError(f"cannot parse --dataloader_args: {error}") from None
    genome = args.fasta or dataloader_args.get("fasta_file")

    # μ and the genome's base frequencies (the latter for bernoulli input normalisation)
    base_frequencies, composition_source, gc_fraction = None, None, None
    if genome:
        counts, composition_source = cached_base_counts(genome)
        base_frequencies = tuple(float(f) for f in counts.base_frequencies)
        gc_fraction = counts.gc_fraction
    if args.mu != "auto":
        try:
            mu, mu_source = float(args.mu), "--mu"
        except ValueError:
            raise ValueError(f"--mu must be 'auto' or a number, got {args.mu!r}") from None
    elif args.gc_fraction is not None:
        gc_fraction = args.gc_fraction
        mu, mu_source = gc_chemical_potential(gc_fraction), "--gc-fraction"
    elif gc_fraction is not None:
        mu, mu_source = gc_chemical_potential(gc_fraction), f"GC fraction of {genome} ({composition_source})"
    else:
        mu, mu_source = 0.0, "no genome FASTA: uniform background"
    if mu_source == "--mu" or gc_fraction is None:
        logger.info("mu = %.4f (%s)", mu, mu_source)
    else:
        logger.info("GC fraction %.5f -> mu = ln(f/(1-f)) = %.4f (%s)", gc_fraction, mu, mu_source)

    spec = load_spec(args.spec) if args.spec else None
    if args.output_units:
        import dataclasses

        from kipoi_maxent.spec import ModelSpec, find_spec

        try:
            units = tuple(int(u) for u in str(args.output_units).split(","))
        except ValueError:
            raise ValueError(f"--output-units must be o or a,b (integers), got {args.output_units!r}") from None
        if len(units) not in (1, 2) or min(units) < 0:
            raise ValueError(f"--output-units must be o or a,b (non-negative integers), got {args.output_units!r}")
        base = spec or find_spec(args.model) or ModelSpec()
        spec = dataclasses.replace(base, output_units=units)
    resolved = api.resolve_model(args.model, spec, source=args.source, base_frequencies=base_frequencies)
    length = resolved.sequence_length
    # BED and FASTA inputs are checked whole here, before -o is created or anything is sampled
    if args.intervals:
        intervals = input_sources.read_bed(args.intervals, args.fasta, length)

        def items():
            return input_sources.interval_inputs(intervals, args.fasta)
        fingerprint = {"intervals": file_fingerprint(args.intervals), "fasta": file_fingerprint(args.fasta)}
    elif args.sequences:
        records = input_sources.read_sequences(args.sequences, length)

        def items():
            return input_sources.interval_inputs(records, args.sequences)
        fingerprint = {"sequences": file_fingerprint(args.sequences)}
    else:
        def items():
            kipoi_model = api.load_model(args.model, args.source)
            if args.dataloader:
                import kipoi

                factory = kipoi.get_dataloader_factory(args.dataloader, source=args.dataloader_source)
            else:
                factory = kipoi_model.default_dataloader
            return input_sources.dataloader_inputs(factory, dataloader_args, resolved.encoder)
        fingerprint = {"dataloader": args.dataloader, "dataloader_args": dataloader_args}
    if args.source == "dir":  # a model retrained in place is a different run
        fingerprint["model_files"] = {str(p.relative_to(args.model)): [p.stat().st_size, p.stat().st_mtime_ns]
                                      for p in sorted(Path(args.model).rglob("*")) if p.is_file()}
    inputs_record = {"intervals": args.intervals, "fasta": args.fasta, "sequences": args.sequences,
                     "dataloader": args.dataloader, "dataloader_args": dataloader_args}
    logger.info("model %s: penultimate layer %s, %d units; %d bp inputs", args.model, resolved.network.layer,
                len(resolved.weights), length)
    return Session(args, resolved, mu, mu_source, gc_fraction, base_frequencies, inputs_record, fingerprint,
                   items, spec, dataloader_args)


def _betas(text) -> list[float]:
    from kipoi_maxent._validation import check_number

    values = [part.strip() for part in str(text).split(",") if part.strip()]
    if not values:
        raise ValueError("--beta needs a number (or several, comma-separated)")
    betas = [check_number(v, "beta", minimum=0, exclusive=True,
                          hint="β sets how tightly samples keep x0's penultimate activations") for v in values]
    if len(set(betas)) != len(betas):
        raise ValueError(f"--beta lists a value twice: {text}")
    return betas


def _sampler_config(args, beta: float, mu: float):
    from kipoi_maxent.samplers import SamplerConfig

    return SamplerConfig(beta=beta, mu=mu, chains=args.chains, steps=args.steps, thin=args.thin,
                         burnin=args.burnin, seed=args.seed, sampler=args.sampler)


def _analysis(args, length: int, pca_components: int):
    """The per-input analyses of a sampling run: features (+ dummies), PCA, annotation."""
    import numpy as np

    from kipoi_maxent._validation import check_number, read_yaml
    from kipoi_maxent.features import dummy_sets, parse_features, select_features
    from kipoi_maxent.records import AnalysisConfig
    from kipoi_maxent.plugin.manager import plugin_manager

    declarations = list(getattr(args, "feature_declarations", None) or [])
    if args.features_file:
        loaded = read_yaml(args.features_file, "--features-file")
        declarations += loaded if isinstance(loaded, list) else [loaded]
    declared = parse_features(declarations, length) if declarations else {}
    from_plugins = {f.name: f for features in plugin_manager().hook.kipoi_maxent_features(length=length)
                    for f in features}
    names = [n.strip() for n in args.features.split(",") if n.strip()] if args.features else list(declared)
    features = select_features(names, {**from_plugins, **declared}, length) if names else []
    dummies = {}
    if features:
        count = check_number(args.dummies, "--dummies", integer=True, minimum=1)
        dummies = dummy_sets(features, count, seed=args.seed)
    control = None
    if pca_components:
        from kipoi_maxent.denovo import random_orthonormal

        check_number(pca_components, "--components", integer=True, minimum=1, maximum=length)
        control = random_orthonormal(length, pca_components, seed=args.seed)
    jaspar = None
    if not args.no_annotation:
        taxon = None if args.jaspar_taxon in ("all", "none", "") else args.jaspar_taxon
        jaspar = {"release": args.jaspar_release, "collection": "CORE", "tax_group": taxon}
        from kipoi_maxent.motifs import load_jaspar

        load_jaspar(**jaspar)  # fail early on an unknown release or taxon
    check_number(args.motif_width, "--motif-width", integer=True, minimum=1, maximum=length,
                 hint="the motif window cannot be longer than the input")
    return AnalysisConfig(
        motif_width=args.motif_width, features=tuple(features), dummies=dummies,
        importance_percentile=check_number(args.importance_percentile, "--importance-percentile",
                                           minimum=0, maximum=100),
        periodicity_bases=args.periodicity_bases, pca_components=pca_components,
        pca_control=None if control is None else np.asarray(control), keep_samples=args.save_samples,
        jaspar=jaspar,
    )


def _writers(selection: str | None) -> list:
    from kipoi_maxent.plugin.manager import plugin_manager

    available = {}
    for group in reversed(plugin_manager().hook.kipoi_maxent_writers()):  # built-ins first
        for writer in group:
            available.setdefault(writer.name, writer)
    if not selection:
        return list(available.values())
    chosen = [name.strip() for name in selection.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise ValueError(f"unknown writer(s) {', '.join(unknown)}; available: {', '.join(available)}")
    return [available[name] for name in chosen]


# ---------------------------------------------------------------------------------------------
# sample / denovo


def run_sample(args: argparse.Namespace, pca_components: int = 0) -> list[Path]:
    """``sample`` (and ``denovo``): everything after argument parsing. Returns the output directories."""
    from kipoi_maxent import pipeline
    from kipoi_maxent._validation import check_number

    check_number(args.chunk_size, "--chunk-size", integer=True, minimum=1)
    check_number(args.report_top, "--report-top", integer=True, minimum=0)
    if args.workers is not None:
        check_number(args.workers, "--workers", integer=True, minimum=1)
    if args.workers and args.scheduler:
        raise ValueError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    betas = _betas(args.beta)
    for beta in betas:  # every parameter error before any work
        _sampler_config(args, beta, 0.0)
    writers = _writers(args.writers)
    session = _prepare(args)
    analysis = _analysis(args, session.length, pca_components)
    client = pipeline.dask_client(args.workers, args.scheduler)
    try:
        directories = []
        for beta in betas:
            outdir = Path(args.output) if len(betas) == 1 else Path(args.output) / f"beta_{beta:g}"
            _run_one(session, _sampler_config(args, beta, session.mu), analysis, writers, outdir, client)
            directories.append(outdir)
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None and not args.scheduler:
                cluster.close()
    return directories


def _run_one(session: Session, config, analysis, writers, outdir: Path, client) -> None:
    import numpy as np

    from kipoi_maxent import __version__, pipeline
    from kipoi_maxent.outputs import write_json
    from kipoi_maxent.outputs.writers import OutputOptions, RunOutputs
    from kipoi_maxent.sequence import ALPHABET, background_probabilities

    args, resolved = session.args, session.resolved
    started = time.time()
    plan = pipeline.RunPlan(
        pipeline.ModelSource(args.model, args.source, session.spec, session.base_frequencies, args.engine),
        config, analysis, args.batch_size)
    _, engine, fallback = pipeline.loaded_model(plan.model, resolved)
    manifest = pipeline.manifest_of(plan, session.fingerprint)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / f".write-test-{time.time_ns()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise ValueError(f"cannot write to output directory {outdir}: {error.strerror}; choose another -o") from None
    run_json = outdir / "run.json"
    if run_json.is_file():
        try:
            previous = json.loads(run_json.read_text())
        except (OSError, ValueError):
            previous = {}
        if previous.get("manifest") == json.loads(json.dumps(manifest, sort_keys=True, default=str)) \
                and not args.overwrite:
            logger.info("%s already holds this run's results; nothing to do (--overwrite to redo it)", outdir)
            return
        if not args.overwrite:
            raise ValueError(f"{outdir} holds the results of a different run; choose another output directory "
                             "or pass --overwrite to replace them")
        for name in previous.get("outputs", []):  # the old run's files go
            (outdir / Path(name).name).unlink(missing_ok=True)
    store = pipeline.PartStore(outdir, args.chunk_size)
    store.prepare(manifest, args.overwrite)
    logger.info("beta = %g, %d chains x %d steps; engine: %s%s; sampler: %s; output %s", config.beta,
                config.chains, config.steps, engine.name,
                f" (incremental engine not possible: {fallback})" if fallback else "", config.sampler, outdir)
    stats = pipeline.execute(plan, session.items(), store, client=client, progress=not args.quiet)
    if stats.chunks_skipped:
        logger.info("resumed: %d chunk(s) were already done", stats.chunks_skipped)
    if stats.n_inputs == 0:
        store.remove()
        raise ValueError("no input to interpret: the inputs are empty, or every one was skipped (see the warnings)")

    record = {
        "kipoi_maxent_version": __version__,
        "manifest": manifest,
        "model": args.model,
        "source": args.source,
        "spec": resolved.spec.to_dict(),
        "inferred": resolved.inferred,
        "penultimate_layer": resolved.network.layer,
        "framework": resolved.network.framework,
        "inputs": {**session.inputs_record, "n_inputs": stats.n_inputs},
        "sampler": {**config.__dict__, "engine": engine.name, "engine_fallback_reason": fallback,
                    "draws_per_chain": config.draws_per_chain},
        "mu": config.mu, "mu_source": session.mu_source, "gc_fraction": session.gc_fraction,
        "motif_width": analysis.motif_width,
        "analysis": manifest["analysis"],
        "background": dict(zip(ALPHABET, np.round(background_probabilities(config.mu), 6).tolist())),
        "versions": _versions(),
    }
    outputs = RunOutputs(outdir, record, store, OutputOptions(args.report_top, args.frequency_tracks),
                         stats.n_inputs, analysis, genome=args.fasta or session.dataloader_args.get("fasta_file"))
    record["warnings"] = _run_warnings(outputs)
    for message in record["warnings"]:
        logger.warning("%s", message)
    written = []
    for writer in writers:
        written += writer.write(outputs)
    record["outputs"] = written
    write_json(record, run_json)
    write_json({"command": sys.argv, "workers": args.workers, "scheduler": args.scheduler,
                "chunk_size": args.chunk_size, "batch_size": args.batch_size, "chunks_run": stats.chunks_run,
                "chunks_resumed": stats.chunks_skipped, "model_loads_per_worker": stats.model_loads,
                "runtime_seconds": round(time.time() - started, 2)}, outdir / "execution.json")
    store.remove()
    logger.info("wrote %s, run.json, execution.json to %s", ", ".join(written), outdir)


def _run_warnings(outputs) -> list[str]:
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
            "beta is too large for this network's distance scale. Lower --beta (kipoi maxent calibrate, or a grid "
            "such as --beta 400,100,25) until acceptance rises and importance concentrates.")
    if unconstrained:
        messages.append(
            f"{unconstrained} of {n} input(s) have no position with KL > 0.1 bit: nothing is constrained; beta may "
            "be too small (or too few steps). Raise --beta.")
    if unconverged:
        messages.append(
            f"{unconverged} of {n} input(s) did not converge (rank R-hat > {MAX_RHAT} or bulk ESS < {MIN_ESS:g} "
            "for the distance or GC count; see summary.tsv): run more --steps, add --burnin, or lower --beta.")
    return messages


def run_denovo(args: argparse.Namespace) -> list[Path]:
    """``denovo``: ``sample`` plus per-input PCA of the samples (``pca.npz``)."""
    from kipoi_maxent._validation import check_number

    return run_sample(args, pca_components=check_number(args.components, "--components", integer=True, minimum=1))


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("kipoi_maxent", "kipoi", "kipoiseq", "tensorflow", "keras", "torch", "numpy", "pyfaidx",
                    "pybedtools", "arviz", "memelite", "pyjaspar"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    found["python"] = sys.version.split()[0]
    return found


# ---------------------------------------------------------------------------------------------
# calibrate


def run_calibrate(args: argparse.Namespace) -> Path:
    """``calibrate``: sample the first inputs at every β of a grid; recommend β."""
    import itertools

    from kipoi_maxent import api
    from kipoi_maxent._validation import check_number
    from kipoi_maxent.calibration import (CalibrationRow, calibration_row, nearest_other_distances,
                                          plot_calibration, recommend_beta, summarise)
    from kipoi_maxent.outputs import atomic_path, write_json

    count = check_number(args.max_inputs, "--max-inputs", integer=True, minimum=2,
                         hint="the distance rule compares each input with its nearest other input")
    betas = sorted(_betas(args.beta))
    for beta in betas:
        _sampler_config(args, beta, 0.0)
    session = _prepare(args)
    items = list(itertools.islice(session.items(), count))
    if len(items) < 2:
        raise ValueError(f"calibrate needs at least 2 inputs, the input file has {len(items)}")
    import numpy as np

    phi = session.resolved.penultimate(np.stack([item.codes for item in items]))
    nearest = nearest_other_distances(phi, session.resolved.weights)
    rows = []
    for beta in betas:
        config = _sampler_config(args, beta, session.mu)
        logger.info("beta = %g: sampling %d inputs", beta, len(items))
        results = api.iter_sample(session.resolved, items, config, batch_size=args.batch_size,
                                  progress=not args.quiet, engine=args.engine, keep_samples=False)
        for result, distance in zip(results, nearest):
            rows.append(calibration_row(
                beta, result.name, mean_distance=result.mean_distance, sd_distance=result.sd_distance,
                nearest_distance=float(distance), frequencies=result.frequencies,
                acceptance_rate=result.acceptance_rate))
    summaries = summarise(rows)
    recommendation = recommend_beta(summaries)
    outdir = Path(args.output)
    outdir.mkdir(parents=True, exist_ok=True)
    with atomic_path(outdir / "calibration.tsv") as stream:
        columns = list(summaries[0]._fields)
        stream.write("\t".join(columns) + "\n")
        for summary in summaries:
            stream.write("\t".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in summary) + "\n")
    with atomic_path(outdir / "calibration_inputs.tsv") as stream:
        stream.write("\t".join(CalibrationRow._fields) + "\n")
        for row in rows:
            stream.write("\t".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row) + "\n")
    plot_calibration(summaries, outdir / "calibration.png", recommendation)
    write_json({"betas": betas, "mu": session.mu, "mu_source": session.mu_source, "n_inputs": len(items),
                "recommendation": recommendation._asdict()}, outdir / "calibration.json")
    print(recommendation.explanation)
    print(f"beta by the distance rule: {recommendation.by_distance}; by the entropy rule: {recommendation.by_entropy}")
    logger.info("wrote calibration.tsv, calibration_inputs.tsv, calibration.png, calibration.json to %s", outdir)
    return outdir


# ---------------------------------------------------------------------------------------------
# knn


def run_knn(args: argparse.Namespace) -> Path:
    """``knn``: classify labelled test sequences by nearest interpreted exemplars."""
    import numpy as np

    from kipoi_maxent import inputs as input_sources
    from kipoi_maxent.denovo import knn_accuracy, load_pca, pm_encode
    from kipoi_maxent.outputs import write_json

    for option in ("positives", "negatives", "test_positives", "test_negatives", "output"):
        if not getattr(args, option):
            raise ValueError(f"knn needs --{option.replace('_', '-')}")

    def exemplars(path):
        path = Path(path)
        return load_pca(path / "pca.npz" if path.is_dir() else path)

    pos_names, positives, control = exemplars(args.positives)
    neg_names, negatives, _ = exemplars(args.negatives)
    if not positives or not negatives:
        raise ValueError("knn needs at least one positive and one negative exemplar")
    length = len(positives[0].mean)

    def test_set(path):
        if Path(path).suffix.lower() in (".bed", ".bed.gz") or str(path).endswith(".bed"):
            if not args.fasta:
                raise ValueError(f"{path} is a BED file: give the genome with --fasta")
            items = input_sources.bed_inputs(path, args.fasta, length)
        else:
            items = input_sources.fasta_inputs(path, length)
        return pm_encode(np.stack([item.codes for item in items]))

    test_pos, test_neg = test_set(args.test_positives), test_set(args.test_negatives)
    exemplar_pcas = positives + negatives
    labels = np.array([1] * len(positives) + [0] * len(negatives))
    test = np.concatenate([test_pos, test_neg])
    truth = np.array([1] * len(test_pos) + [0] * len(test_neg))
    accuracy = knn_accuracy(exemplar_pcas, labels, test, truth, control=control, n_neighbors=args.neighbors)
    outdir = Path(args.output)
    outdir.mkdir(parents=True, exist_ok=True)
    result = {"exemplars": {"positive": len(positives), "negative": len(negatives)},
              "test": {"positive": int(len(test_pos)), "negative": int(len(test_neg))},
              "neighbors": args.neighbors, **accuracy._asdict()}
    write_json(result, outdir / "knn.json")
    print(f"k-NN accuracy with the lowest-variance components: {accuracy.components:.3f}; "
          f"random orthonormal control: {accuracy.control:.3f}")
    return outdir


# ---------------------------------------------------------------------------------------------
# plugins


def run_plugins(args: argparse.Namespace) -> None:
    from kipoi_maxent.plugin.manager import describe, plugin_manager

    print("plugins:")
    for name, origin, hooks in describe():
        print(f"  {name:32s} {origin:28s} {', '.join(hooks)}")
    print("output writers:")
    for writer in _writers(None):
        print(f"  {writer.name:14s} {writer.description}")
    print("global features (for an input length of 100 bp):")
    for features in plugin_manager().hook.kipoi_maxent_features(length=100):
        for feature in features:
            print(f"  {feature.name}")


COMMANDS = {
    "sample": (_sample_parser, run_sample, "sample each input's maximum-entropy distribution; write tracks, "
               "motif calls, feature importance, report"),
    "denovo": (lambda prog: _sample_parser(prog, denovo=True), run_denovo,
               "sample, plus PCA of each input's samples (de novo features, pca.npz)"),
    "knn": (_knn_parser, run_knn, "nearest-neighbour check of de novo features on a labelled test set"),
    "calibrate": (_calibrate_parser, run_calibrate, "sample a beta grid on a few inputs; recommend beta"),
    "plugins": (_plugins_parser, run_plugins, "list plugins, backends, features and output writers"),
}


def main(argv: list[str] | None = None, prog: str = "kipoi-maxent") -> int:
    """Entry point of ``kipoi-maxent``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = "\n".join(f"  {name:10s} {help_}" for name, (_, _, help_) in COMMANDS.items())
    top = argparse.ArgumentParser(
        prog=prog,
        description="Maximum-entropy interpretation of Kipoi DNA models (Finnegan & Song).",
        usage=f"{prog} <command> [-h] ...\n\ncommands:\n{commands}",
    )
    top.add_argument("command", choices=list(COMMANDS), help="subcommand")
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        top.print_usage(sys.stderr)
        print(f"{prog}: error: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    make_parser, run, _ = COMMANDS[argv[0]]
    parser = make_parser(f"{prog} {argv[0]}")
    debug = "--debug" in argv
    try:
        args = _apply_config(parser, argv[1:])
        _setup_logging(args.quiet)
        run(args)
    except (ValueError, FileNotFoundError, PermissionError) as error:
        if debug:
            raise
        print(f"{prog} {argv[0]}: error: {error}", file=sys.stderr)
        return 2
    return 0


def cli_main(command: str, raw_args: list[str]) -> None:
    """Kipoi's plugin entry: ``kipoi maxent ARGS`` and ``kipoi postproc maxent ARGS``."""
    args = list(raw_args)
    if args and args[0] == "maxent":  # `kipoi postproc maxent …` passes the plugin name on
        args = args[1:]
    sys.exit(main(args, prog="kipoi maxent"))
