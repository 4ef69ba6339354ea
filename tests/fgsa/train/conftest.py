"""A tiny synthetic benchmark for the training tests (generated once per session, ~0.5 s)."""

import pytest

from fgsa.data.synthetic import SyntheticConfig

TINY = SyntheticConfig(seed=7, train_categories=2, val_categories=1, test_categories=1, instances_per_category=2)


@pytest.fixture(scope="session")
def tiny_train_set(factory):
    return factory.benchmark(TINY)
