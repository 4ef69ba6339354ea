"""Shared fixtures: the tiny checkpoint and fp32 graph of tests/conftest.py, a tiny synthetic MP-100-format
benchmark, and MinMax ranges from a few real calibration pairs."""

import onnx
import pytest

from fgsa.data.synthetic import SyntheticConfig

TINY_DATA = SyntheticConfig(seed=3, train_categories=3, val_categories=1, test_categories=2,
                            instances_per_category=5)


@pytest.fixture(scope="session")
def calib_ckpt(precision_ckpt):
    return precision_ckpt


@pytest.fixture(scope="session")
def fp32_graph(precision_graphs):
    return precision_graphs["fp32"].files["full"]


@pytest.fixture(scope="session")
def benchmark(factory):
    return factory.benchmark(TINY_DATA).root


@pytest.fixture(scope="session")
def calib_pairs(benchmark):
    from calibration.episodes import load_episodes

    return load_episodes(benchmark, "train", 4, progress=False)


@pytest.fixture(scope="session")
def minmax_ranges(fp32_graph, calib_pairs):
    from calibration.ranges import compute_ranges

    return compute_ranges(onnx.load(fp32_graph), calib_pairs.feeds(), "minmax", chunk=2, progress=False)


@pytest.fixture(scope="session")
def int8_graph(fp32_graph, minmax_ranges):
    from calibration.qdq import quantize_qdq

    return quantize_qdq(onnx.load(fp32_graph), minmax_ranges)
