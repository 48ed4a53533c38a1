"""A run, end to end: inputs are cut into chunks, each chunk is sampled and analysed (in this
process or on Dask workers), its results land atomically in ``OUTDIR/.parts/``, and the final
outputs are assembled from the parts.

- **Determinism.** Input ``i`` of the run always uses the random stream ``(seed, i)``, every
  statistic is a function of that input's samples alone, and outputs are assembled in input
  order, so results do not depend on chunk size, batch size or the number of workers.
- **Resume.** ``.parts/manifest.json`` records every parameter that affects results; a rerun
  with the same parameters skips the chunks already on disk, a rerun with other parameters is
  refused unless ``overwrite``.
- **Bounded memory.** Inputs are read lazily, at most a few chunks are in flight, samples are
  dropped after analysis (unless kept), and outputs are written by streaming over the parts.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from kipoi_maxent.inputs import SequenceInput
from kipoi_maxent.records import AnalysisConfig, IntervalRecord
from kipoi_maxent.samplers import SamplerConfig

logger = logging.getLogger(__name__)

PARTS_DIRECTORY = ".parts"
MANIFEST = "manifest.json"
#: Parts :meth:`PartStore.record` keeps in memory (each: one chunk's frequencies, importance,
#: Fourier amplitudes and inputs, without samples: ~0.2 MB for 64 inputs of 100 bp).
CACHED_PARTS = 16


@dataclass(frozen=True)
class ModelSource:
    """What a worker needs to load and resolve the model (picklable, small).

    ``model`` is a zoo name or an absolute model directory; ``spec`` the user's spec (None:
    shipped or inferred); ``base_frequencies`` the genome's A, C, G, T frequencies (for
    ``bernoulli`` input normalisation).
    """

    model: str
    source: str = "kipoi"
    spec: object = None
    base_frequencies: tuple | None = None
    engine: str = "auto"


@dataclass(frozen=True)
class RunPlan:
    """Everything a worker needs to process a chunk."""

    model: ModelSource
    sampler: SamplerConfig
    analysis: AnalysisConfig
    batch_size: int | None = None


# ---------------------------------------------------------------------------------------------
# workers


#: Per-process cache of resolved models and engines: a worker loads the model once, not per chunk.
_LOADED: dict = {}
#: How many times this process loaded each model (reported back, so tests can check it).
_LOAD_COUNTS: dict = {}


def _model_key(source: ModelSource) -> tuple:
    return source.model, source.source, repr(source.spec), source.base_frequencies, source.engine


def loaded_model(source: ModelSource, resolved=None):
    """``(resolved model, engine, engine fallback reason)`` for ``source``, loaded once per process.

    ``resolved`` seeds the cache with a model the caller already resolved.
    """
    from kipoi_maxent import api
    from kipoi_maxent.samplers import make_engine

    key = _model_key(source)
    if key not in _LOADED:
        if resolved is None:
            resolved = api.resolve_model(source.model, source.spec, source=source.source,
                                         base_frequencies=source.base_frequencies)
        engine, fallback = make_engine(source.engine, resolved)
        _LOADED[key] = (resolved, engine, fallback)
        _LOAD_COUNTS[key] = _LOAD_COUNTS.get(key, 0) + 1
    return _LOADED[key]


class ChunkResult(NamedTuple):
    """A processed chunk, and which process did it (``loads``: model loads in that process)."""

    first_index: int
    records: list
    worker: str
    loads: int


def process_chunk(plan: RunPlan, first_index: int, items: list[SequenceInput], progress: bool = False) -> ChunkResult:
    """Sample and analyse the inputs ``first_index, first_index + 1, …`` of a run."""
    from kipoi_maxent import api

    resolved, engine, _ = loaded_model(plan.model)
    records = []
    results = api.iter_sample(resolved, items, plan.sampler, motif_width=plan.analysis.motif_width,
                              batch_size=plan.batch_size, keep_samples=True, progress=False,
                              step_progress=progress, engine=engine, first_index=first_index)
    for offset, result in enumerate(results):
        records.append(analyse(first_index + offset, result, plan))
    if plan.analysis.jaspar and records:
        from kipoi_maxent.motifs import annotate, call_matrix, load_jaspar

        matches = annotate([call_matrix(r.frequencies, r.motif_call) for r in records],
                           load_jaspar(**plan.analysis.jaspar))
        for record, match in zip(records, matches):
            record.row.update(motif_match_id=match.id, motif_match_name=match.name,
                              motif_match_pvalue=float(match.pvalue), motif_match_orientation=match.orientation)
    return ChunkResult(first_index, records, f"{os.uname().nodename}:{os.getpid()}",
                       _LOAD_COUNTS.get(_model_key(plan.model), 0))


def analyse(index: int, result, plan: RunPlan) -> IntervalRecord:
    """Every statistic of one input's samples (pure: depends on nothing else)."""
    from kipoi_maxent.diagnostics import chain_diagnostics
    from kipoi_maxent.outputs import summary_row
    from kipoi_maxent.periodicity import band_amplitude, periodicity

    analysis, config = plan.analysis, plan.sampler
    row = summary_row(result, config.beta, config.mu)
    row.update(chain_diagnostics(result.distances, result.samples)._asdict())
    if analysis.features:
        from kipoi_maxent.features import feature_columns, feature_importance

        importances = feature_importance(result.samples, result.reference, list(analysis.features), config.mu,
                                         dummies=analysis.dummies or None,
                                         percentile_threshold=analysis.importance_percentile)
        row.update(feature_columns(importances))
    fourier = periodicity(result.samples, bases=analysis.periodicity_bases)
    row["period10_mean_amplitude"] = band_amplitude(fourier.periods, fourier.mean_signal)
    row["period10_sample_amplitude"] = band_amplitude(fourier.periods, fourier.individual)
    pca = None
    if analysis.pca_components:
        from kipoi_maxent.denovo import sample_pca

        pca = sample_pca(result.samples, result.reference, analysis.pca_components, control=analysis.pca_control)
    return IntervalRecord(
        index, row, result.frequencies.astype(np.float32), result.importance.astype(np.float32),
        np.stack([fourier.mean_signal, fourier.individual]).astype(np.float32), result.reference, pca,
        result.samples if analysis.keep_samples else None,
    )


