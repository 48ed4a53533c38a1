"""kipoi_maxent.sequence: integer codes, one-hot, GC count, background marginal."""
import numpy as np
import pytest

from kipoi_maxent.sequence import (
    ALPHABET,
    background_probabilities,
    decode,
    encode,
    gc_count,
    one_hot,
)

RNG = np.random.default_rng(0)


def random_strings(n, length, letters="ACGTacgtN"):
    return ["".join(RNG.choice(list(letters), size=length)) for _ in range(n)]


def test_encode_known_codes_lowercase_and_unknown():
    codes = encode(["ACGTN", "acgtr", "NnGgC"])
    assert codes.dtype == np.int8
    np.testing.assert_array_equal(codes, [[0, 1, 2, 3, -1], [0, 1, 2, 3, -1], [-1, -1, 2, 2, 1]])


def test_decode_inverts_encode_upper_casing_and_n_for_unknown():
    strings = random_strings(40, 13, "ACGTacgtNRY")
    decoded = decode(encode(strings))
    expected = ["".join(c if c in "ACGT" else "N" for c in s.upper()) for s in strings]
    assert decoded == expected
    # and codes -> strings -> codes is exact
    codes = RNG.integers(-1, 4, size=(20, 9)).astype(np.int8)
    np.testing.assert_array_equal(encode(decode(codes)), codes)


def test_encode_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="one length"):
        encode(["ACGT", "ACG"])


def test_one_hot_shape_order_and_zero_rows_for_unknown():
    codes = np.array([[0, 1, 2, 3, -1], [3, -1, 2, 0, 1]], dtype=np.int8)
    x = one_hot(codes)
    assert x.shape == (2, 5, 4)
    for i in range(2):
        for j in range(5):
            expected = np.zeros(4)
            if codes[i, j] >= 0:
                expected[codes[i, j]] = 1  # channel order = ALPHABET = A, C, G, T
            np.testing.assert_array_equal(x[i, j], expected)
    assert ALPHABET == "ACGT"


def test_gc_count_matches_string_count():
    strings = random_strings(30, 21)
    expected = [s.upper().count("G") + s.upper().count("C") for s in strings]
    np.testing.assert_array_equal(gc_count(encode(strings)), expected)
    # any leading shape: (chains, draws, L) -> (chains, draws)
    codes = encode(strings).reshape(5, 6, 21)
    np.testing.assert_array_equal(gc_count(codes), np.reshape(expected, (5, 6)))


@pytest.mark.parametrize("mu", [-3.0, -0.477, 0.0, 0.25, 2.0])
def test_background_probabilities_formula(mu):
    p = background_probabilities(mu)
    strong = np.exp(mu) / (2 * (1 + np.exp(mu)))
    weak = 1 / (2 * (1 + np.exp(mu)))
    np.testing.assert_allclose(p, [weak, strong, strong, weak], rtol=1e-12)  # A, C, G, T
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_background_probabilities_uniform_at_zero():
    np.testing.assert_allclose(background_probabilities(0.0), [0.25] * 4, rtol=0, atol=1e-15)


# mu = -1000 makes np.exp overflow (a RuntimeWarning) though the result is right; see report
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("mu", [40.0, 700.0, 1000.0])
def test_background_probabilities_large_mu_is_finite(mu):
    for sign, limit in ((1, [0, 0.5, 0.5, 0]), (-1, [0.5, 0, 0, 0.5])):
        p = background_probabilities(sign * mu)
        assert np.all(np.isfinite(p)) and np.all(p >= 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(p, limit, atol=1e-15)
