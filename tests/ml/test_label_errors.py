"""Confident learning finds the labels that the data contradicts."""

import numpy as np

from ml.label_errors import find_label_issues, out_of_fold_probs, stratified_folds


def test_flipped_labels_are_found_and_ranked_first():
    rng = np.random.default_rng(0)
    n, k = 300, 3
    true = rng.integers(0, k, n)
    probs = np.full((n, k), 0.05)
    probs[np.arange(n), true] = 0.9
    probs += rng.uniform(0, 0.02, size=probs.shape)
    probs /= probs.sum(axis=1, keepdims=True)
    given = true.copy()
    flipped = np.array([3, 50, 120, 200, 299])
    given[flipped] = (true[flipped] + 1) % k
    probs[flipped] = 0.02
    probs[flipped, true[flipped]] = 0.96  # the data clearly says otherwise
    issues = find_label_issues(given, probs)
    assert set(issues.indices.tolist()) == set(flipped.tolist())
    np.testing.assert_array_equal(issues.suggested_labels, true[issues.indices])
    np.testing.assert_array_equal(issues.given_labels, given[issues.indices])
    assert np.all(np.diff(issues.scores) <= 0)  # most suspect first
    joint = issues.confident_joint  # items confidently of some class, by given label
    assert joint.sum() <= n and np.trace(joint) > 0.9 * n
    assert joint[~np.eye(k, dtype=bool)].sum() == len(flipped)


def test_the_stronger_contradiction_ranks_first_and_ambiguity_is_not_an_error():
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0])
    probs = np.array(
        [[0.9, 0.1]] * 3 + [[0.1, 0.9]] * 3 + [[0.08, 0.92], [0.02, 0.98], [0.45, 0.55]],
        dtype=float,
    )
    issues = find_label_issues(labels, probs)
    assert issues.indices.tolist() == [7, 6]  # item 8 is merely unsure, not contradicted
    assert issues.scores[0] > issues.scores[1] > 0.5


def test_clean_labels_give_no_issues():
    labels = np.array([0, 1, 2] * 10)
    probs = np.eye(3)[labels] * 0.8 + 0.2 / 3
    assert len(find_label_issues(labels, probs)) == 0


def test_out_of_fold_probabilities_expose_a_mislabeled_point():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-3, 1, (60, 2)), rng.normal(3, 1, (60, 2))])
    y = np.array([0] * 60 + [1] * 60)
    y[5] = 1  # sits deep in class 0's cloud

    class Nearest:
        def __init__(self, x, y):
            self.means = np.stack([x[y == c].mean(axis=0) for c in (0, 1)])

        def predict_proba(self, q):
            d = -((q[:, None, :] - self.means[None]) ** 2).sum(-1)
            e = np.exp(d - d.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

    probs = out_of_fold_probs(x, y, n_folds=5, seed=0, fit=Nearest)
    assert probs.shape == (120, 2)
    issues = find_label_issues(y, probs)
    assert issues.indices[0] == 5 and issues.suggested_labels[0] == 0


def test_folds_are_stratified():
    y = np.array([0] * 50 + [1] * 5)
    folds = stratified_folds(y, 5, seed=0)
    for f in range(5):
        assert (y[folds == f] == 1).sum() == 1
