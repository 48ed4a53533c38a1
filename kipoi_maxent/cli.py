"""Command line: ``kipoi maxent …``, ``kipoi postproc maxent …``, ``kipoi-maxent …``,
``python -m kipoi_maxent …``: argument parsing over :mod:`kipoi_maxent.runner`.

Commands: ``sample`` (:func:`~kipoi_maxent.runner.run`), ``denovo`` (``sample`` plus PCA of
the samples), ``calibrate`` (:func:`~kipoi_maxent.runner.calibrate`), ``knn``
(:func:`~kipoi_maxent.runner.knn`), ``plugins`` (list extensions).

Nothing heavy is imported before the options and inputs are checked, so a bad input is one
line on stderr and exit code 2 within a second or two.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from kipoi_maxent.runner import ENGINES, SAMPLERS, RunOptions

logger = logging.getLogger("kipoi_maxent")

#: Options whose values are paths; in a ``--config`` file they are relative to it.
_PATH_OPTIONS = ("spec", "intervals", "fasta", "sequences", "features_file", "positives", "negatives",
                 "test_positives", "test_negatives")
#: Options that are not :class:`~kipoi_maxent.runner.RunOptions` fields.
_NOT_RUN_OPTIONS = {"config", "quiet", "verbose", "debug", "model", "source", "spec", "output_units", "dataloader",
                    "dataloader_source", "dataloader_args", "intervals", "fasta", "sequences", "output",
                    "no_annotation", "components", "max_inputs"}


def _default(option: str):
    """The default of a :class:`~kipoi_maxent.runner.RunOptions` field (one place for each)."""
    return RunOptions.__dataclass_fields__[option].default


def _new_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", help="YAML file of option values (keys as the long options, '-' or '_'); "
                        "command-line options override it; its paths are relative to the file")
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("--quiet", action="store_true", help="only warnings and errors (no progress, no info)")
    talk.add_argument("--verbose", action="store_true",
                      help="also show what TensorFlow, PyTorch, Kipoi and Dask print (hidden by default)")
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


def _add_sampler_options(parser: argparse.ArgumentParser, beta_help: str,
                         beta_default: str = _default("beta")) -> None:
    sampler = parser.add_argument_group("sampler (METHOD §3)")
    sampler.add_argument("--beta", default=beta_default, help=beta_help)
    sampler.add_argument("--mu", default=_default("mu"),
                         help="GC chemical potential μ: 'auto' = ln(f/(1-f)) with f the GC fraction of the "
                         "--fasta genome (0 without one), or a number; 0 gives the plain distribution (eq. 3)")
    sampler.add_argument("--gc-fraction", type=float, help="use this genome GC fraction f for μ instead of counting --fasta")
    sampler.add_argument("--chains", default=_default("chains"),
                         help="chains per input, each started at the input (4: the number R-hat <= 1.01 and "
                         "ESS >= 400 are set for; the paper ran 100 x 30000 steps)")
    sampler.add_argument("--steps", default=_default("steps"),
                         help="proposals per chain; 'auto': until the input's chains converge (rank R-hat ≤ 1.01, bulk "
                         "and tail ESS ≥ 400 for the distance and GC traces; the first half is discarded)")
    sampler.add_argument("--max-steps", default=_default("max_steps"),
                         help="limit of --steps auto, proposals per chain (default 5 000 000: the slowest input of "
                         "the CTCF demo, whose motif switches slowly between bound and melted, converges after 4.7 "
                         "million)")
    sampler.add_argument("--thin", default=None, help="keep every THIN-th state (fixed --steps; default 100, or "
                         "less so that 100 states per chain are kept)")
    sampler.add_argument("--burnin", default=None, help="proposals per chain discarded first (fixed --steps; default: half "
                         "of them; 0 for the paper's exact protocol)")
    sampler.add_argument("--seed", default=_default("seed"), help="random seed; fixes every output")
    sampler.add_argument("--sampler", choices=SAMPLERS, default=_default("sampler"),
                         help="metropolis: the paper's (uniform alternative base, Metropolis rule); gibbs: "
                         "heat bath over the four bases at the position (both exact)")
    sampler.add_argument("--engine", choices=ENGINES, default=_default("engine"),
                         help="how proposals are evaluated: naive = a full forward pass each (the paper's); "
                         "fused = whole blocks of steps in one compiled call, updating only what a mutation "
                         "changes in each chain (Conv1D → Flatten → Dense nets); incremental = its predecessor "
                         "(same nets); windowed = recompute only the affected window of every conv/pool layer "
                         "(deeper conv nets); auto = the first of fused, incremental, windowed that qualifies, "
                         "else naive. Same samples either way")
    sampler.add_argument("--batch-size", default=None, help="inputs sampled together (default ~1000 chains; "
                         "does not change results)")


def _sample_parser(prog: str, denovo: bool = False) -> argparse.ArgumentParser:
    parser = _new_parser(prog, (
        "Sample, by MCMC, the maximum-entropy distribution of sequences whose penultimate-layer activations "
        "stay close to each input's (Finnegan & Song), and write per-base importance, motif calls, global-"
        "feature importance, periodicity and a report." + (
            " denovo also writes pca.npz: per input, the lowest-variance principal components of the "
            "±1-encoded samples (G, C = +1; A, T = -1), the de novo features of METHOD §7." if denovo else "")))
    _add_model_options(parser)
    _add_sampler_options(parser, "constraint strength β: 'auto' (the paper's distance rule on a short pilot, "
                         "cached per model), a number, or several comma-separated (each run goes to "
                         "OUTDIR/beta_<β>/)")
    parser.add_argument("--pilot-inputs", default=_default("pilot_inputs"),
                        help="--beta auto: inputs of the pilot, spread evenly over the inputs")
    analysis = parser.add_argument_group("analyses")
    analysis.add_argument("--motif-width", default=_default("motif_width"), help="width of the motif-call window (bp)")
    analysis.add_argument("--features", help="global features to score by δ, comma-separated: gc (built in), "
                          "names declared under 'features:' in --config or in --features-file, or from plugins "
                          "(default: every declared feature)")
    analysis.add_argument("--features-file", help="YAML list of feature declarations {name, bases, window, weights}")
    analysis.add_argument("--dummies", default=_default("dummies"), help="random dummy features for the δ percentile")
    analysis.add_argument("--importance-percentile", default=_default("importance_percentile"),
                          help="a feature is important when its δ exceeds this percentile of the dummies'")
    analysis.add_argument("--periodicity-bases", default=_default("periodicity_bases"),
                          help="base set of the Fourier signal (fourier.tsv)")
    analysis.add_argument("--jaspar-release", default=_default("jaspar_release"),
                          help="JASPAR release to annotate motif calls with")
    analysis.add_argument("--jaspar-taxon", default=_default("jaspar_taxon"),
                          help="JASPAR taxonomic group (e.g. vertebrates, insects, plants, fungi), or 'all'")
    analysis.add_argument("--no-annotation", action="store_true", help="do not match motif calls against JASPAR")
    if denovo:
        analysis.add_argument("--components", default=5, help="lowest-variance principal components kept")
    output = parser.add_argument_group("output")
    output.add_argument("-o", "--output", help="output directory: new, empty, or one of kipoi_maxent's runs")
    output.add_argument("--save-samples", action="store_true", help="also write samples.h5 (all samples; large)")
    output.add_argument("--frequency-tracks", action="store_true",
                        help="also write per-base frequency bigWigs frequency_A.bw … frequency_T.bw")
    output.add_argument("--report-top", default=_default("report_top"),
                        help="inputs shown in report.html (top by motif score)")
    output.add_argument("--writers", help="comma-separated output writers to run (default: all; see kipoi maxent plugins)")
    execution = parser.add_argument_group("execution (results never depend on these)")
    execution.add_argument("--workers", default=None, help="run chunks on a local Dask cluster of this many processes")
    execution.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://HOST:PORT) to run chunks on")
    execution.add_argument("--chunk-size", default=_default("chunk_size"),
                           help="inputs per chunk (unit of resuming and of Dask tasks)")
    execution.add_argument("--overwrite", action="store_true",
                           help="replace the results of a different kipoi_maxent run in the output directory "
                           "(never files kipoi_maxent did not write)")
    return parser


def _calibrate_parser(prog: str) -> argparse.ArgumentParser:
    parser = _new_parser(prog, (
        "Choose β for a network (METHOD §8): sample a subset of inputs at each β of a grid and report the "
        "sample distance, its z-score against the distance to the nearest other input, the minimum "
        "per-position entropy and the acceptance; recommend β by the paper's two rules and by --beta auto's."))
    _add_model_options(parser)
    _add_sampler_options(parser, "comma-separated β grid", beta_default="10,40,160,640")
    parser.set_defaults(steps=5000, thin=10)
    parser.add_argument("--max-inputs", default=20, help="inputs (the first ones) sampled per β")
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
    parser.add_argument("--neighbors", default=10, help="neighbours that vote")
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


def _setup_logging(args: argparse.Namespace) -> None:
    from kipoi_maxent import _quiet

    _quiet.set_verbose(args.verbose)
    handler = _quiet.OwnStderrHandler()
    handler.setFormatter(logging.Formatter("kipoi-maxent: %(message)s"))
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)


def _model_and_inputs(args: argparse.Namespace) -> dict:
    return {"source": args.source, "spec": args.spec, "output_units": args.output_units,
            "intervals": args.intervals, "fasta": args.fasta, "sequences": args.sequences,
            "dataloader_args": args.dataloader_args, "dataloader": args.dataloader,
            "dataloader_source": args.dataloader_source}


def _run_options(args: argparse.Namespace) -> dict:
    """The :class:`~kipoi_maxent.runner.RunOptions` among the parsed options."""
    options = {key: value for key, value in vars(args).items() if key not in _NOT_RUN_OPTIONS}
    options["annotate"] = not args.no_annotation
    options["progress"] = not args.quiet
    if getattr(args, "components", None) is not None:
        options["pca_components"] = args.components
    return options


def run_sample(args: argparse.Namespace) -> None:
    """``sample`` and ``denovo``."""
    from kipoi_maxent.runner import run

    if not args.output:
        raise ValueError("no output directory given: pass -o OUTDIR")
    run(args.model, output=args.output, **_model_and_inputs(args), **_run_options(args))


def run_calibrate(args: argparse.Namespace) -> None:
    from kipoi_maxent.runner import calibrate

    if not args.output:
        raise ValueError("no output directory given: pass -o OUTDIR")
    options = {key: value for key, value in vars(args).items() if key not in _NOT_RUN_OPTIONS and key != "beta"}
    options["progress"] = not args.quiet
    recommendation, automatic = calibrate(args.model, output=args.output, betas=args.beta, max_inputs=args.max_inputs,
                                          **_model_and_inputs(args), **options)
    print(recommendation.explanation)
    print(f"beta by the distance rule: {recommendation.by_distance}; by the entropy rule: {recommendation.by_entropy}")
    print(f"--beta auto's rule: {automatic.beta if automatic.beta is not None else 'outside the grid'} "
          f"({automatic.explanation})")


def run_knn(args: argparse.Namespace) -> None:
    from kipoi_maxent.runner import knn

    result = knn(positives=args.positives, negatives=args.negatives, test_positives=args.test_positives,
                 test_negatives=args.test_negatives, output=args.output, fasta=args.fasta, neighbors=args.neighbors)

    def with_interval(name):
        low, high = result[f"{name}_interval"]
        return f"{result[name]:.3f} (95 % CI {low:.3f}-{high:.3f})"

    line = f"k-NN accuracy with the lowest-variance components: {with_interval('components')}"
    if result["control"] is not None:
        line += (f"; random orthonormal control: {with_interval('control')}; "
                 f"paired McNemar p = {result['paired_p']:.2g}")
    print(line)


def run_plugins(args: argparse.Namespace) -> None:
    from kipoi_maxent.plugin.manager import describe, plugin_manager
    from kipoi_maxent.runner import writers

    print("plugins:")
    for name, origin, hooks in describe():
        print(f"  {name:32s} {origin:28s} {', '.join(hooks)}")
    print("output writers:")
    for writer in writers(None):
        print(f"  {writer.name:14s} {writer.description}")
    print("global features (for an input length of 100 bp):")
    for features in plugin_manager().hook.kipoi_maxent_features(length=100):
        for feature in features:
            print(f"  {feature.name}")


COMMANDS = {
    "sample": (_sample_parser, run_sample, "sample each input's maximum-entropy distribution; write tracks, "
               "motif calls, feature importance, report"),
    "denovo": (lambda prog: _sample_parser(prog, denovo=True), run_sample,
               "sample, plus PCA of each input's samples (de novo features, pca.npz)"),
    "knn": (_knn_parser, run_knn, "nearest-neighbour check of de novo features on a labelled test set"),
    "calibrate": (_calibrate_parser, run_calibrate, "sample a beta grid on a few inputs; recommend beta"),
    "plugins": (_plugins_parser, run_plugins, "list plugins, backends, features and output writers"),
}


def main(argv: list[str] | None = None, prog: str = "kipoi-maxent") -> int:
    """Entry point of ``kipoi-maxent``; returns the exit code."""
    from kipoi_maxent.fileio import sigterm_raises

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
    make_parser, command, _ = COMMANDS[argv[0]]
    parser = make_parser(f"{prog} {argv[0]}")
    debug = "--debug" in argv
    try:
        with sigterm_raises():
            args = _apply_config(parser, argv[1:])
            _setup_logging(args)
            command(args)
    except (ValueError, FileNotFoundError, PermissionError) as error:
        if debug:
            raise
        message = " ".join(str(error).split("\n"))
        print(f"{prog} {argv[0]}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog} {argv[0]}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


def cli_main(command: str, raw_args: list[str]) -> None:
    """Kipoi's plugin entry: ``kipoi maxent ARGS`` and ``kipoi postproc maxent ARGS``."""
    args = list(raw_args)
    if args and args[0] == "maxent":  # `kipoi postproc maxent …` passes the plugin name on
        args = args[1:]
    sys.exit(main(args, prog="kipoi maxent"))
