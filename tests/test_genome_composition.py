"""Tests of kipoi_maxent.genome_composition: counting rules, chunking, gzip, mu, cache."""
from __future__ import annotations

import collections
import gzip
import hashlib
import json
import logging
import math
import os
import random

import numpy as np
import pytest

from kipoi_maxent import genome_composition as gcomp
from kipoi_maxent.genome_composition import (
    CACHE_SUFFIX,
    BaseCounts,
    cache_file_candidates,
    cached_base_counts,
    count_bases,
    gc_chemical_potential,
)

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def reference_counts(data: bytes) -> BaseCounts:
    """Independent, obviously-correct count: Counter over concatenated sequence lines."""
    lines = data.split(b"\n")
    sequence = b"".join(line for line in lines if not line.startswith(b">"))
    sequence = sequence.translate(None, delete=b" \t\r\n\x0b\x0c").upper()
    counter = collections.Counter(sequence)
    a, c, g, t = (counter[ord(base)] for base in "ACGT")
    return BaseCounts(a, c, g, t, len(sequence) - a - c - g - t)


def random_fasta(rng: random.Random, n_records: int = 12) -> bytes:
    """Messy multi-record FASTA: lowercase, N runs, IUPAC, CRLF, varied widths, blank lines."""
    out = []
    for r in range(n_records):
        newline = b"\r\n" if rng.random() < 0.4 else b"\n"
        # Long headers with spaces and '>' inside, to cross chunk boundaries.
        name = f">chr{r} desc={'x' * rng.randint(0, 40)} a>b len~{rng.randint(1, 10**6)}"
        out.append(name.encode() + newline)
        length = rng.choice([0, 1, 59, 60, 61, rng.randint(100, 3000)])
        pieces = []
        while sum(map(len, pieces)) < length:
            roll = rng.random()
            if roll < 0.08:
                pieces.append(b"N" * rng.randint(1, 80))
            elif roll < 0.12:
                iupac = (rng.choice(b"RYKMSWBDHVnryk-") for _ in range(rng.randint(1, 5)))
                pieces.append(bytes(iupac))
            else:
                run = bytes(rng.choice(b"ACGT") for _ in range(rng.randint(1, 200)))
                pieces.append(run.lower() if rng.random() < 0.3 else run)
        seq = b"".join(pieces)[:length]
        width = rng.choice([1, 7, 60, 61, 80, 1000])
        for i in range(0, len(seq), width):
            out.append(seq[i : i + width] + newline)
        if rng.random() < 0.2:
            out.append(newline)  # blank line between records
    data = b"".join(out)
    if rng.random() < 0.5:
        data = data.rstrip(b"\r\n")  # no final newline
    return data


def write(path, data: bytes):
    path.write_bytes(data)
    return path


SMALL = (
    b">a_header_much_longer_than_seventeen_bytes > with > inside\n"
    b"ACGTacgtNNRY\n"
    b"gg\r\n"
    b">\n"  # empty header
    b">second one, also rather long: chrII\r\n"
    b"\n"
    b"TTTT>AA\n"  # '>' not at line start is a sequence byte
    b"  c\tc  \n"
    b">last header without newline at end of file"
)


# --------------------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------------------


def test_small_file_exact_counts(tmp_path):
    p = write(tmp_path / "s.fa", SMALL)
    expected = BaseCounts(a=4, c=4, g=4, t=6, n_other=5)  # N N R Y >
    assert reference_counts(SMALL) == expected
    assert count_bases(p) == expected


@pytest.mark.parametrize("seed", range(4))
def test_random_fasta_matches_reference(tmp_path, seed):
    data = random_fasta(random.Random(seed))
    p = write(tmp_path / "r.fa", data)
    expected = reference_counts(data)
    assert expected.total_acgt > 0 and expected.n_other > 0
    assert count_bases(p) == expected
    for chunk in (7, 64, 4096):
        assert count_bases(p, chunk_bytes=chunk) == expected


