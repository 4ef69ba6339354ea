"""Parity of an exported graph against PyTorch: ONNX Runtime (CPU) vs the eager model on the same feeds.

Errors are reported per output in normalised units (points in [0, 1] of the crop) and in crop pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import torch

from export.ort_ops import cpu_session

FP32_TOLERANCE = 1e-4  # normalised units: the floor of every parity tolerance
#: fp32 graphs pass within this many times PyTorch's own float32-vs-float64 error on the same inputs
#: (flash-attention's habit: 2x the same-precision reference's error), never below FP32_TOLERANCE
FP32_TOLERANCE_FACTOR = 2.0


@dataclass
class ParityRow:
    graph: str
    case: str
    output: str
    max_abs: float
    mean_abs: float
    max_px: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_abs)) and self.max_abs <= self.tolerance

    def to_dict(self) -> dict:
        return {"graph": self.graph, "case": self.case, "output": self.output, "max_abs": self.max_abs,
                "mean_abs": self.mean_abs, "max_px": self.max_px, "tolerance": self.tolerance, "ok": self.ok}


def run_onnx(model: onnx.ModelProto | str, feed: dict[str, torch.Tensor | np.ndarray], session=None) -> dict:
    session = session or cpu_session(model)
    names = [i.name for i in session.get_inputs()]
    arrays = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in feed.items() if k in names}
    outs = session.run(None, arrays)
    return {o.name: v for o, v in zip(session.get_outputs(), outs)}


def compare(graph: str, case: str, got: dict, want: dict, pixels: float,
            tolerance: float = FP32_TOLERANCE) -> list[ParityRow]:
    rows = []
    for name, ref in want.items():
        diff = np.abs(np.asarray(got[name], dtype=np.float64) - np.asarray(ref, dtype=np.float64))
        max_abs = float(diff.max()) if diff.size and np.isfinite(diff).all() else float("inf")
        rows.append(ParityRow(graph, case, name, max_abs, float(diff.mean()), max_abs * pixels, tolerance))
    return rows


def format_table(rows: list[ParityRow]) -> str:
    lines = ["| graph | case | output | max abs | mean abs | max px | tol | ok |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.graph} | {r.case} | {r.output} | {r.max_abs:.2e} | {r.mean_abs:.2e} | "
                     f"{r.max_px:.2e} | {r.tolerance:.2e} | {'yes' if r.ok else 'NO'} |")
    return "\n".join(lines)
