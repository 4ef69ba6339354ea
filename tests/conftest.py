"""Shared pytest setup: deterministic torch threads for a 2-core CI machine, and the one fixture factory of the
suite: the test model config, checkpoints and synthetic benchmarks, each built once per session and shared by
every folder that asks for the same thing (same config and seed, same generator config).

Model configs, smallest first:

- ``MICRO``: the real code paths at their smallest (2 layers, 2 side heads, 2 levels, 16-d): every op and
  attention form, split graphs, dynamic batch; for tests that call a model hundreds of times or run whole CLIs.
"""

import importlib.util
import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402

# tests/serving run in the serving environment, which has no torch (numpy < 2 for tritonserver): fgsa.model
# imports torch, so the model configs exist only where torch does; nothing under tests/serving uses them.
if importlib.util.find_spec("torch") is not None:
    from fgsa.model.config import ModelConfig

    MICRO = ModelConfig(name="micro-test", stem_channels=8, stage_blocks=(1, 1, 1, 1), stage_widths=(8, 8, 8, 8),
                        d_model=16, n_heads=2, n_levels=2, n_points=1, side_heads=2, d_ffn=16, n_layers=2)


def perturbed_model(cfg, seed: int, scale: float = 0.05):
    """FMMP(cfg) seeded, with its predictor weights perturbed: zero-init attention would hide indexing bugs."""
    import torch

    from fgsa.model import FMMP

    torch.manual_seed(seed)
    model = FMMP(cfg)
    with torch.no_grad():
        for p in model.predictor.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model.eval()


class Factory:
    """Session cache of expensive test artifacts, keyed by what defines them."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self._cache: dict = {}

    def _once(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def checkpoint(self, cfg, seed: int = 0):
        """(path, model in eval mode) of perturbed_model(cfg, seed) saved in the project's layout."""
        from fgsa.checkpoint import save_checkpoint

        def make():
            model = perturbed_model(cfg, seed)
            return save_checkpoint(self._tmp.mktemp(f"ckpt_{model.cfg.name}_{seed}") / "model.pth", model), model

        return self._once(("ckpt", cfg, seed), make)

    def benchmark(self, cfg):
        """fgsa.data.synthetic.generate(cfg) in its own folder (a GeneratedBenchmark)."""
        from fgsa.data.synthetic import generate

        return self._once(("synthetic", cfg), lambda: generate(self._tmp.mktemp("synthetic"), cfg))


@pytest.fixture(scope="session")
def factory(tmp_path_factory) -> Factory:
    return Factory(tmp_path_factory)


# ---- shared by tests/export/test_precision.py and tests/calibration ----

@pytest.fixture(scope="session")
def precision_ckpt(factory):
    """fmmp-tiny with perturbed predictor weights."""
    return factory.checkpoint("fmmp-tiny", seed=1)[0]


@pytest.fixture(scope="session")
def precision_graphs(tmp_path_factory, precision_ckpt):
    """{'fp32': ExportResult, 'fp16': ExportResult} of precision_ckpt (plugin form, B=1), in OUT/fp32 and
    OUT/fp16 of one folder, the layout `python -m calibration.report` writes; fp16 with its parity check."""
    from export.onnx import ExportOptions, export_onnx

    root = tmp_path_factory.mktemp("precision_graphs")
    results = {p: export_onnx(ExportOptions(ckpt=precision_ckpt, out=root / p, quiet=True, precision=p,
                                            parity=p == "fp16"))
               for p in ("fp32", "fp16")}
    for p, r in results.items():
        assert r.ok, (p, r.lint, [row.to_dict() for row in r.parity])
    return results