@pytest.mark.parametrize("chunk", range(1, 18))
def test_chunk_boundaries(tmp_path, chunk):
    p = write(tmp_path / "s.fa", SMALL)
    assert count_bases(p, chunk_bytes=chunk) == reference_counts(SMALL)


def test_header_ending_exactly_at_chunk_boundary(tmp_path):
    # Header line is 8 bytes + '\n': every split around the newline must be handled.
    data = b">abcdefg\nAC\n>hijklmn\nGT\n"
    p = write(tmp_path / "b.fa", data)
    for chunk in range(1, len(data) + 2):
        assert count_bases(p, chunk_bytes=chunk) == BaseCounts(1, 1, 1, 1, 0)


def test_gzip_same_counts(tmp_path):
    data = random_fasta(random.Random(11))
    plain = write(tmp_path / "g.fa", data)
    # Name without .gz on purpose: detection is by magic bytes.
    packed = write(tmp_path / "g_compressed.fa", gzip.compress(data))
    assert count_bases(packed) == count_bases(plain) == reference_counts(data)
    assert count_bases(packed, chunk_bytes=5) == reference_counts(data)


def test_concatenated_gzip_members_like_bgzip(tmp_path):
    data = random_fasta(random.Random(12))
    half = len(data) // 2
    p = write(tmp_path / "bg.fa.gz", gzip.compress(data[:half]) + gzip.compress(data[half:]))
    assert count_bases(p) == reference_counts(data)


def test_base_counts_properties():
    counts = BaseCounts(a=3, c=1, g=2, t=4, n_other=7)
    assert counts.total_acgt == 10
    assert counts.gc_fraction == pytest.approx(0.3)
    freqs = counts.base_frequencies
    assert freqs.shape == (4,) and freqs.dtype == np.float64
    np.testing.assert_allclose(freqs, [0.3, 0.1, 0.2, 0.4])
    empty = BaseCounts(0, 0, 0, 0, 5)
    with pytest.raises(ValueError, match="no A, C, G or T"):
        empty.gc_fraction
    with pytest.raises(ValueError, match="no A, C, G or T"):
        empty.base_frequencies


def test_only_n_fasta_counts_but_has_no_gc_fraction(tmp_path):
    p = write(tmp_path / "n.fa", b">x\nNNNN\n")
    counts = count_bases(p)
    assert counts == BaseCounts(0, 0, 0, 0, 4)
    with pytest.raises(ValueError):
        counts.gc_fraction


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"ACGT\n", b"hello\n>x\nACGT\n", b"", b"\n \r\n\t\n", b"\n\nACGT\n>x\n", b"\x00\x01binary"],
)
def test_not_fasta(tmp_path, data):
    p = write(tmp_path / "bad.fa", data)
    with pytest.raises(ValueError, match="not a FASTA file"):
        count_bases(p)
    with pytest.raises(ValueError, match="not a FASTA file"):
        count_bases(p, chunk_bytes=1)


def test_leading_blank_lines_allowed(tmp_path):
    p = write(tmp_path / "ok.fa", b"\n\r\n  \n>x\nAC\n")
    assert count_bases(p, chunk_bytes=2) == BaseCounts(1, 1, 0, 0, 0)


def test_gzipped_non_fasta(tmp_path):
    p = write(tmp_path / "bad.fa.gz", gzip.compress(b"BAM\x01 not a fasta"))
    with pytest.raises(ValueError, match="not a FASTA file"):
        count_bases(p)


def test_truncated_gzip(tmp_path):
    blob = gzip.compress(random_fasta(random.Random(3)))
    p = write(tmp_path / "trunc.fa.gz", blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="cannot be decompressed"):
        count_bases(p)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.fa"
    with pytest.raises(ValueError, match="not found") as info:
        count_bases(missing)
    assert str(missing) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="not found"):
        cached_base_counts(missing, cache_dir=tmp_path / "cache")


