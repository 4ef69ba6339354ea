"""A tiny synthetic benchmark shared by the data tests (generated once per session, ~0.5 s)."""

import pytest

from fgsa.data.synthetic import SyntheticConfig

TINY = SyntheticConfig(seed=5, train_categories=3, val_categories=1, test_categories=2, instances_per_category=6)


@pytest.fixture(scope="session")
def tiny_benchmark(factory):
    return factory.benchmark(TINY)
