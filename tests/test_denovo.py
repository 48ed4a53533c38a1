"""kipoi_maxent.denovo: ±1 encoding, PCA of samples, random control, npz round trip, kNN."""
import numpy as np
import pytest

from kipoi_maxent import denovo
from kipoi_maxent.denovo import (
    SamplePCA,
    accuracy_interval,
    knn_accuracy,
    knn_classify,
    load_pca,
    paired_p_value,
    pm_encode,
    random_orthonormal,
    sample_pca,
    save_pca,
)
from kipoi_maxent.samplers import NaiveEngine, SamplerConfig, run_chains

LENGTH = 40
UNKNOWN = [3, 17, 30, 31]


@pytest.fixture(scope="module")
def linear_feature_run():
    """A network whose only unit is a known ±1 linear feature, Φ(x) = v · pm_encode(x), sampled
    at an x0 with v · pm_encode(x0) = 0 and a few unknown bases: eq. (9) pins v · x near 0."""
    rng = np.random.default_rng(0)
    v = rng.choice([-1.0, 1.0], LENGTH)
    x0 = np.where(v > 0, 2, 0).astype(np.int8)  # G where v = +1, A where v = -1: agrees with v ...
    known = np.setdiff1d(np.arange(LENGTH), UNKNOWN)
    against = rng.choice(known, len(known) // 2, replace=False)
    x0[against] = np.where(v[against] > 0, 3, 1)  # ... except at half the known positions
    x0[UNKNOWN] = -1
    assert pm_encode(x0) @ v == 0
    control = random_orthonormal(LENGTH, 5, seed=9)
    config = SamplerConfig(beta=1.0, chains=20, steps=4000, burnin=400, thin=20, seed=3)
    result = run_chains(NaiveEngine(lambda codes: (pm_encode(codes) @ v)[:, None]), np.ones(1), x0[None], config)[0]
    return v, x0, result.samples, control


def test_lowest_variance_component_is_the_constrained_feature(linear_feature_run):
    v, x0, samples, control = linear_feature_run
    pca = sample_pca(samples, x0, control=control)
    unit_v = np.where(x0 >= 0, v, 0.0) / np.sqrt((x0 >= 0).sum())
    cosines = np.abs(pca.components @ unit_v)
    assert cosines.max() >= 0.9, cosines
    assert np.argmax(cosines) == 0  # in fact the very lowest: δ ≈ 1/s² ranks it first
    assert pca.variances[0] < 0.1 * pca.variances[1]  # the paper's sharp drop at the low end
    # the random control directions see the ordinary spread, not the pinned feature
    assert pca.control_sd.min() > 3 * np.sqrt(pca.variances[0])


def test_unknown_positions_are_left_out(linear_feature_run):
    _, x0, samples, control = linear_feature_run
    pca = sample_pca(samples, x0, n_components=3, control=control)
    n_known = LENGTH - len(UNKNOWN)
    assert pca.components.shape == (3, LENGTH) and pca.n_samples == samples.shape[0] * samples.shape[1]
    np.testing.assert_array_equal(pca.components[:, UNKNOWN], 0.0)
    np.testing.assert_array_equal(pca.mean[UNKNOWN], 0.0)
    np.testing.assert_allclose(np.linalg.norm(pca.components, axis=1), 1.0)
    assert np.isfinite(pca.spectrum[:n_known]).all() and np.isnan(pca.spectrum[n_known:]).all()
    assert np.all(np.diff(pca.spectrum[:n_known]) >= 0)
    assert pca.variances[0] > 0.005  # no zero-variance artefact from the constant unknown positions
    np.testing.assert_allclose(pca.variances, pca.spectrum[:3])


def test_pca_matches_numpy_covariance():
    rng = np.random.default_rng(1)
    samples = rng.integers(0, 4, (3, 50, 8)).astype(np.int8)
    reference = np.zeros(8, dtype=np.int8)
    control = random_orthonormal(8, 2, seed=0)
    pca = sample_pca(samples, reference, n_components=4, control=control)
    encoded = pm_encode(samples).reshape(-1, 8)
    covariance = np.cov(encoded, rowvar=False)
    np.testing.assert_allclose(pca.spectrum, np.linalg.eigvalsh(covariance), atol=1e-12)
    np.testing.assert_allclose(pca.mean, encoded.mean(axis=0))
    for component, variance in zip(pca.components, pca.variances):
        np.testing.assert_allclose(covariance @ component, variance * component, atol=1e-12)
        assert component[np.argmax(np.abs(component))] > 0  # sign convention
    np.testing.assert_allclose(pca.control_sd ** 2, np.einsum("ml,lk,mk->m", control, covariance, control))
    assert sample_pca(samples, reference).control_sd is None


def test_sample_pca_rejects_bad_inputs():
    samples = np.zeros((1, 8, 8), dtype=np.int8)
    with pytest.raises(ValueError, match="more samples than variable positions"):
        sample_pca(samples, np.zeros(8, dtype=np.int8))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 9\)"):
        sample_pca(samples, np.zeros(9, dtype=np.int8))
    with pytest.raises(ValueError, match="n_components"):
        sample_pca(np.zeros((2, 50, 8), dtype=np.int8), np.zeros(8, dtype=np.int8), n_components=9)
    with pytest.raises(ValueError, match="control"):
        sample_pca(np.zeros((2, 50, 8), dtype=np.int8), np.zeros(8, dtype=np.int8), control=np.eye(3))
    with pytest.raises(ValueError, match="one sequence"):
        sample_pca(np.zeros((2, 50, 8), dtype=np.int8), np.zeros((2, 8), dtype=np.int8))


