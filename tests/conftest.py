"""Shared pytest setup: deterministic torch threads for a 2-core CI machine."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")


# ---- shared by tests/export/test_precision.py and tests/calibration (appended by the precision work) ----
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def precision_ckpt(tmp_path_factory):
    """fmmp-tiny with perturbed predictor weights (zero-init attention would hide indexing bugs)."""
    import torch

    from fgsa.checkpoint import save_checkpoint
    from fgsa.model import FMMP

    torch.manual_seed(1)
    model = FMMP("fmmp-tiny")
    with torch.no_grad():
        for p in model.predictor.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return save_checkpoint(tmp_path_factory.mktemp("precision_ckpt") / "tiny.pth", model)


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
