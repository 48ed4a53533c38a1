"""kipoi_maxent.outputs.hdf5: appended HDF5 files, samples.h5 read back, reproducible bytes."""
import numpy as np
import pytest

from kipoi_maxent.outputs.hdf5 import AppendingFile, load_samples

ATTRIBUTES = {"alphabet": "ACGT", "beta": 50.0, "model": "m", "none": None}


def write(path, n=3):
    rng = np.random.default_rng(0)
    with AppendingFile(path, ATTRIBUTES) as h5:
        for i in range(n):  # as the samples writer: inputs differ in draws (--steps auto)
            samples = np.full((2, 3 + i, 6), i, dtype=np.int8)
            samples[:, -1] = 3
            h5.append(names=f"peak {i}", chrom="chr1", start=np.int64(10 * i), end=np.int64(10 * i + 6),
                      reference=rng.integers(-1, 4, 6).astype(np.int8), draw_offset=np.int64(h5.size("samples")),
                      draws=np.int64(samples.shape[1]))
            h5.extend("samples", samples.transpose(1, 0, 2))
    return path


def test_samples_round_trip_and_selection(tmp_path):
    path = write(tmp_path / "samples.h5")
    saved = load_samples(path)
    assert saved.names == ["peak 0", "peak 1", "peak 2"] and saved.chrom == ["chr1"] * 3
    assert [s.shape for s in saved.samples] == [(2, 3, 6), (2, 4, 6), (2, 5, 6)]
    assert all(s.dtype == np.int8 and (s[:, :-1] == i).all() and (s[:, -1] == 3).all()
               for i, s in enumerate(saved.samples))
    assert saved.start.tolist() == [0, 10, 20] and saved.attributes["beta"] == 50.0
    subset = load_samples(path, names=["peak 2", "peak 0"])
    assert subset.names == ["peak 2", "peak 0"]
    assert [s[0, 0, 0] for s in subset.samples] == [2, 0] and subset.start.tolist() == [20, 0]
    assert [s.shape[1] for s in subset.samples] == [5, 3]
    np.testing.assert_array_equal(subset.reference, saved.reference[[2, 0]])


def test_load_samples_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist.*--save-samples"):
        load_samples(tmp_path / "missing.h5")
    path = write(tmp_path / "samples.h5")
    with pytest.raises(ValueError, match="no input"):
        load_samples(path, names=["nope"])
    with pytest.raises(ValueError, match="repeat"):
        load_samples(path, names=["peak 1", "peak 1"])


def test_same_content_same_bytes_and_atomic(tmp_path):
    assert write(tmp_path / "a.h5").read_bytes() == write(tmp_path / "b.h5").read_bytes()
    with pytest.raises(RuntimeError):
        with AppendingFile(tmp_path / "c.h5", ATTRIBUTES) as h5:
            h5.append(names="x")
            raise RuntimeError("killed")
    assert not any(p.name.startswith((".c.h5", "c.h5")) for p in tmp_path.iterdir())