# ---------------------------------------------------------------------------------------------
# parts on disk


def manifest_of(plan: RunPlan, inputs_fingerprint: dict) -> dict:
    """The parameters that determine a run's results (JSON-ready, compared on resume)."""
    from kipoi_maxent import __version__

    spec = plan.model.spec
    analysis = plan.analysis
    return {
        "kipoi_maxent_version": __version__,
        "model": plan.model.model,
        "source": plan.model.source,
        "spec": spec.to_dict() if spec is not None else None,
        "base_frequencies": list(plan.model.base_frequencies) if plan.model.base_frequencies else None,
        "sampler": dict(plan.sampler.__dict__),
        "analysis": {
            "motif_width": analysis.motif_width,
            "features": [f.name for f in analysis.features],
            "features_digest": _digest(f.coefficients for f in analysis.features),
            "dummies": sum(len(group) for group in analysis.dummies.values()),
            "dummies_digest": _digest(f.coefficients for group in analysis.dummies.values() for f in group),
            "importance_percentile": analysis.importance_percentile,
            "periodicity_bases": analysis.periodicity_bases,
            "pca_components": analysis.pca_components,
            "keep_samples": analysis.keep_samples,
            "jaspar": analysis.jaspar,
        },
        "inputs": inputs_fingerprint,
    }


