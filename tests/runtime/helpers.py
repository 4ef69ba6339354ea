"""Small builders shared by the runtime tests (random images and a 7-keypoint category)."""

from __future__ import annotations

import numpy as np

SKELETON = [[0, 1], [1, 2], [2, 3], [1, 4], [4, 5], [5, 6]]


def image(rng: np.random.Generator, h: int = 200, w: int = 260) -> np.ndarray:
    """A random RGB image with some smooth structure (uint8, (h, w, 3))."""
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    big = np.kron(base, np.ones((8, 8, 1)))[:h, :w]
    return np.clip(big + rng.normal(0, 20, big.shape), 0, 255).astype(np.uint8)


def keypoints(rng: np.random.Generator, box=(30, 25, 180, 150)) -> np.ndarray:
    """(7, 3) [x, y, v] inside ``box``; one occluded (v=1) and one unlabelled (v=0, at (0, 0))."""
    x, y, w, h = box
    kp = np.stack([x + rng.random(7) * w, y + rng.random(7) * h, np.full(7, 2.0)], axis=1)
    kp[3, 2] = 1
    kp[6] = 0
    return kp


def support_args(seed: int = 0, shots: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    box = [30.0, 25.0, 180.0, 150.0]
    return {"images": [image(rng) for _ in range(shots)], "keypoints": np.stack([keypoints(rng, box)
                                                                                   for _ in range(shots)]),
            "visible": None, "skeleton": SKELETON, "boxes": [box] * shots}


def queries(seed: int, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    imgs = [image(rng, 180 + 10 * (i % 3), 240) for i in range(n)]
    boxes = np.array([[10 + i, 12, 200 - 2 * i, 150] for i in range(n)], dtype=np.float64)
    return imgs, boxes
