"""HDF5 outputs, written one input at a time: ``frequencies.h5`` and ``samples.h5``.

Both hold per-input datasets along a first axis of length n (inputs in run order) plus the
identity of each input (``names``, ``chrom``, ``start``, ``end``); attributes carry what is
needed to interpret them (alphabet, sampler parameters). No timestamps are stored, so the
same run writes the same bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from kipoi_maxent.fileio import atomic_name
from kipoi_maxent.sequence import ALPHABET

def _string_dtype():
    import h5py

    return h5py.string_dtype("utf-8")


class AppendingFile:
    """An HDF5 file whose datasets grow by one row per :meth:`append`, renamed into place on
    success.

    Parameters
    ----------
    path : Path
    attributes : dict
        File attributes (JSON-able scalars and strings).
    """

    def __init__(self, path: Path, attributes: dict):
        self._path = Path(path)
        self._attributes = attributes

    def __enter__(self):
        import h5py

        self._name = atomic_name(self._path)
        temporary = self._name.__enter__()
        self._file = h5py.File(temporary, "w", track_order=False)
        for key, value in self._attributes.items():
            self._file.attrs[key] = "" if value is None else value
        self._datasets: dict = {}
        self.n = 0
        return self

    def append(self, **rows) -> None:
        """One row per dataset: arrays (fixed shape per dataset), numbers or strings."""
        for key, value in rows.items():
            if key not in self._datasets:
                self._datasets[key] = self._create(key, value)
            dataset = self._datasets[key]
            dataset.resize(self.n + 1, axis=0)
            dataset[self.n] = value
        self.n += 1

    def extend(self, key: str, rows: np.ndarray) -> None:
        """Append ``rows`` (axis 0) to dataset ``key``, which grows independently of the per-input
        datasets (for ragged data: record each input's offset and count with :meth:`append`)."""
        rows = np.asarray(rows)
        if key not in self._datasets:
            self._datasets[key] = self._file.create_dataset(
                key, shape=(0, *rows.shape[1:]), maxshape=(None, *rows.shape[1:]), dtype=rows.dtype,
                chunks=(max(1, min(256, len(rows))), *rows.shape[1:]), compression="gzip", track_times=False)
        dataset = self._datasets[key]
        start = dataset.shape[0]
        dataset.resize(start + len(rows), axis=0)
        dataset[start:] = rows

    def size(self, key: str) -> int:
        """Rows of dataset ``key`` so far (0 before the first)."""
        return self._datasets[key].shape[0] if key in self._datasets else 0

    def _create(self, key, value):
        if isinstance(value, str):
            return self._file.create_dataset(key, shape=(0,), maxshape=(None,), dtype=_string_dtype(),
                                             chunks=(1024,), track_times=False)
        value = np.asarray(value)
        return self._file.create_dataset(
            key, shape=(0, *value.shape), maxshape=(None, *value.shape), dtype=value.dtype,
            chunks=(1 if value.ndim else 1024, *value.shape), compression="gzip" if value.ndim else None,
            track_times=False,
        )

    def __exit__(self, kind, error, traceback):
        self._file.close()
        self._name.__exit__(kind, error, traceback)
        return False


def samples_attributes(run: dict) -> dict:
    """``samples.h5`` attributes from a run record (``run.json``)."""
    sampler = run["sampler"]
    return {
        "alphabet": ALPHABET, "kipoi_maxent_version": run["kipoi_maxent_version"], "model": run["model"],
        "beta": sampler["beta"], "mu": sampler["mu"], "chains": sampler["chains"], "steps": str(sampler["steps"]),
        "thin": sampler["thin"], "burnin": sampler["burnin"], "seed": sampler["seed"],
        "sampler": sampler["sampler"], "codes": "0..3 = A, C, G, T in alphabet order; -1 = unknown base (fixed)",
        "layout": "samples: (draws of all inputs, chains, L), input i's draws are rows "
                  "draw_offset[i] : draw_offset[i] + draws[i]",
    }


class SavedSamples(NamedTuple):
    """Samples read back by :func:`load_samples`.

    Attributes
    ----------
    names, chrom : list of str
    start, end : np.ndarray, shape (n,), int64
    reference : np.ndarray, shape (n, L), int8
        The inputs x0.
    samples : list of np.ndarray, shape (chains, draws, L), int8
        One per input (with ``--steps auto`` inputs that converged sooner have fewer draws).
    attributes : dict
        Alphabet, sampler parameters, model.
    """

    names: list
    chrom: list
    start: np.ndarray
    end: np.ndarray
    reference: np.ndarray
    samples: np.ndarray
    attributes: dict


def load_samples(path, names=None) -> SavedSamples:
    """Read ``samples.h5`` (written by ``--save-samples``).

    Parameters
    ----------
    path : str or Path
    names : sequence of str, optional
        Only these inputs (in this order); default all.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"samples file {path} does not exist (write one with --save-samples)")
    with h5py.File(path, "r") as handle:
        if "samples" not in handle:
            raise ValueError(f"{path} holds no samples: not a kipoi_maxent samples.h5")
        all_names = [n.decode() if isinstance(n, bytes) else n for n in handle["names"][:]]
        if names is None:
            rows = np.arange(len(all_names))
        else:
            where = {n: i for i, n in enumerate(all_names)}
            missing = [n for n in names if n not in where]
            if missing:
                raise ValueError(f"{path} has no input(s) named {missing[:5]}")
            rows = np.array([where[n] for n in names], dtype=np.int64)
            if len(set(rows.tolist())) != len(rows):
                raise ValueError("names must not repeat")
        order = np.argsort(rows)  # h5py reads increasing indices
        inverse = np.argsort(order)

        def read(key):
            return handle[key][np.sort(rows)][inverse] if len(rows) else handle[key][:0]

        chrom = [c.decode() if isinstance(c, bytes) else c for c in read("chrom")]
        offsets, draws = handle["draw_offset"][:], handle["draws"][:]
        samples = [handle["samples"][offsets[i]: offsets[i] + draws[i]].transpose(1, 0, 2) for i in rows]
        return SavedSamples(
            [all_names[i] for i in rows], chrom, read("start"), read("end"), read("reference"),
            samples, dict(handle.attrs),
        )
