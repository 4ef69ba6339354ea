"""Draw keypoints and skeletons on RGB images with OpenCV (what the predict and parity CLIs write)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from fgsa.files.images import read_image_rgb
from fgsa.files.outputs import IMAGE_EXTENSIONS, check_output_path, write_files
from runtime.errors import InputError

# a fixed, colour-blind-friendly cycle (RGB)
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
           (204, 121, 167), (255, 255, 255)]


def _scale_for(img: np.ndarray) -> float:
    return max(1.0, max(img.shape[:2]) / 400.0)


def draw_pose(img_rgb: np.ndarray, points: np.ndarray, skeleton: Sequence[Sequence[int]],
              color: tuple[int, int, int] | None = None, marker: str = "circle", labels: bool = False,
              thickness: float = 1.0, mask: np.ndarray | None = None) -> np.ndarray:
    """Return a copy of ``img_rgb`` (H, W, 3) uint8 with ``points`` (K, 2) image pixels and skeleton edges.

    color None: one palette colour per keypoint (edges grey); else everything in ``color``.
    marker: "circle" (filled) or "cross". mask (K,) bool: draw only these keypoints (and edges between them).
    """
    out = np.ascontiguousarray(img_rgb.copy())
    pts = np.asarray(points, dtype=np.float64)
    k = len(pts)
    keep = np.ones(k, bool) if mask is None else np.asarray(mask, bool)
    s = _scale_for(out) * thickness
    line = max(1, int(round(1.5 * s)))
    for a, b in skeleton:
        if a < k and b < k and keep[a] and keep[b]:
            c = color or (200, 200, 200)
            cv2.line(out, _px(pts[a]), _px(pts[b]), c, line, cv2.LINE_AA)
    radius = max(2, int(round(3 * s)))
    for i, p in enumerate(pts):
        if not keep[i] or not np.isfinite(p).all():
            continue
        c = color or PALETTE[i % len(PALETTE)]
        if marker == "cross":
            cv2.drawMarker(out, _px(p), c, cv2.MARKER_TILTED_CROSS, 2 * radius + 2, line, cv2.LINE_AA)
        else:
            cv2.circle(out, _px(p), radius, c, -1, cv2.LINE_AA)
            cv2.circle(out, _px(p), radius, (0, 0, 0), 1, cv2.LINE_AA)
        if labels:
            cv2.putText(out, str(i), _px(p + radius + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.35 * s, c, 1, cv2.LINE_AA)
    return out


def draw_box(img_rgb: np.ndarray, box_xywh: Sequence[float], color=(255, 255, 255)) -> np.ndarray:
    x, y, w, h = (float(v) for v in box_xywh)
    cv2.rectangle(img_rgb, _px((x, y)), _px((x + w, y + h)), color, 1, cv2.LINE_AA)
    return img_rgb


def legend(img_rgb: np.ndarray, entries: Sequence[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """A new image: a dark band with coloured text lines above ``img_rgb`` (never over it, so keypoints near
    the top stay visible), widened on the right when the text is wider than the image."""
    s = _scale_for(img_rgb)
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.45 * s
    line = int(16 * s)
    text_w = max(cv2.getTextSize(text, font, size, 1)[0][0] for text, _ in entries) + 8
    h, w = img_rgb.shape[:2]
    width = max(w, text_w)
    out = np.zeros((h + line * len(entries) + 4, width, 3), np.uint8)
    out[: line * len(entries) + 4] = 40
    out[line * len(entries) + 4:, :w] = img_rgb
    for i, (text, color) in enumerate(entries):
        cv2.putText(out, text, (4, line * (i + 1) - 3), font, size, color, 1, cv2.LINE_AA)
    return out


def enlarge(img_rgb: np.ndarray, min_side: int = 480) -> tuple[np.ndarray, float]:
    """Upscale small images (longer side < ``min_side``) so drawings stay legible -> (image, factor).
    Multiply points and boxes by ``factor`` before drawing them."""
    side = max(img_rgb.shape[:2])
    if side >= min_side:
        return img_rgb, 1.0
    factor = min_side / side
    size = (int(round(img_rgb.shape[1] * factor)), int(round(img_rgb.shape[0] * factor)))
    return cv2.resize(img_rgb, size, interpolation=cv2.INTER_LINEAR), size[0] / img_rgb.shape[1]


def grid(images: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Images in rows of ``columns`` (each row :func:`side_by_side`), rows stacked and padded with black."""
    rows = [side_by_side(*images[i:i + columns]) for i in range(0, len(images), columns)]
    w = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 4), (0, w - r.shape[1]), (0, 0))) for r in rows], axis=0)


def side_by_side(*images: np.ndarray) -> np.ndarray:
    """Images of any heights next to each other, padded at the bottom with black."""
    h = max(im.shape[0] for im in images)
    padded = [np.pad(im, ((0, h - im.shape[0]), (0, 4), (0, 0))) for im in images]
    return np.concatenate(padded, axis=1)


def encode_image(path: str | Path, img_rgb: np.ndarray, field: str = "--out") -> bytes:
    """The bytes of ``img_rgb`` in the format of ``path``'s extension (checked: .png, .jpg, ...)."""
    path = check_output_path(path, field, IMAGE_EXTENSIONS)
    ok, buf = cv2.imencode(path.suffix.lower(), cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(field, f"an image OpenCV can encode as {path.suffix}", str(path), "use .png")
    return buf.tobytes()


def save_png(path: str | Path, img_rgb: np.ndarray, field: str = "--out") -> Path:
    """Write a picture (format from the extension) all at once, never through a symbolic link."""
    path = Path(path)
    return write_files({path: (field, encode_image(path, img_rgb, field))})[0]


def load_rgb(path: str | Path, field: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB through :func:`fgsa.files.images.read_image_rgb` (pixel limit, damage checks)."""
    return read_image_rgb(path, field, max_pixels)


def _px(p) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))
