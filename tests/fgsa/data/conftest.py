"""A tiny synthetic benchmark shared by the data tests (generated once per session, ~0.5 s)."""

import pytest

from fgsa.data.synthetic import SyntheticConfig, generate

TINY = SyntheticConfig(seed=5, train_categories=3, val_categories=1, test_categories=2, instances_per_category=6)


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic"), TINY)
