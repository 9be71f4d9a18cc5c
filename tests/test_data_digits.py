"""Digits dataset and the shared stratified split."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from quadfire.data.common import stratified_split
from quadfire.data.digits import digits_datasets


def test_digits_shapes_range_and_split():
    train, test = digits_datasets(test_fraction=0.2, seed=0)
    assert len(train) + len(test) == 1797
    assert abs(len(test) - 0.2 * 1797) <= 10
    x, y = train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and isinstance(y, int)
    assert float(train.samples.min()) >= 0.0 and float(train.samples.max()) == 1.0
    counts = np.bincount(test.labels.numpy(), minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38


def test_digits_split_is_seeded():
    a, _ = digits_datasets(seed=3)
    b, _ = digits_datasets(seed=3)
    c, _ = digits_datasets(seed=4)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)


@given(st.lists(st.integers(0, 4), min_size=2, max_size=200), st.integers(0, 2**31 - 1),
       st.floats(0.05, 0.5))
def test_stratified_split_partitions_each_class(labels, seed, frac):
    labels = np.array(labels)
    train, test = stratified_split(labels, frac, seed)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
    for c in np.unique(labels):
        n = int((labels == c).sum())
        n_test = int((labels[test] == c).sum())
        if n >= 2:
            assert 1 <= n_test <= n - 1
        assert abs(n_test - n * frac) <= 1 or n < 2
    again = stratified_split(labels, frac, seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)


def test_stratified_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction must be in"):
        stratified_split(np.array([0, 1]), 1.5, 0)
