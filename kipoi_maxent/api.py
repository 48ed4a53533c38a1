"""The Python API: ``sample(model, sequences, ...)``. The CLI is a thin layer over it."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from kipoi_maxent import diagnostics
from kipoi_maxent._progress import Progress
from kipoi_maxent._quiet import framework_output_hidden
from kipoi_maxent._validation import check_codes, check_number
from kipoi_maxent.backends import PenultimateModel
from kipoi_maxent.energy import output_unit_weights
from kipoi_maxent.inputs import SequenceInput
from kipoi_maxent.plugin.manager import plugin_manager
from kipoi_maxent.samplers import SamplerConfig, make_engine, run_chains
from kipoi_maxent.sequence import background_probabilities, encode
from kipoi_maxent.spec import (AUTO, InputEncoder, ModelSpec, find_spec, format_layout, infer_layout,
                               resolve_normalization)
from kipoi_maxent.statistics import MotifCall, kl_divergence, motif_window, nucleotide_frequencies

logger = logging.getLogger(__name__)

#: Rows per forward call. Every call has exactly this many rows (the last one padded), so a
#: sequence's activations never depend on which other sequences share its batch: the
#: framework picks its kernels by batch shape, and different kernels round differently.
FORWARD_ROWS = 256


@dataclass(frozen=True)
class ResolvedModel:
    """A network ready for sampling: Φ on integer codes and the distance weights.

    Attributes
    ----------
    network : PenultimateModel
    spec : ModelSpec
        Fully resolved (no ``auto`` left).
    encoder : InputEncoder
    weights : np.ndarray, shape (k,)
    inferred : list of str
        What was inferred from the model rather than read from a spec, for the user.
    """

    network: PenultimateModel
    spec: ModelSpec
    encoder: InputEncoder
    weights: np.ndarray
    inferred: list = field(default_factory=list)

    @property
    def sequence_length(self) -> int:
        return self.spec.sequence_length

    def penultimate(self, codes: np.ndarray) -> np.ndarray:
        """Φ of integer-coded sequences: ``(n, L)`` int8 -> ``(n, k)`` float64."""
        codes = np.asarray(codes, dtype=np.int8)
        phi = np.empty((len(codes), len(self.weights)))
        padded = np.zeros((FORWARD_ROWS, codes.shape[1]), dtype=np.int8)
        for start in range(0, len(codes), FORWARD_ROWS):
            block = codes[start:start + FORWARD_ROWS]
            padded[: len(block)] = block
            padded[len(block):] = 0
            phi[start:start + len(block)] = np.asarray(self.network.activations(self.encoder.encode(padded)))[: len(block)]
        if not np.all(np.isfinite(phi)):
            raise ValueError(
                "the network produced non-finite penultimate activations (NaN or inf); check the "
                "input normalisation in the spec and the model weights"
            )
        return phi


def penultimate_model(kipoi_model, spec: ModelSpec | str | int = "auto") -> PenultimateModel:
    """Ask the backends (plugins implementing ``kipoi_maxent_backend``: third-party ones first,
    then Keras, PyTorch, and the generic Kipoi fallback last) for ``kipoi_model``'s
    :class:`PenultimateModel`; the first answer wins.

    Parameters
    ----------
    kipoi_model : Kipoi model (or a bare ``keras.Model``)
    spec : ModelSpec, or str or int
        The model spec; a bare layer name or index stands for ``ModelSpec(penultimate_layer=...)``
        (no ``output_weights``). Default: ``"auto"``.
    """
    if not isinstance(spec, ModelSpec):
        spec = ModelSpec(penultimate_layer=spec)
    network = plugin_manager().hook.kipoi_maxent_backend(kipoi_model=kipoi_model, spec=spec)
    if network is not None:
        return network
    raise ValueError(
        f"no backend for Kipoi model type {type(kipoi_model).__name__}: kipoi_maxent supports Keras 3 / "
        "TensorFlow models, PyTorch models (a torch.nn.Module in the Kipoi model's .model attribute), and "
        "any Kipoi model with predict_activation_on_batch(x, layer) given output_weights in the spec; "
        "other frameworks can be added by a plugin (kipoi_maxent_backend hook)"
    )


def load_model(model, source: str = "kipoi"):
    """A Kipoi model object from a zoo name or a local model directory (``source="dir"``)."""
    if not isinstance(model, str):
        return model
    import kipoi

    try:
        return kipoi.get_model(model, source=source)
    except Exception as error:  # Kipoi raises bare Exceptions for unknown models and sources
        raise ValueError(f"cannot load Kipoi model {model!r} (source {source!r}): {error}") from None


def resolve_model(
    model,
    spec: ModelSpec | None = None,
    *,
    source: str = "kipoi",
    base_frequencies: np.ndarray | None = None,
) -> ResolvedModel:
    """Load (if needed) a Kipoi model and resolve its spec against it.

    Parameters
    ----------
    model : str or Kipoi model
        Zoo name, local model directory (with ``source="dir"``), or a loaded model.
    spec : ModelSpec, optional
        Default: the shipped spec whose ``models`` match the model name, else all ``auto``.
    base_frequencies : np.ndarray, shape (4,), optional
        Genome A, C, G, T frequencies, needed by ``bernoulli`` input normalisation.
    """
    with framework_output_hidden():
        return _resolve(model, spec, source, base_frequencies)


def _resolve(model, spec, source, base_frequencies) -> ResolvedModel:
    name = model if isinstance(model, str) else type(model).__name__
    kipoi_model = load_model(model, source)
    inferred = []
    if spec is None:
        spec = (find_spec(model) if isinstance(model, str) else None) or ModelSpec()
        if spec.source != "inferred":
            inferred.append(f"spec {spec.source} (matched model name {name!r})")
    network = penultimate_model(kipoi_model, spec)
    if spec.penultimate_layer == AUTO:
        inferred.append(f"penultimate layer: {network.layer}")

    layout = spec.layout
    if layout is None:
        layout = infer_layout(network.input_shape)
        inferred.append(f"input layout {layout} from the model input shape {network.input_shape}")
    # the fixed axes first: a channels-first layout on a channels-last model is a layout error,
    # whatever sequence_length says
    if len(layout) != len(network.input_shape) or any(
            axis != "L" and size is not None and size != axis for axis, size in zip(layout, network.input_shape)):
        raise ValueError(
            f"spec {spec.source}: input.layout {format_layout(layout)} does not match the model's input shape "
            f"{network.input_shape}; give the shape without the batch axis, L for the sequence axis, "
            "e.g. (L, 4) for channels-last or (4, L) for channels-first"
        )
    length = network.input_shape[layout.index("L")]
    if spec.sequence_length is None:
        if length is None:
            raise ValueError("the model's input length is not fixed; set sequence_length in the spec")
        inferred.append(f"sequence length {length} bp")
    elif length is not None and spec.sequence_length != length:
        raise ValueError(
            f"spec {spec.source}: sequence_length {spec.sequence_length} does not match the "
            f"model's input shape {network.input_shape} (layout {layout})"
        )
    length = spec.sequence_length or length
    expected = tuple(length if a == "L" else a for a in layout)
    if tuple(s if s is not None else length for s in network.input_shape) != expected:
        raise ValueError(
            f"spec {spec.source}: input.layout {layout} does not match the model's input shape "
            f"{network.input_shape}"
        )

    n_outputs = network.output_kernel.shape[1]
    units = spec.output_units
    if units is None:
        if n_outputs > 2:
            raise ValueError(
                f"the model has {n_outputs} output units: choose the one(s) to interpret with "
                "output_units in a spec (--spec): [o] or [a, b]"
            )
        units = (0,) if n_outputs == 1 else (1, 0)
        inferred.append(f"output units {list(units)} ({'unit 1 minus unit 0' if n_outputs == 2 else 'the single unit'})")
    weights = output_unit_weights(network.output_kernel, units)
    if not np.all(np.isfinite(weights)):
        raise ValueError(
            f"the output layer's weights into unit(s) {list(units)} are not finite (NaN or inf): the model file "
            "is broken (e.g. its training diverged); retrain or re-export it")

    center, scale = resolve_normalization(spec.normalization, base_frequencies, spec.alphabet)
    encoder = InputEncoder(spec.alphabet, layout, center, scale)
    spec = replace(spec, output_units=tuple(units), sequence_length=int(length), layout=layout)
    for message in inferred:
        logger.info("inferred %s", message)
    return ResolvedModel(network, spec, encoder, weights, inferred)


class IntervalResult(NamedTuple):
    """Samples and statistics of one input.

    Attributes
    ----------
    name, chrom, start, end :
        Identity and genome coordinates (0-based half-open) of the input.
    frequencies : np.ndarray, shape (L, 4)
        Sample base frequencies, A, C, G, T.
    importance : np.ndarray, shape (L,)
        KL divergence (bits) of ``frequencies`` from the background q; NaN at unknown bases.
    motif : MotifCall
        Window of largest mean importance, input coordinates.
    acceptance_rate, mean_distance, sd_distance : float
    samples : np.ndarray, shape (chains, draws, L), int8, or None when not kept
    distances : np.ndarray, shape (chains, draws)
    reference : np.ndarray, shape (L,), int8
        The input x0 (codes; -1 = unknown base).
    reference_activations : np.ndarray, shape (k,)
        Φ(x0).
    steps : int
        Proposals per chain run for this input.
    converged : bool or None
        Whether its chains passed the convergence rule (``steps="auto"`` runs; None otherwise).
    """

    name: str
    chrom: str
    start: int
    end: int
    frequencies: np.ndarray
    importance: np.ndarray
    motif: MotifCall
    acceptance_rate: float
    mean_distance: float
    sd_distance: float
    samples: np.ndarray | None
    distances: np.ndarray
    reference: np.ndarray
    reference_activations: np.ndarray
    steps: int
    converged: bool | None


def iter_sample(
    resolved: ResolvedModel,
    inputs: Iterable[SequenceInput],
    config: SamplerConfig,
    *,
    motif_width: int = 19,
    batch_size: int | None = None,
    keep_samples: bool = True,
    engine="auto",
    first_index: int = 0,
    progress: Callable[..., None] | None = None,
) -> Iterator[IntervalResult]:
    """Sample every input, yielding results in input order as batches finish.

    ``batch_size`` inputs (default: enough for ~1000 chains) are sampled together; outputs do
    not depend on it. ``first_index`` is the index of the first input in the whole run
    (inputs' random streams are seeded by their index, so a run cut into chunks gives the same
    samples as one piece). ``engine``: ``auto`` (the fastest engine that runs the model),
    ``naive`` (the paper's full forward pass per proposal), ``incremental``, ``windowed``, or
    an engine object (:func:`~kipoi_maxent.samplers.make_engine`). With ``config.steps ==
    "auto"`` each input runs until its chains pass :func:`kipoi_maxent.diagnostics.converged`.
    ``progress`` is called as ``progress(proposals=…, running=…)`` while sampling and
    ``progress(done=…, converged=…)`` as inputs stop (:func:`~kipoi_maxent.samplers.mcmc.run_chains`).
    """
    length = resolved.sequence_length
    check_number(motif_width, "motif width", integer=True, minimum=1, maximum=length,
                 hint="the motif window cannot be longer than the input")
    batch_size = batch_size or max(1, 1000 // config.chains)
    check_number(batch_size, "batch size", integer=True, minimum=1)
    background = background_probabilities(config.mu)
    if isinstance(engine, str):
        engine, fallback = make_engine(engine, resolved)
        logger.info("engine: %s%s, sampler: %s", engine.name,
                    f" (incremental engine not possible: {fallback})" if fallback else "", config.sampler)
    batch: list[SequenceInput] = []
    index = first_index

    def run_batch():
        references = check_codes(np.stack([item.codes for item in batch]), length=length)
        chain_samples = run_chains(engine, resolved.weights, references, config,
                                   input_indices=range(index - len(batch), index),
                                   converged=diagnostics.converged, progress=progress)
        for item, chains in zip(batch, chain_samples):
            frequencies = nucleotide_frequencies(chains.samples)
            importance = kl_divergence(frequencies, background)
            yield IntervalResult(
                item.name, item.chrom, item.start, item.end, frequencies, importance,
                motif_window(importance, motif_width), chains.acceptance_rate,
                float(chains.distances.mean()), float(chains.distances.std()),
                chains.samples if keep_samples else None, chains.distances,
                item.codes, chains.reference_activations, chains.steps, chains.converged,
            )

    for item in inputs:
        batch.append(item)
        index += 1
        if len(batch) == batch_size:
            yield from run_batch()
            batch = []
    if batch:
        yield from run_batch()


def as_inputs(sequences, length: int) -> list[SequenceInput]:
    """Accept strings, an ``(n, L)`` code array, or :class:`SequenceInput` records."""
    if isinstance(sequences, str):
        sequences = [sequences]
    if isinstance(sequences, np.ndarray):
        codes = check_codes(sequences, length=length)
        return [SequenceInput(f"seq_{i}", f"seq_{i}", 0, length, row) for i, row in enumerate(codes)]
    items = list(sequences)
    if items and all(isinstance(s, SequenceInput) for s in items):
        return items
    if not all(isinstance(s, str) for s in items):
        raise ValueError("sequences must be strings, an (n, L) array of codes, or SequenceInput records")
    codes = check_codes(encode(items), length=length) if items else np.zeros((0, length), np.int8)
    return [SequenceInput(f"seq_{i}", f"seq_{i}", 0, length, row) for i, row in enumerate(codes)]


def sample(
    model,
    sequences,
    *,
    spec: ModelSpec | None = None,
    source: str = "kipoi",
    beta: float | str = "auto",
    mu: float = 0.0,
    chains: int = 4,
    steps: int | str = "auto",
    max_steps: int = 5_000_000,
    thin: int | None = None,
    burnin: int | None = None,
    seed: int = 0,
    sampler: str = "metropolis",
    engine: str = "auto",
    motif_width: int = 19,
    batch_size: int | None = None,
    base_frequencies: Sequence[float] | None = None,
    progress: bool = False,
) -> list[IntervalResult]:
    """Sample the maximum-entropy distribution (eq. 9) of each input sequence.

    Parameters
    ----------
    model : str or Kipoi model
        Kipoi zoo name, local model directory (``source="dir"``), or a loaded Kipoi model.
    sequences : str, list of str, np.ndarray (n, L) int8 codes, or list of SequenceInput
        The inputs x0, each of the model's length.
    spec : ModelSpec, optional
        See :func:`kipoi_maxent.spec.load_spec`; default: a shipped spec matching the model
        name, else inferred from the model.
    beta : float or "auto"
        ``auto``: the paper's distance rule on a short pilot (:mod:`kipoi_maxent.auto_beta`;
        the nearest other element among the other sequences, or among dinucleotide shuffles of
        them when there are fewer than 10).
    mu, chains, steps, max_steps, thin, burnin, seed, sampler :
        See :class:`~kipoi_maxent.samplers.SamplerConfig` (``steps="auto"``: each input until
        its chains converge).
    engine : str
        ``auto``, ``naive``, ``incremental`` or ``windowed`` (same samples; the last two are
        faster where they apply).
    motif_width : int
        Window of the motif call.
    base_frequencies : sequence of 4 floats, optional
        Genome A, C, G, T frequencies (for ``bernoulli`` input normalisation).

    Returns
    -------
    list of IntervalResult, in input order, samples included.

    Examples
    --------
    >>> results = sample("example_configs/models/ctcf_cnn", ["ACGT..."], source="dir", beta=100)
    >>> results[0].motif
    """
    resolved = resolve_model(model, spec, source=source, base_frequencies=base_frequencies)
    inputs = as_inputs(sequences, resolved.sequence_length)
    if isinstance(engine, str):
        engine = make_engine(engine, resolved)[0]
    if beta == "auto":
        from kipoi_maxent import auto_beta

        pilots = [inputs[i] for i in auto_beta.spread_indices(auto_beta.PILOT_INPUTS, len(inputs))]
        beta = auto_beta.pilot_beta(resolved, engine, pilots, np.stack([item.codes for item in inputs]), mu=mu,
                                    sampler=sampler, seed=seed)["beta"]
    config = SamplerConfig(beta=beta, mu=mu, chains=chains, steps=steps, max_steps=max_steps, thin=thin,
                           burnin=burnin, seed=seed, sampler=sampler)
    display = Progress(len(inputs), enabled=progress)
    try:
        return list(iter_sample(resolved, inputs, config, motif_width=motif_width,
                                batch_size=batch_size, progress=display.update, engine=engine))
    finally:
        display.close()
