"""Session fixtures for the runtime tests: tiny checkpoints, their ONNX exports, a tiny synthetic data set.

- ``tiny``: the fmmp-tiny preset (the real architecture: 3 layers, 8 side heads, 3 levels), portable
  attention, full graph, dynamic batch 1..4: API round trips against
  PyTorch (tracing its split graphs too would double the suite's time; the split path is tested on ``micro``).
- ``micro``: the MICRO config of tests/conftest.py (2 layers, 2 side heads, 2 levels, 16-d) so that tests
  needing hundreds of calls (threads) or whole CLIs stay fast; portable split graphs and a plugin-form full graph.

Checkpoints and the synthetic set come from the session factory of tests/conftest.py (shared with the export
tests where config and seed agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from fgsa.data.synthetic import SyntheticConfig
from fgsa.model import FMMP
from tests.conftest import MICRO


@pytest.fixture(autouse=True)
def _in_a_scratch_folder(tmp_path, monkeypatch):
    """Every runtime test runs in its own folder: the CLIs' default outputs (out/predict, out/parity) land
    there, never in the checkout."""
    monkeypatch.chdir(tmp_path)


@dataclass
class Exported:
    ckpt: Path
    folder: Path
    model: FMMP


def _export(ckpt: Path, out: Path, **kw) -> Path:
    from export.onnx import ExportOptions, export_onnx

    result = export_onnx(ExportOptions(ckpt=ckpt, out=out, parity=False, quiet=True, **kw))
    assert result.ok, result.lint
    return out


@pytest.fixture(scope="session")
def tiny(factory) -> Exported:
    ckpt, model = factory.checkpoint("fmmp-tiny", seed=0)
    folder = factory.export("fmmp-tiny", seed=0, attention="portable", dynamic_batch=(1, 2, 4)).files["full"].parent
    return Exported(ckpt, folder, model)


@pytest.fixture(scope="session")
def micro(factory) -> Exported:
    ckpt, model = factory.checkpoint(MICRO, seed=0)
    result = factory.export(MICRO, seed=0, attention="portable", split=True, dynamic_batch=(1, 2, 4))
    return Exported(ckpt, result.files["full"].parent, model)


@pytest.fixture(scope="session")
def micro_plugin(factory) -> Path:
    """The micro model in plugin form (FGSA_Attention / FGSA_MSDA nodes), full graph only, batch 1."""
    return factory.export(MICRO, seed=0, attention="plugin").files["full"]


@pytest.fixture(scope="session")
def synthetic(factory) -> Path:
    """Two held-out synthetic categories with 5 instances each (MP-100 layout)."""
    return factory.benchmark(SyntheticConfig(seed=3, train_categories=1, val_categories=0, test_categories=2,
                                             instances_per_category=5, max_keypoints=12)).root