def test_directory_is_not_fasta(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        count_bases(tmp_path)


def test_unreadable_file(tmp_path, monkeypatch):
    p = write(tmp_path / "locked.fa", b">x\nACGT\n")
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            # Root ignores file modes: simulate the error the OS would raise.
            def denied(file, *args, **kwargs):
                raise PermissionError(13, "Permission denied", os.fspath(file))

            monkeypatch.setattr(gcomp, "open", denied, raising=False)
        with pytest.raises(ValueError, match="permission denied") as info:
            count_bases(p)
        assert str(p) in str(info.value) and "\n" not in str(info.value)
    finally:
        p.chmod(0o644)


@pytest.mark.parametrize("chunk", [0, -1, 1.5, True])
def test_bad_chunk_bytes(tmp_path, chunk):
    p = write(tmp_path / "s.fa", SMALL)
    with pytest.raises(ValueError, match="chunk_bytes"):
        count_bases(p, chunk_bytes=chunk)


# --------------------------------------------------------------------------------------
# chemical potential
# --------------------------------------------------------------------------------------


def test_chemical_potential_values():
    assert gc_chemical_potential(0.38297) == pytest.approx(-0.4770, abs=5e-5)
    assert gc_chemical_potential(0.5) == 0.0
    assert gc_chemical_potential(np.float32(0.62)) == pytest.approx(math.log(0.62 / 0.38), rel=1e-6)
    # f = e^mu / (1 + e^mu) inverts it.
    mu = gc_chemical_potential(0.2)
    assert math.exp(mu) / (1 + math.exp(mu)) == pytest.approx(0.2)


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, -0.1, 1.5, float("nan"), float("inf"), "x", None])
def test_chemical_potential_errors(bad):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        gc_chemical_potential(bad)


# --------------------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------------------


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    """Isolate the default user cache directory from the real home."""
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    return xdg / "kipoi_maxent"


@pytest.fixture
def fasta(tmp_path):
    d = tmp_path / "genome"
    d.mkdir()
    data = random_fasta(random.Random(5))
    return write(d / "genome.fa", data), reference_counts(data)


def test_cache_roundtrip_beside_fasta(fasta, user_cache):
    path, expected = fasta
    counts, source = cached_base_counts(path)
    assert (counts, source) == (expected, "computed")
    beside = str(path) + CACHE_SUFFIX
    assert os.path.exists(beside)
    assert not user_cache.exists()
    payload = json.loads(open(beside).read())
    st = path.stat()
    assert payload["fasta"] == {
        "path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino, "device": st.st_dev,
    }
    counts2, source2 = cached_base_counts(path)
    assert (counts2, source2) == (expected, beside)
    assert isinstance(counts2, BaseCounts)
    assert [f for f in os.listdir(path.parent) if f.endswith(".tmp")] == []