def test_pm_encode():
    codes = np.array([[0, 1, 2, 3, -1]], dtype=np.int8)
    np.testing.assert_array_equal(pm_encode(codes), [[-1.0, 1.0, 1.0, -1.0, 0.0]])
    assert pm_encode(codes[0]).dtype == np.float64
    with pytest.raises(ValueError, match="codes 0..3"):
        pm_encode(np.array([5, 0]))


def test_random_orthonormal_is_orthonormal_and_seeded():
    directions = random_orthonormal(201, 5, seed=4)
    assert directions.shape == (5, 201)
    np.testing.assert_allclose(directions @ directions.T, np.eye(5), atol=1e-12)
    np.testing.assert_array_equal(directions, random_orthonormal(201, 5, seed=4))
    assert not np.allclose(directions, random_orthonormal(201, 5, seed=5))
    # uniform over the sphere: no preferred sign (numpy's QR alone is not)
    firsts = np.array([random_orthonormal(3, 1, seed=s)[0, 0] for s in range(200)])
    assert 0.35 < (firsts > 0).mean() < 0.65
    with pytest.raises(ValueError, match="k must be"):
        random_orthonormal(4, 5, seed=0)


def test_save_load_round_trip(tmp_path, linear_feature_run):
    _, x0, samples, control = linear_feature_run
    pcas = [sample_pca(samples, x0, control=control), sample_pca(samples[:10], x0, control=control)]
    path = save_pca(tmp_path / "pca.npz", ["first", "second"], pcas, control)
    assert [p.name for p in tmp_path.iterdir()] == ["pca.npz"]  # no temporary left behind
    names, loaded, loaded_control = load_pca(path)
    assert names == ["first", "second"]
    np.testing.assert_array_equal(loaded_control, control)
    for original, copy in zip(pcas, loaded):
        for field in SamplePCA._fields:
            np.testing.assert_array_equal(getattr(copy, field), getattr(original, field))
    # without a control
    plain = [sample_pca(samples, x0)]
    names, loaded, loaded_control = load_pca(save_pca(tmp_path / "plain.npz", ["only"], plain, None))
    assert names == ["only"] and loaded_control is None and loaded[0].control_sd is None
    with pytest.raises(ValueError, match="control_sd"):
        save_pca(tmp_path / "bad.npz", ["only"], plain, control)
    with pytest.raises(ValueError, match="one name per PCA"):
        save_pca(tmp_path / "bad.npz", ["a", "b"], plain, None)


def _two_class_exemplars(rng, length, k, feature_sd):
    """Members of two classes, each fixed by the values of k known class-specific directions.

    The values are small next to the free N(0, 1) coordinates, so the classes barely differ in
    plain Euclidean terms (the random control) but sharply along their own directions.
    """
    directions = [random_orthonormal(length, k, seed=seed) for seed in (100, 101)]
    values = [rng.normal(0, 0.4, k) for _ in range(2)]

    def members(label, n):
        free = rng.normal(0, 1, (n, length))
        free -= free @ directions[label].T @ directions[label]  # remove the class directions ...
        noise = rng.normal(0, feature_sd, (n, k))
        return free + (values[label] + noise) @ directions[label]  # ... and set their values

    return directions, members


def test_knn_accuracy_with_principal_components_beats_random_control():
    rng = np.random.default_rng(2)
    length, k, n = 30, 5, 40
    directions, members = _two_class_exemplars(rng, length, k, feature_sd=0.05)
    labels = np.repeat([0, 1], n)
    means = np.concatenate([members(0, n), members(1, n)])
    control = random_orthonormal(length, k, seed=7)
    pcas = [SamplePCA(mean, directions[label], np.full(k, 0.05 ** 2), np.full(length, np.nan),
                      np.ones(k), 10_000) for mean, label in zip(means, labels)]
    test_labels = np.repeat([0, 1], 150)
    test = np.concatenate([members(0, 150), members(1, 150)])
    accuracy = knn_accuracy(pcas, labels, test, test_labels, control=control)
    assert accuracy.components >= 0.95, accuracy
    assert accuracy.control <= 0.7, accuracy  # near chance (0.5), like the paper's 51 %
    assert knn_accuracy(pcas, labels, test, test_labels).control is None


