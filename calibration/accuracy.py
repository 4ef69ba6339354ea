"""Run graphs on prepared episodes (ONNX Runtime, CPU) and score them: PCK, and pixel error against FP32.

Predictions are the graph's ``points`` output (x, y in [0, 1] of the query crop), decoded to original
image pixels exactly as ``python -m fgsa.evaluate`` does, and scored with the official protocol
(:mod:`fgsa.metrics.pck`). Pixel errors against the FP32 graph are measured on the keypoints PCK scores
(annotated in the query and every support), in original image pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import onnx
from tqdm import tqdm

from calibration.episodes import EpisodeSet
from calibration.qdq import is_qdq_graph
from fgsa.metrics.pck import PCKAccumulator, PCKResult, pck_mask
from fgsa.preprocess import decode_points


@dataclass
class Run:
    """One graph on one episode set: ``points`` [N, K, 2] normalised crop coordinates."""

    name: str
    points: np.ndarray
    seconds: float


def session_for(model: onnx.ModelProto | str, threads: int = 1):
    """CPU session; Q/DQ graphs run as written (float math on dequantized values, like TensorRT's kernels)."""
    from export.ort_ops import cpu_session

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(model)
    return cpu_session(model, threads=threads, basic_optimizations=is_qdq_graph(model))


def predict(session, episodes: EpisodeSet, name: str = "graph", progress: bool = True) -> Run:
    out = []
    t0 = time.perf_counter()
    for i in tqdm(range(len(episodes)), desc=name, disable=None if progress else True, dynamic_ncols=True, leave=False):
        out.append(session.run(["points"], episodes.feed(i))[0][0])
    return Run(name, np.stack(out), time.perf_counter() - t0)


def _image_pixels(points: np.ndarray, episodes: EpisodeSet) -> np.ndarray:
    centers = np.stack([it["query_center"].numpy() for it in episodes.items])
    scales = np.stack([it["query_scale"].numpy() for it in episodes.items])
    return decode_points(points.astype(np.float64), centers, scales)


def _masks(episodes: EpisodeSet) -> list[np.ndarray]:
    masks = []
    for it in episodes.items:
        k = int(it["num_keypoints"])
        masks.append(pck_mask(it["query_flags"][:k].numpy(), it["support_flags"][:, :k].numpy()))
    return masks


def pck(run: Run, episodes: EpisodeSet) -> PCKResult:
    acc = PCKAccumulator()
    pixels = _image_pixels(run.points, episodes)
    for b, it in enumerate(episodes.items):
        k = int(it["num_keypoints"])
        acc.add(pixels[b], it["query_keypoints"][:k].numpy(), it["query_flags"][:k].numpy(),
                it["support_flags"][:, :k].numpy(), it["query_bbox"].numpy(), int(it["category_id"]))
    return acc.result()


def copy_support_run(episodes: EpisodeSet) -> Run:
    """The copy-support baseline's points for every pair (what a model that ignores the query would say)."""
    import torch

    from fgsa.evaluate import copy_support_points

    points = torch.stack([it["support_points"] for it in episodes.items]).double()
    flags = torch.stack([it["support_flags"] for it in episodes.items])
    return Run("copy-support baseline", copy_support_points(points, flags).numpy(), 0.0)


def pixel_error(run: Run, reference: Run, episodes: EpisodeSet, input_size: int = 256) -> dict[str, float]:
    """Distance to ``reference``'s predictions on the scored keypoints, in original image pixels (mean, p95,
    max) and in crop pixels (p95: the pixel budget's measure)."""
    a, b = (_image_pixels(r.points, episodes).astype(np.float64) for r in (run, reference))
    dists = [np.linalg.norm(a[i, : len(m)][m] - b[i, : len(m)][m], axis=-1) for i, m in enumerate(_masks(episodes))]
    # the same distances in crop pixels: the query crop spans 200 * scale image pixels over `input_size`
    per_crop = [input_size / (200.0 * float(it["query_scale"][0])) for it in episodes.items]
    d = np.concatenate(dists) if dists else np.zeros(0)
    crop = np.concatenate([x * f for x, f in zip(dists, per_crop)]) if dists else np.zeros(0)
    if d.size == 0:
        return {"mean_px": 0.0, "p95_px": 0.0, "max_px": 0.0, "p95_crop_px": 0.0, "keypoints": 0}
    return {"mean_px": float(d.mean()), "p95_px": float(np.percentile(d, 95)), "max_px": float(d.max()),
            "p95_crop_px": float(np.percentile(crop, 95)), "keypoints": int(d.size)}


def delta_interval(run: PCKResult, reference: PCKResult, z: float = 1.96) -> tuple[float, float]:
    """95 % confidence interval of ``reference``'s PCK@0.05 minus ``run``'s, in points, from the paired
    per-image differences (normal approximation); (-inf, inf) with fewer than two images."""
    d = 100 * (reference.per_image[:, 0] - run.per_image[:, 0])
    if d.size < 2:
        return float("-inf"), float("inf")
    half = z * float(d.std(ddof=1)) / np.sqrt(d.size)
    return float(d.mean() - half), float(d.mean() + half)


def crop_pixel_error(run: Run, reference: Run, episodes: EpisodeSet, input_size: int = 256) -> float:
    """Mean distance to ``reference`` over every real keypoint (annotated or not), in crop pixels: a dense
    signal for ranking layer sensitivity."""
    d = np.linalg.norm((run.points - reference.points) * input_size, axis=-1)
    counts = [int(it["num_keypoints"]) for it in episodes.items]
    return float(np.mean(np.concatenate([d[i, :k] for i, k in enumerate(counts)])))