def test_cache_invalidated_by_touch(fasta, user_cache):
    path, expected = fasta
    cached_base_counts(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cached_base_counts(path) == (expected, "computed")
    assert cached_base_counts(path) == (expected, str(path) + CACHE_SUFFIX)


def test_cache_invalidated_by_content_change(fasta, user_cache):
    path, _ = fasta
    cached_base_counts(path)
    new = b">y\nGGGGCCCCAT\n"
    path.write_bytes(new)
    assert cached_base_counts(path) == (BaseCounts(1, 4, 4, 1, 0), "computed")
    # Same size, different content: only size+mtime can tell, so the mtime must differ.
    st = path.stat()
    path.write_bytes(b">y\nAAAAAAAAAA\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert cached_base_counts(path) == (BaseCounts(10, 0, 0, 0, 0), "computed")


def test_corrupt_cache_is_rewritten(fasta, user_cache):
    path, expected = fasta
    beside = str(path) + CACHE_SUFFIX
    for junk in [b"{not json", b"\xff\xfe", b"[]", b'{"format": 1}', b""]:
        with open(beside, "wb") as fh:
            fh.write(junk)
        assert cached_base_counts(path) == (expected, "computed")
        assert cached_base_counts(path) == (expected, beside)
    # Well-formed JSON with nonsense counts is also rejected.
    payload = json.loads(open(beside).read())
    payload["counts"]["a"] = -5
    with open(beside, "w") as fh:
        json.dump(payload, fh)
    assert cached_base_counts(path) == (expected, "computed")


def test_read_only_dir_uses_cache_dir(fasta, tmp_path, monkeypatch):
    path, expected = fasta
    cache_dir = tmp_path / "my_cache"
    real = gcomp.dir_is_writable
    monkeypatch.setattr(
        gcomp, "dir_is_writable", lambda d: False if d == str(path.parent) else real(d)
    )
    path.parent.chmod(0o555)  # as root this does not stop writes; the patch above does
    try:
        counts, source = cached_base_counts(path, cache_dir=cache_dir)
        assert (counts, source) == (expected, "computed")
        assert not os.path.exists(str(path) + CACHE_SUFFIX)
        _, user = cache_file_candidates(path, cache_dir=cache_dir)
        assert os.path.dirname(user) == str(cache_dir)
        assert os.path.basename(user).startswith(
            hashlib.sha256(str(path.resolve()).encode()).hexdigest()
        )
        assert os.path.exists(user)
        assert cached_base_counts(path, cache_dir=cache_dir) == (expected, user)
    finally:
        path.parent.chmod(0o755)


def test_read_only_dir_default_user_cache(fasta, user_cache, monkeypatch):
    path, expected = fasta
    monkeypatch.setattr(gcomp, "dir_is_writable", lambda d: False)
    assert cached_base_counts(path) == (expected, "computed")
    counts, source = cached_base_counts(path)
    assert counts == expected and os.path.dirname(source) == str(user_cache)


def test_home_cache_when_xdg_unset(fasta, tmp_path, monkeypatch):
    path, _ = fasta
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _, user = cache_file_candidates(path)
    assert os.path.dirname(user) == str(tmp_path / "home" / ".cache" / "kipoi_maxent")


def test_beside_cache_read_even_if_dir_read_only(fasta, user_cache, monkeypatch):
    path, expected = fasta
    cached_base_counts(path)  # written beside
    monkeypatch.setattr(gcomp, "dir_is_writable", lambda d: False)
    assert cached_base_counts(path) == (expected, str(path) + CACHE_SUFFIX)


def test_beside_write_failure_falls_back_to_user_cache(fasta, user_cache, monkeypatch):
    path, expected = fasta
    real = gcomp.write_json_atomic

    def fail_beside(target, payload):
        if os.path.dirname(target) == str(path.parent):
            raise PermissionError(13, "Permission denied", target)
        real(target, payload)

    monkeypatch.setattr(gcomp, "write_json_atomic", fail_beside)
    assert cached_base_counts(path) == (expected, "computed")
    counts, source = cached_base_counts(path)
    assert counts == expected and os.path.dirname(source) == str(user_cache)


def test_unwritable_cache_only_warns(fasta, tmp_path, monkeypatch, caplog):
    path, expected = fasta
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(gcomp, "dir_is_writable", lambda d: False)
    with caplog.at_level(logging.WARNING, logger=gcomp.__name__):
        for _ in range(2):
            assert cached_base_counts(path, cache_dir=blocker / "sub") == (expected, "computed")
    assert "could not cache" in caplog.text


def test_file_changed_during_count_not_cached(fasta, user_cache, monkeypatch):
    path, expected = fasta
    real = gcomp.count_bases

    def count_then_touch(p, **kw):
        result = real(p, **kw)
        st = os.stat(p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 5))
        return result

    monkeypatch.setattr(gcomp, "count_bases", count_then_touch)
    assert cached_base_counts(path) == (expected, "computed")
    assert not os.path.exists(str(path) + CACHE_SUFFIX)


def test_gzip_cache(tmp_path, user_cache):
    data = random_fasta(random.Random(8))
    p = write(tmp_path / "g.fa.gz", gzip.compress(data))
    assert cached_base_counts(p) == (reference_counts(data), "computed")
    assert cached_base_counts(p) == (reference_counts(data), str(p) + CACHE_SUFFIX)
