"""Shared fixtures for export tests: one small checkpoint with non-trivial attention weights."""

import pytest

from tests.conftest import NARROW


@pytest.fixture(scope="session")
def tiny_ckpt(factory):
    """The narrow model (fmmp-tiny's graph: 3 layers, 3 levels, 8 side heads; a narrower backbone), seed 0:
    the same nodes and attributes the export tests count, at a fraction of the export and parity time."""
    return factory.checkpoint(NARROW, seed=0)[0]
