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

import bisect
import itertools
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from kipoi_maxent._progress import Progress
from kipoi_maxent._quiet import framework_output_hidden, quiet_libraries
from kipoi_maxent.inputs import SequenceInput
from kipoi_maxent.records import AnalysisConfig, IntervalRecord
from kipoi_maxent.rundir import PARTS_DIRECTORY
from kipoi_maxent.samplers import SamplerConfig

logger = logging.getLogger(__name__)

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
    """Everything a worker needs to process a chunk.

    ``beta_source`` says where β came from (``given``, ``auto``, ``cached``), for summary.tsv.
    """

    model: ModelSource
    sampler: SamplerConfig
    analysis: AnalysisConfig
    batch_size: int | None = None
    beta_source: str = "given"


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
            quiet_libraries()  # a Dask worker's own process
            resolved = api.resolve_model(source.model, source.spec, source=source.source,
                                         base_frequencies=source.base_frequencies)
        with framework_output_hidden():
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


def process_chunk(plan: RunPlan, first_index: int, items: list[SequenceInput], progress=None) -> ChunkResult:
    """Sample and analyse the inputs ``first_index, first_index + 1, …`` of a run (``progress``:
    see :func:`kipoi_maxent.api.iter_sample`)."""
    from kipoi_maxent import api

    resolved, engine, _ = loaded_model(plan.model)
    records = []
    results = api.iter_sample(resolved, items, plan.sampler, motif_width=plan.analysis.motif_width,
                              batch_size=plan.batch_size, keep_samples=True, engine=engine,
                              first_index=first_index, progress=progress)
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
    row = summary_row(result, config.beta, config.mu, plan.beta_source)
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


