"""Shared pytest setup: torch threads sized to the pytest-xdist workers, and the one fixture factory of the
suite: the test model config, checkpoints, ONNX exports and synthetic benchmarks, each built once per test run
and shared by every folder that asks for the same thing (same config and seed, same export options, same
generator config). Under pytest-xdist (`make test` runs ``-n auto``) the factory's artifacts live in the run's
shared temporary folder behind a file lock: the first worker that needs one builds it, the others wait and
read it, so a session fixture used by files on both workers still costs one export.

Model configs, smallest first:

- ``MICRO``: the real code paths at their smallest (2 layers, 2 side heads, 2 levels, 16-d): every op and
  attention form, split graphs, dynamic batch; for tests that call a model hundreds of times or run whole CLIs.
"""

import hashlib
import importlib.util
import os
import pickle
import shutil

# The cores are shared by the pytest-xdist workers (make test runs `-n auto`): one worker per core, each with
# its share of torch threads; oversubscribed thread pools spin and slow every worker down.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, min(2, (os.cpu_count() or 1) // _WORKERS))))

import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402

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
    """Cache of expensive test artifacts for one test run, keyed by what defines them: in memory per process,
    on disk (pickled results beside the files) across pytest-xdist workers."""

    def __init__(self, tmp_path_factory):
        base = tmp_path_factory.getbasetemp()
        # pytest-xdist gives each worker <run>/popen-gwN as its basetemp: <run> is the folder they share
        self._root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "factory"
        self._root.mkdir(parents=True, exist_ok=True)
        self._cache: dict = {}

    def _once(self, key, make):
        """make(folder) once per run: the first process builds in ``folder``, every later one unpickles."""
        if key not in self._cache:
            name = f"{key[0]}_{hashlib.sha256(repr(key).encode()).hexdigest()[:16]}"
            folder, done = self._root / name, self._root / name / "result.pickle"
            with FileLock(str(self._root / f"{name}.lock")):
                if done.exists():
                    self._cache[key] = pickle.loads(done.read_bytes())
                else:
                    # a worker that failed here left a partial folder (and its error in its own report)
                    shutil.rmtree(folder, ignore_errors=True)
                    folder.mkdir()
                    self._cache[key] = make(folder)
                    done.write_bytes(pickle.dumps(self._cache[key]))
        return self._cache[key]

    def checkpoint(self, cfg, seed: int = 0):
        """(path, model in eval mode) of perturbed_model(cfg, seed) saved in the project's layout."""
        from fgsa.checkpoint import save_checkpoint

        path = self._once(("ckpt", cfg, seed),
                          lambda folder: save_checkpoint(folder / "model.pth", perturbed_model(cfg, seed)))
        # the model is rebuilt in each process (seeded, so equal to the saved weights) rather than pickled
        key = ("model", cfg, seed)
        if key not in self._cache:
            self._cache[key] = perturbed_model(cfg, seed)
        return path, self._cache[key]

    def export(self, cfg, seed: int = 0, **options):
        """ExportResult of export.onnx on checkpoint(cfg, seed) with ExportOptions(**options) (out and quiet set
        here; parity off unless asked for); asserts the export is ok."""
        from export.onnx import ExportOptions, export_onnx

        options = {"parity": False, **options}
        ckpt = self.checkpoint(cfg, seed)[0]

        def make(folder):
            result = export_onnx(ExportOptions(ckpt=ckpt, out=folder, quiet=True, **options))
            assert result.ok, (result.lint, [row.to_dict() for row in result.parity])
            return result

        return self._once(("export", cfg, seed, tuple(sorted(options.items()))), make)

    def benchmark(self, cfg):
        """fgsa.data.synthetic.generate(cfg) in its own folder (a GeneratedBenchmark)."""
        from fgsa.data.synthetic import generate

        return self._once(("synthetic", cfg), lambda folder: generate(folder / "synthetic", cfg))


@pytest.fixture(scope="session")
def factory(tmp_path_factory) -> Factory:
    return Factory(tmp_path_factory)


# ---- shared by tests/export/test_precision.py and tests/calibration ----

@pytest.fixture(scope="session")
def precision_ckpt(factory):
    """fmmp-tiny with perturbed predictor weights."""
    return factory.checkpoint("fmmp-tiny", seed=1)[0]


@pytest.fixture(scope="session")
def precision_graphs(factory):
    """{'fp32': ExportResult, 'fp16': ExportResult} of precision_ckpt (plugin form, B=1); fp16 with its parity
    check."""
    return {p: factory.export("fmmp-tiny", seed=1, precision=p, parity=p == "fp16") for p in ("fp32", "fp16")}
