"""Shared fixtures for export tests: one tiny checkpoint with non-trivial attention weights."""

import pytest


@pytest.fixture(scope="session")
def tiny_ckpt(factory):
    """fmmp-tiny, seed 0, perturbed predictor (the runtime tests' ``tiny`` checkpoint, from the same factory)."""
    return factory.checkpoint("fmmp-tiny", seed=0)[0]
