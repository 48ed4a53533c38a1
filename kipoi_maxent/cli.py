"""Command line: ``kipoi maxent …``, ``kipoi postproc maxent …``, ``kipoi-maxent …``,
``python -m kipoi_maxent …``. A thin layer over :mod:`kipoi_maxent.api`."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import yaml

logger = logging.getLogger("kipoi_maxent")

#: Options of ``sample`` whose values are paths; in a ``--config`` file they are relative to it.
_PATH_OPTIONS = ("spec", "intervals", "fasta", "sequences")


def _sample_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Sample, by MCMC, the maximum-entropy distribution of sequences whose penultimate-layer "
            "activations stay close to each input's (Finnegan & Song), and write per-base "
            "importance and motif calls as genome-browser tracks."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_argument_group("model (Kipoi conventions)")
    model.add_argument("model", nargs="?", help="Kipoi model: a zoo name, or a model directory with --source dir")
    model.add_argument("--source", default="kipoi", help="Kipoi model source: kipoi, dir, or a configured source")
    model.add_argument("--spec", help="model spec YAML (penultimate layer, output units, input layout); "
                       "default: a shipped spec matching the model name, else inferred from the model")
    model.add_argument("--dataloader", help="Kipoi dataloader to read inputs with (default: the model's default dataloader)")
    model.add_argument("--dataloader_source", default="kipoi", help="source of --dataloader")
    model.add_argument("--dataloader_args", nargs="+",
                       help="dataloader arguments: a JSON string, a JSON file, or key=value pairs (as `kipoi predict`)")
    inputs = parser.add_argument_group("inputs (give one of: --intervals with --fasta, --sequences, --dataloader_args)")
    inputs.add_argument("--intervals", help="BED file of intervals, resized around their centre to the model's length")
    inputs.add_argument("--fasta", help="genome FASTA the intervals refer to; also sets mu (see --mu)")
    inputs.add_argument("--sequences", help="FASTA of plain sequences of the model's length (no coordinates)")
    sampler = parser.add_argument_group("sampler (METHOD §3)")
    sampler.add_argument("--beta", type=float, default=400.0,
                         help="constraint strength β; network-specific: calibrate it (too high freezes chains, "
                         "too low constrains nothing)")
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
    sampler.add_argument("--engine", choices=("auto", "naive", "incremental"), default="auto",
                         help="how proposals are evaluated: naive = a full forward pass each (the paper's); "
                         "incremental = update only the mutated window (Conv1D → Flatten → Dense nets); "
                         "auto = incremental when the model qualifies. Same samples either way")
    sampler.add_argument("--batch-size", type=int, help="inputs per batched forward call (default ~1000 chains; "
                         "does not change results)")
    output = parser.add_argument_group("output")
    output.add_argument("-o", "--output", help="output directory (created)")
    output.add_argument("--motif-width", type=int, default=19, help="width of the motif-call window (bp)")
    parser.add_argument("--config", help="YAML file of option values (keys as the long options, '-' or '_'); "
                        "command-line options override it; its paths are relative to the file")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or info messages")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def _apply_config(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` with the defaults taken from ``--config`` (if any)."""
    first = parser.parse_args(argv)
    if not first.config:
        return first
    config_path = Path(first.config)
    try:
        values = yaml.safe_load(config_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read config {config_path}: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config {config_path} must be a mapping of option: value")
    known = {action.dest for action in parser._actions}
    defaults = {}
    for key, value in values.items():
        dest = key.replace("-", "_")
        if dest == "outdir":
            dest = "output"
        if dest not in known:
            raise ValueError(f"config {config_path}: unknown option {key!r}")
        if dest in _PATH_OPTIONS or (dest == "model" and values.get("source") == "dir"):
            value = str((config_path.parent / value).resolve()) if value is not None else None
        defaults[dest] = value
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kipoi-maxent: %(message)s"))
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def run_sample(args: argparse.Namespace) -> Path:
    """``sample``: everything after argument parsing. Returns the output directory."""
    import numpy as np

    from kipoi_maxent import __version__, api, inputs as input_sources, outputs
    from kipoi_maxent.genome_composition import cached_base_counts, gc_chemical_potential
    from kipoi_maxent.samplers import SamplerConfig, make_engine
    from kipoi_maxent.sequence import ALPHABET, background_probabilities
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
    started = time.time()

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
        base_frequencies = counts.base_frequencies
        gc_fraction = counts.gc_fraction
    if args.mu != "auto":
        mu = float(args.mu)
        mu_source = "--mu"
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
    config = SamplerConfig(beta=args.beta, mu=mu, chains=args.chains, steps=args.steps,
                           thin=args.thin, burnin=args.burnin, seed=args.seed, sampler=args.sampler)

    spec = load_spec(args.spec) if args.spec else None
    resolved = api.resolve_model(args.model, spec, source=args.source, base_frequencies=base_frequencies)
    length = resolved.sequence_length
    if args.intervals:
        items = input_sources.bed_inputs(args.intervals, args.fasta, length)
    elif args.sequences:
        items = input_sources.fasta_inputs(args.sequences, length)
    else:
        kipoi_model = api.load_model(args.model, args.source)
        if args.dataloader:
            import kipoi

            factory = kipoi.get_dataloader_factory(args.dataloader, source=args.dataloader_source)
        else:
            factory = kipoi_model.default_dataloader
        items = input_sources.dataloader_inputs(factory, dataloader_args, resolved.encoder)

    outdir = Path(args.output)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot create output directory {outdir}: {error.strerror}") from None

    logger.info("model %s: penultimate layer %s, %d units; %d bp inputs; beta = %g, %d chains x %d steps",
                args.model, resolved.network.layer, len(resolved.weights), length, config.beta,
                config.chains, config.steps)
    engine, fallback = make_engine(args.engine, resolved)
    logger.info("engine: %s%s; sampler: %s", engine.name,
                f" (incremental not possible: {fallback})" if fallback else "", config.sampler)
    results = list(api.iter_sample(resolved, items, config, motif_width=args.motif_width,
                                   batch_size=args.batch_size, keep_samples=False, progress=not args.quiet,
                                   engine=engine))
    if not results:
        raise ValueError("no input to interpret: the input file is empty")
    rows = [outputs.summary_row(r, config.beta, config.mu) for r in results]
    outputs.write_summary(rows, outdir / "summary.tsv")
    outputs.write_motifs_bed(rows, outdir / "motifs.bed")
    outputs.write_importance_bedgraph(((r.chrom, r.start, r.importance) for r in results),
                                      outdir / "importance.bedGraph")
    outputs.write_frequencies(results, outdir / "frequencies.npz")
    outputs.write_json(
        {
            "kipoi_maxent_version": __version__,
            "command": sys.argv,
            "model": args.model,
            "source": args.source,
            "spec": resolved.spec.to_dict(),
            "inferred": resolved.inferred,
            "penultimate_layer": resolved.network.layer,
            "framework": resolved.network.framework,
            "inputs": {"intervals": args.intervals, "fasta": args.fasta, "sequences": args.sequences,
                       "dataloader": args.dataloader, "dataloader_args": dataloader_args, "n_inputs": len(results)},
            "sampler": {**config.__dict__, "engine": engine.name, "engine_fallback_reason": fallback,
                        "draws_per_chain": config.draws_per_chain},
            "mu": mu, "mu_source": mu_source, "gc_fraction": gc_fraction,
            "motif_width": args.motif_width,
            "background": dict(zip(ALPHABET, np.round(background_probabilities(mu), 6).tolist())),
            "versions": _versions(),
            "runtime_seconds": round(time.time() - started, 2),
        },
        outdir / "run.json",
    )
    _warn_about_beta(results)
    logger.info("wrote summary.tsv, motifs.bed, importance.bedGraph, frequencies.npz, run.json to %s", outdir)
    return outdir


def _warn_about_beta(results) -> None:
    """Tell the user when β is off the network's scale (frozen or unconstrained chains)."""
    import numpy as np

    acceptance = np.array([r.acceptance_rate for r in results])
    frozen = int((acceptance < 0.01).sum())
    if frozen:
        logger.warning(
            "%d of %d input(s) have acceptance < 1%%: chains are frozen and importance is high "
            "everywhere; beta is too large for this network's distance scale. Lower --beta "
            "(try a grid, e.g. 400, 100, 25) until acceptance rises and importance concentrates.",
            frozen, len(results))
    unconstrained = int(sum(np.nanmax(r.importance) < 0.1 for r in results))
    if unconstrained:
        logger.warning(
            "%d of %d input(s) have no position with KL > 0.1 bit: nothing is constrained; beta "
            "may be too small (or too few steps). Raise --beta.", unconstrained, len(results))


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("kipoi_maxent", "kipoi", "kipoiseq", "tensorflow", "keras", "numpy", "pyfaidx", "pybedtools"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    found["python"] = sys.version.split()[0]
    return found


COMMANDS = {"sample": (_sample_parser, run_sample)}


def main(argv: list[str] | None = None, prog: str = "kipoi-maxent") -> int:
    """Entry point of ``kipoi-maxent``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(
        prog=prog,
        description="Maximum-entropy interpretation of Kipoi DNA models (Finnegan & Song).",
        usage=f"{prog} <command> [-h] ...\n\ncommands:\n  sample   sample each input's maximum-entropy "
        "distribution; write importance tracks and motif calls",
    )
    top.add_argument("command", choices=sorted(COMMANDS), help="subcommand")
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        top.print_usage(sys.stderr)
        print(f"{prog}: error: unknown command {argv[0]!r}; choose from {', '.join(sorted(COMMANDS))}", file=sys.stderr)
        return 2
    make_parser, run = COMMANDS[argv[0]]
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