def _digest(arrays: Iterable[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


def file_fingerprint(path) -> dict:
    """Identity of an input file for the manifest: path, size and content hash (small files)
    or modification time (files over 64 MB, e.g. genomes, are not hashed)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ValueError(f"input file {path} does not exist")
    stat = path.stat()
    record = {"path": str(path), "size": stat.st_size}
    if stat.st_size <= 64 << 20:
        record["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        record["mtime_ns"] = stat.st_mtime_ns
    return record


def _part_path(parts: Path, first: int, count: int) -> Path:
    return parts / f"part_{first:010d}_{count:06d}.npz"


def write_part(parts: Path, chunk: ChunkResult) -> Path:
    """One chunk's records as a compressed npz (no pickles), written atomically."""
    from kipoi_maxent.outputs import atomic_path

    records = chunk.records
    arrays = {
        "indices": np.array([r.index for r in records], dtype=np.int64),
        "rows": np.array(json.dumps([r.row for r in records], default=_json_default)),
        "frequencies": np.stack([r.frequencies for r in records]),
        "importance": np.stack([r.importance for r in records]),
        "fourier": np.stack([r.fourier for r in records]),
        "reference": np.stack([r.reference for r in records]),
    }
    if records[0].pca is not None:
        for name, value in records[0].pca._asdict().items():
            arrays[f"pca_{name}"] = np.stack([getattr(r.pca, name) for r in records])
    if records[0].samples is not None:
        arrays["samples"] = np.stack([r.samples for r in records])
    path = _part_path(parts, chunk.first_index, len(records))
    with atomic_path(path, "wb") as stream:
        np.savez_compressed(stream, **arrays)
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a part file")


def read_part(path: Path, samples: bool = True) -> list[IntervalRecord]:
    """Records of one part file (the inverse of :func:`write_part`); without their samples
    (``None``) unless ``samples``."""
    with np.load(path, allow_pickle=False) as part:
        arrays = {name: part[name] for name in part.files if samples or name != "samples"}
    rows = json.loads(str(arrays["rows"]))
    pca_fields = sorted(name[4:] for name in arrays if name.startswith("pca_"))
    pcas = [None] * len(rows)
    if pca_fields:
        from kipoi_maxent.denovo import SamplePCA

        pcas = [SamplePCA(**{f: arrays[f"pca_{f}"][i] for f in pca_fields}) for i in range(len(rows))]
    samples = arrays.get("samples")
    return [
        IntervalRecord(int(arrays["indices"][i]), rows[i], arrays["frequencies"][i], arrays["importance"][i],
                       arrays["fourier"][i], arrays["reference"][i], pcas[i], None if samples is None else samples[i])
        for i in range(len(rows))
    ]


class PartStore:
    """The chunk files of one run directory, for resuming and assembling."""

    def __init__(self, outdir: Path, chunk_size: int):
        self.directory = Path(outdir) / PARTS_DIRECTORY
        self.chunk_size = chunk_size
        self._cache: dict[Path, list[IntervalRecord]] = {}
        self._by_first: dict[int, Path] = {}

    def prepare(self, manifest: dict, overwrite: bool) -> None:
        """Create the parts directory, or check an existing one belongs to this run."""
        manifest_path = self.directory / MANIFEST
        if manifest_path.is_file():
            previous = json.loads(manifest_path.read_text())
            if previous != _jsonable(manifest):
                if not overwrite:
                    changed = sorted(k for k in set(previous) | set(manifest)
                                     if previous.get(k) != _jsonable(manifest).get(k))
                    raise ValueError(
                        f"{self.directory.parent} holds an unfinished run with other parameters "
                        f"(differing: {', '.join(changed)}); rerun with its parameters to resume it, "
                        "or pass --overwrite to discard it"
                    )
                shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not manifest_path.is_file():
            from kipoi_maxent.outputs import write_json

            write_json(manifest, manifest_path)

    def done(self, first: int, count: int) -> bool:
        return _part_path(self.directory, first, count).is_file()

    def paths(self) -> list[Path]:
        """Part files of the current chunk layout, in input order (others ignored)."""
        return sorted(p for p in self.directory.glob("part_*.npz") if _layout_matches(p, self.chunk_size))

    def records(self, samples: bool = False) -> Iterator[IntervalRecord]:
        """Every record, in input order, one part in memory at a time (samples only if asked)."""
        for path in self.paths():
            yield from read_part(path, samples=samples)

    def record(self, index: int) -> IntervalRecord:
        """Record ``index``, without its samples (parts read on demand; the last
        :data:`CACHED_PARTS` kept in memory, so a BED in no particular genome order does not
        read a part per input)."""
        first = index - index % self.chunk_size
        if first not in self._by_first:
            self._by_first = {int(p.stem.split("_")[1]): p for p in self.paths()}
        part = self._by_first[first]
        if part not in self._cache:
            if len(self._cache) >= CACHED_PARTS:
                self._cache.pop(next(iter(self._cache)))
            self._cache[part] = read_part(part, samples=False)
        return self._cache[part][index - first]

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _layout_matches(path: Path, chunk_size: int) -> bool:
    first, count = (int(x) for x in path.stem.split("_")[1:3])
    return first % chunk_size == 0 and count <= chunk_size


def _jsonable(record: dict) -> dict:
    return json.loads(json.dumps(record, sort_keys=True, default=str))


# ---------------------------------------------------------------------------------------------
# executing the chunks


def chunks(items: Iterable[SequenceInput], size: int) -> Iterator[tuple[int, list[SequenceInput]]]:
    """``(first index, inputs)`` of consecutive chunks of ``size`` inputs."""
    iterator = iter(items)
    first = 0
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield first, chunk
        first += len(chunk)


class RunStatistics(NamedTuple):
    n_inputs: int
    chunks_run: int
    chunks_skipped: int
    model_loads: dict


def execute(plan: RunPlan, items: Iterable[SequenceInput], store: PartStore, *, client=None,
            progress: bool = True) -> RunStatistics:
    """Process every chunk not already on disk; in this process, or on a Dask ``client``.

    At most ``2 × workers`` chunks are in flight, so inputs are read only as fast as they
    are processed.
    """
    from kipoi_maxent._progress import progress_bar

    bar = progress_bar(desc="inputs done", unit="input", enabled=progress)
    n_inputs = chunks_run = chunks_skipped = 0
    loads: dict[str, int] = {}

    def finished(chunk: ChunkResult):
        nonlocal chunks_run
        write_part(store.directory, chunk)
        chunks_run += 1
        loads[chunk.worker] = chunk.loads
        bar.update(len(chunk.records))

    pending = []
    if client is not None:
        from dask.distributed import wait

        in_flight = 2 * max(1, len(client.scheduler_info().get("workers", {})))
        plan_future = client.scatter(plan, broadcast=True)
    for first, chunk in chunks(items, store.chunk_size):
        n_inputs += len(chunk)
        if store.done(first, len(chunk)):
            chunks_skipped += 1
            bar.update(len(chunk))
            continue
        if client is None:
            finished(process_chunk(plan, first, chunk, progress=progress))
            continue
        pending.append(client.submit(process_chunk, plan_future, first, chunk, pure=False))
        while len(pending) >= in_flight:
            done, not_done = wait(pending, return_when="FIRST_COMPLETED")
            for future in done:
                finished(future.result())
            pending = list(not_done)
    for future in pending:
        finished(future.result())
    bar.close()
    return RunStatistics(n_inputs, chunks_run, chunks_skipped, loads)


def dask_client(workers: int | None, scheduler: str | None):
    """A Dask client: on an existing scheduler, on a local cluster of ``workers`` processes
    (one thread each: the frameworks use the cores themselves), or None (in process)."""
    if not workers and not scheduler:
        return None
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="30s")
        except OSError as error:
            raise ValueError(f"cannot reach the Dask scheduler {scheduler}: {error}") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster)