def test_knn_classify_by_hand_and_tie_break():
    # one direction (the x axis), SD 1: distance = |t_x - mean_x|
    means = np.array([[0.0, 0.0], [1.0, 5.0], [2.0, 0.0], [10.0, 0.0], [11.0, 0.0]])
    components = np.tile([[[1.0, 0.0]]], (5, 1, 1))
    sd = np.ones((5, 1))
    labels = np.array(["a", "a", "b", "b", "c"])
    test = np.array([[0.2, 9.0], [1.9, 0.0], [10.6, 0.0]])
    # 1 neighbour: nearest; 3 neighbours: majority; 2 neighbours of [10.6]: b (10) vs c (11) tied,
    # c is the nearer
    np.testing.assert_array_equal(knn_classify(means, components, sd, labels, test, 1), ["a", "b", "c"])
    np.testing.assert_array_equal(knn_classify(means, components, sd, labels, test, 3), ["a", "a", "b"])
    np.testing.assert_array_equal(knn_classify(means, components, sd, labels, test, 2), ["a", "b", "c"])
    # SD scales the coordinate: a wide exemplar 0 pulls in [1.9]
    wide = sd.copy()
    wide[0] = 100.0
    assert knn_classify(means, components, wide, labels, test[1:2], 1)[0] == "a"


def test_knn_chunking_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(3)
    means = rng.normal(size=(12, 6))
    components = np.stack([random_orthonormal(6, 2, seed=s) for s in range(12)])
    sd = rng.uniform(0.5, 2.0, (12, 2))
    labels = rng.integers(0, 3, 12)
    test = rng.normal(size=(50, 6))
    whole = knn_classify(means, components, sd, labels, test, 5)
    monkeypatch.setattr(denovo, "_CHUNK_ELEMENTS", 7 * 12 * 2)  # 7 test rows per chunk
    np.testing.assert_array_equal(knn_classify(means, components, sd, labels, test, 5), whole)


def test_knn_rejects_bad_inputs():
    means, components, sd = np.zeros((2, 3)), np.zeros((2, 1, 3)), np.ones((2, 1))
    labels, test = np.array([0, 1]), np.zeros((4, 3))
    with pytest.raises(ValueError, match="exemplar_sd must be > 0"):
        knn_classify(means, components, np.zeros((2, 1)), labels, test)
    with pytest.raises(ValueError, match="n_neighbors"):
        knn_classify(means, components, sd, labels, test, n_neighbors=3)
    with pytest.raises(ValueError, match="test must have shape"):
        knn_classify(means, components, sd, labels, np.zeros((4, 2)), 1)
    with pytest.raises(ValueError, match="exemplar_labels"):
        knn_classify(means, components, sd, np.array([0, 1, 1]), test, 1)


def test_knn_accuracy_floors_zero_variances():
    # exemplar 0 (x = 0) never moved along its axis: variance 0, SD floored at 2 / sqrt(400) = 0.1;
    # exemplar 1 (x = 3) has SD 1
    axis = np.array([[1.0, 0.0]])
    pcas = [SamplePCA(np.array([0.0, 0.0]), axis, np.zeros(1), np.full(2, np.nan), None, 400),
            SamplePCA(np.array([3.0, 0.0]), axis, np.ones(1), np.full(2, np.nan), None, 400)]
    # x = 0.2: distances 2 and 2.8 -> 0; x = 0.4: distances 4 and 2.6 -> 1
    test = np.array([[0.2, 1.0], [0.4, 0.0]])
    accuracy = knn_accuracy(pcas, np.array([0, 1]), test, np.array([0, 1]), n_neighbors=1)
    assert (accuracy.components, accuracy.control, accuracy.n_test) == (1.0, None, 2)
    assert accuracy.control_interval is None and accuracy.paired_p is None


def test_accuracy_interval_is_wilsons():
    # Wilson score interval written out: centre (p + z²/2n) / (1 + z²/n), half-width
    # z sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)
    z = 1.959963984540054
    for successes, n in ((0, 10), (7, 10), (165, 200), (10, 10)):
        p = successes / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        correct = np.arange(n) < successes
        assert accuracy_interval(correct) == pytest.approx((centre - half, centre + half), abs=1e-9)
    with pytest.raises(ValueError, match="at least one"):
        accuracy_interval(np.array([], dtype=bool))


def test_paired_p_value_counts_only_discordant_elements():
    # 10 elements only the first gets right, none only the second: p = 2 * 0.5**10; the 50
    # elements both get right (or both wrong) change nothing
    first = np.r_[np.ones(10, bool), np.ones(30, bool), np.zeros(20, bool)]
    second = np.r_[np.zeros(10, bool), np.ones(30, bool), np.zeros(20, bool)]
    assert paired_p_value(first, second) == pytest.approx(2 * 0.5 ** 10)
    assert paired_p_value(second, first) == pytest.approx(2 * 0.5 ** 10)
    # 6 vs 4 discordant: P(|X - 5| >= 1) for X ~ Bin(10, 1/2) = 1 - P(X = 5)
    first = np.r_[np.ones(6, bool), np.zeros(4, bool)]
    assert paired_p_value(first, ~first) == pytest.approx(1 - 252 / 1024)
    assert paired_p_value(first, first) == 1.0
    with pytest.raises(ValueError, match="same elements"):
        paired_p_value(first, first[:3])