def write_part(path: Path, chunk: ChunkResult) -> str:
    """One chunk's records as a compressed npz (no pickles), written atomically and flushed to
    disk; returns its sha256 (for the journal)."""
    from kipoi_maxent.cache import file_digest
    from kipoi_maxent.fileio import atomic_path

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
        for name in records[0].pca._fields:
            arrays[f"pca_{name}"] = np.stack([getattr(r.pca, name) for r in records])
    for position, record in enumerate(records):  # one array each: inputs may differ in draws
        if record.samples is not None:
            arrays[f"samples_{position}"] = record.samples
    with atomic_path(path, "wb") as stream:
        np.savez_compressed(stream, **arrays)
    return file_digest(path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a part file")


def read_part(path: Path, samples: bool = True) -> list[IntervalRecord]:
    """Records of one part file (the inverse of :func:`write_part`); without their samples
    (``None``) unless ``samples``."""
    with np.load(path, allow_pickle=False) as part:
        arrays = {name: part[name] for name in part.files if samples or not name.startswith("samples_")}
    rows = json.loads(str(arrays["rows"]))
    pca_fields = sorted(name[4:] for name in arrays if name.startswith("pca_"))
    pcas = [None] * len(rows)
    if pca_fields:
        from kipoi_maxent.denovo import SamplePCA

        pcas = [SamplePCA(**{f: arrays[f"pca_{f}"][i] for f in pca_fields}) for i in range(len(rows))]
    return [
        IntervalRecord(int(arrays["indices"][i]), rows[i], arrays["frequencies"][i], arrays["importance"][i],
                       arrays["fourier"][i], arrays["reference"][i], pcas[i], arrays.get(f"samples_{i}"))
        for i in range(len(rows))
    ]


class PartEntry(NamedTuple):
    """A part in the journal: inputs ``first … first + count − 1`` in ``name``, with its sha256."""

    first: int
    count: int
    name: str
    sha256: str


class PartStore:
    """The finished chunks of one run, in ``OUTDIR/.parts/``: the unit of resuming.

    ``manifest.json`` says which run they belong to (:data:`~kipoi_maxent.rundir.PARTS_FORMAT`);
    ``journal`` lists every part with its sha256, appended (and flushed to disk) after the part
    is on disk. A part is trusted only if the journal lists it and its content matches, so a
    part cut short by a crash, or a stray file, is never read: its inputs are sampled again.
    Parts hold contiguous inputs and never overlap, whatever the chunk size of each session.
    ``staging/`` receives the outputs before they are installed in OUTDIR.
    """

    def __init__(self, outdir: Path):
        self.directory = Path(outdir) / PARTS_DIRECTORY
        self.staging = self.directory / "staging"
        self._journal = self.directory / "journal"
        self._entries: list[PartEntry] = []
        self._cache: dict[str, list[IntervalRecord]] = {}

    # -- the run it belongs to ----------------------------------------------------------
    def manifest(self) -> dict | None:
        """The manifest of the run these parts belong to, None without (our) parts."""
        from kipoi_maxent.rundir import PARTS_FORMAT, ours

        record = ours(self.directory / MANIFEST, PARTS_FORMAT)
        return None if record is None else record.get("manifest")

    def beta_choice(self) -> dict | None:
        """``{"beta", "source", "record"}``: the β this run started with (kept on resume)."""
        from kipoi_maxent.rundir import PARTS_FORMAT, ours

        record = ours(self.directory / MANIFEST, PARTS_FORMAT)
        return None if record is None else record.get("beta")

    def create(self, manifest: dict, beta_choice: dict) -> None:
        """Start an empty store for the run ``manifest`` with β ``beta_choice`` (removing any
        previous one)."""
        from kipoi_maxent.fileio import write_json
        from kipoi_maxent.rundir import PARTS_FORMAT

        self.remove()
        self.directory.mkdir(parents=True)
        write_json({"format": PARTS_FORMAT, "manifest": manifest, "beta": beta_choice}, self.directory / MANIFEST)
        self._entries = []

    def remove(self) -> None:
        """Delete the store, if it is ours (its manifest says so)."""
        if self.manifest() is not None:
            shutil.rmtree(self.directory)
        self._entries, self._cache = [], {}

    # -- the parts ----------------------------------------------------------------------
    def load(self) -> int:
        """Read the journal and check every part against it; forget (and delete) the parts that
        are missing, damaged or not in the journal, and the leftovers of an unfinished
        session (temporaries, staged outputs). Returns the number of trusted inputs."""
        from kipoi_maxent.cache import file_digest
        from kipoi_maxent.fileio import remove_temporaries

        remove_temporaries(self.directory)
        shutil.rmtree(self.staging, ignore_errors=True)
        listed: dict[str, PartEntry] = {}
        if self._journal.is_file():
            for line in self._journal.read_text().splitlines():
                fields = line.split("\t")
                if len(fields) == 4 and fields[0].isdigit() and fields[1].isdigit():  # a torn last line is not
                    listed[fields[2]] = PartEntry(int(fields[0]), int(fields[1]), fields[2], fields[3])
        trusted, covered = [], set()
        for entry in sorted(listed.values()):
            path = self.directory / entry.name
            indices = set(range(entry.first, entry.first + entry.count))
            if path.is_file() and not indices & covered and file_digest(path) == entry.sha256:
                trusted.append(entry)
                covered |= indices
        for path in self.directory.glob("part_*.npz"):
            if path.name not in {e.name for e in trusted}:
                path.unlink()
        self._entries, self._cache = trusted, {}
        self._rewrite_journal()
        return len(covered)

    def _rewrite_journal(self) -> None:
        from kipoi_maxent.fileio import atomic_path

        with atomic_path(self._journal) as stream:
            stream.writelines(f"{e.first}\t{e.count}\t{e.name}\t{e.sha256}\n" for e in self._entries)

    def done(self) -> set[int]:
        """Indices of the inputs whose records are on disk."""
        return {i for e in self._entries for i in range(e.first, e.first + e.count)}

    def add(self, chunk: ChunkResult) -> None:
        """Write a chunk's part and record it in the journal."""
        name = f"part_{chunk.first_index:010d}_{len(chunk.records):06d}.npz"
        digest = write_part(self.directory / name, chunk)
        entry = PartEntry(chunk.first_index, len(chunk.records), name, digest)
        with open(self._journal, "a") as stream:
            stream.write(f"{entry.first}\t{entry.count}\t{entry.name}\t{entry.sha256}\n")
            stream.flush()
            os.fsync(stream.fileno())
        self._entries.append(entry)
        self._entries.sort()

    def records(self, samples: bool = False) -> Iterator[IntervalRecord]:
        """Every record, in input order, one part in memory at a time (samples only if asked)."""
        for entry in self._entries:
            yield from read_part(self.directory / entry.name, samples=samples)

    def record(self, index: int) -> IntervalRecord:
        """Record ``index``, without its samples (parts read on demand; the last
        :data:`CACHED_PARTS` kept in memory, so a BED in no particular genome order does not
        read a part per input)."""
        position = bisect.bisect_right([e.first for e in self._entries], index) - 1
        entry = self._entries[position]
        if not entry.first <= index < entry.first + entry.count:
            raise KeyError(f"input {index} is in no part")
        if entry.name not in self._cache:
            if len(self._cache) >= CACHED_PARTS:
                self._cache.pop(next(iter(self._cache)))
            self._cache[entry.name] = read_part(self.directory / entry.name, samples=False)
        return self._cache[entry.name][index - entry.first]


# ---------------------------------------------------------------------------------------------
# executing the chunks


def pending_chunks(items: Iterable[SequenceInput], size: int, done: set[int]) -> Iterator[tuple[int, list]]:
    """``(first index, inputs)`` of the inputs not in ``done``, in chunks of at most ``size``
    consecutive inputs (a chunk of ``size`` inputs is cut where some are done already, so parts
    of an earlier session with another chunk size are reused, never repeated)."""
    iterator = iter(items)
    index = 0
    while chunk := list(itertools.islice(iterator, size)):
        run: list = []
        for item in chunk:
            if index in done:
                if run:
                    yield index - len(run), run
                run = []
            else:
                run.append(item)
            index += 1
        if run:
            yield index - len(run), run


class RunStatistics(NamedTuple):
    n_inputs: int
    chunks_run: int
    inputs_resumed: int
    model_loads: dict


def execute(plan: RunPlan, items: Iterable[SequenceInput], store: PartStore, *, chunk_size: int = 64,
            client=None, progress: Progress | None = None) -> RunStatistics:
    """Process every input not already in ``store``; in this process, or on a Dask ``client``.

    At most ``2 × workers`` chunks are in flight, so inputs are read only as fast as they
    are processed. ``chunk_size`` inputs make a chunk (the unit of resuming and of Dask tasks).
    """
    done = store.done()
    counted = {"inputs": 0}
    chunks_run = 0
    loads: dict[str, int] = {}
    if progress is not None and done:
        progress.update(done=len(done))

    def counting(source):
        for item in source:
            counted["inputs"] += 1
            yield item

    def finished(chunk: ChunkResult, from_worker: bool):
        nonlocal chunks_run
        store.add(chunk)
        chunks_run += 1
        loads[chunk.worker] = chunk.loads
        if progress is not None and from_worker:  # in process, the sampler reported as it went
            progress.update(done=len(chunk.records),
                            converged=sum(str(r.row.get("converged")) == "True" for r in chunk.records),
                            proposals=sum(r.row["steps"] * plan.sampler.chains for r in chunk.records))

    pending = []
    if client is not None:
        from dask.distributed import wait

        in_flight = 2 * max(1, len(client.scheduler_info().get("workers", {})))
        plan_future = client.scatter(plan, broadcast=True)
    update = None if progress is None else progress.update
    for first, chunk in pending_chunks(counting(items), chunk_size, done):
        if client is None:
            finished(process_chunk(plan, first, chunk, progress=update), from_worker=False)
            continue
        pending.append(client.submit(process_chunk, plan_future, first, chunk, pure=False))
        while len(pending) >= in_flight:
            finished_now, not_done = wait(pending, return_when="FIRST_COMPLETED")
            for future in finished_now:
                finished(future.result(), from_worker=True)
            pending = list(not_done)
    for future in pending:
        finished(future.result(), from_worker=True)
    return RunStatistics(counted["inputs"], chunks_run, len(done), loads)


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
