"""The drift plot: relative error of every tensor along the graph, one panel per precision, drawn with OpenCV.

OpenCV is already a base dependency (crops, drawing); matplotlib is not installed in this project's
environment and would be a new dependency for one figure (calibration/README.md). Each panel: x = tensor
index in graph order, y = log10 relative error (dots: within budget grey-blue, over budget red), the budget
as a grey line, the first tensor over budget as a red vertical line with its name.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from fgsa.errors import InputError

W, PANEL_H, MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 1400, 340, 70, 20, 50, 30
LO, HI = -8.0, 1.0  # log10 relative error range shown (clipped)
BG, AXIS, DOT, OVER, BUDGET = (255, 255, 255), (90, 90, 90), (180, 110, 40), (30, 30, 220), (160, 160, 160)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _y(v: float | None, top: int) -> int:
    lv = LO if not v or v <= 0 else (HI if not math.isfinite(v) else min(HI, max(LO, math.log10(v))))
    return int(top + MARGIN_T + (HI - lv) / (HI - LO) * (PANEL_H - MARGIN_T - MARGIN_B))


def _panel(img: np.ndarray, top: int, title: str, rows: list[dict]) -> None:
    n = max(1, len(rows))
    x = lambda i: int(MARGIN_L + i / max(1, n - 1) * (W - MARGIN_L - MARGIN_R))  # noqa: E731
    cv2.putText(img, title, (MARGIN_L, top + 22), FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for e in range(int(LO), int(HI) + 1):
        y = _y(10.0 ** e, top)
        cv2.line(img, (MARGIN_L, y), (W - MARGIN_R, y), (235, 235, 235), 1)
        cv2.putText(img, f"1e{e}", (8, y + 4), FONT, 0.4, AXIS, 1, cv2.LINE_AA)
    cv2.line(img, (MARGIN_L, top + MARGIN_T), (MARGIN_L, top + PANEL_H - MARGIN_B), AXIS, 1)
    budget = [(x(i), _y(r["budget_rel"], top)) for i, r in enumerate(rows) if r["budget_rel"] is not None]
    if len(budget) > 1:
        cv2.polylines(img, [np.array(budget, np.int32)], False, BUDGET, 1, cv2.LINE_AA)
    first = None
    for i, r in enumerate(rows):
        if r["rel"] is None:
            continue
        cv2.circle(img, (x(i), _y(r["rel"], top)), 2, OVER if r["over"] else DOT, -1, cv2.LINE_AA)
        if r["over"] and first is None:
            first = (i, r)
    if first is not None:
        i, r = first
        cv2.line(img, (x(i), top + MARGIN_T), (x(i), top + PANEL_H - MARGIN_B), OVER, 1)
        label = f"first over budget: #{r['index']} {r['op']} {r['tensor']}"
        cv2.putText(img, label[:150], (MARGIN_L, top + 40), FONT, 0.45, OVER, 1, cv2.LINE_AA)
    cv2.putText(img, "tensor index in graph order ->", (W - 300, top + PANEL_H - 8), FONT, 0.45, AXIS, 1,
                cv2.LINE_AA)


def plot(panels: dict[str, list[dict]], path: str | Path) -> Path:
    """``{title: rows (TensorDrift.to_dict(), graph order)}`` -> a PNG at ``path``."""
    img = np.full((PANEL_H * max(1, len(panels)), W, 3), BG, np.uint8)
    for k, (title, rows) in enumerate(panels.items()):
        _panel(img, k * PANEL_H, title, rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise InputError("--out", "a writable folder for the drift plot", str(path))
    return path
