"""A deterministic synthetic CAPE benchmark in the MP-100 COCO format.

    python -m fgsa.data.synthetic --out DIR [--seed 0] [--train-categories 60] [--val-categories 5]
                                  [--test-categories 20] [--instances-per-category 30]

Each category is a random articulated shape: a random tree over its 5..40 keypoints (a node hangs off
the previous one half of the time, so there are limb-like chains as well as branches), plus, for some
categories, a few extra edges between siblings (so skeletons are graphs, not only trees). Some
categories of every split have more than 30 keypoints, to exercise padding to 70.

Appearance is what makes a keypoint findable only by appearance and structure:
  - limbs are thick segments in a per-category palette, modulated by a per-category texture (stripes,
    checker, dots or blotches) that turns with the object;
  - every keypoint carries a small marker whose shape, colour and size depend on the keypoint id *within
    the category* (re-drawn at random for every category, so the support image is needed to know it);
  - backgrounds are noisy, textured and hold distractors: random limb-like bars and marker-like blobs.
Per instance: joint-angle and length jitter, rotation (+-30 deg), scale, translation, image size
(200..320 px per side), sometimes truncation by the image border (those keypoints get v = 0 and
coordinates (0, 0), as unlabelled COCO points) and sometimes an occluder patch (keypoints under it keep
their coordinates with v = 1, "labelled but not visible"; all others v = 2).

Keypoint coordinates are the marker centres in OpenCV's convention (pixel centres at integers), the frame
mmpose's affine crop also uses. Skeletons are written 0-based (FMMP's convention). bbox is the tight box
of the drawn object (limbs and markers, before occlusion).

Output layout (one unified file, like the official mp100_all file, plus split lists):
    DIR/annotations/synthetic_all.json   images, annotations, categories
    DIR/annotations/splits.json          {"train": [...], "val": [...], "test": [...]} category ids
    DIR/images/cCCC/IIII.jpg             one object per image
Read it back with `fgsa.data.mp100.load_mp100(DIR/annotations/synthetic_all.json,
split_file=DIR/annotations/splits.json, subset="test")`.

Everything is drawn from NumPy generators seeded by (seed, category, instance), so the output is
byte-identical for a given seed and version of NumPy/OpenCV, and one category does not change when
others are added.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from fgsa.cli import command
from fgsa.errors import InputError

ANN_NAME = "synthetic_all.json"
SPLIT_NAME = "splits.json"
_SHIFT = 4  # OpenCV sub-pixel drawing: coordinates are passed times 2**_SHIFT
_ONE = 1 << _SHIFT
_N_MARKER_SHAPES = 7


@dataclass(frozen=True)
class SyntheticConfig:
    """Generator settings. Defaults: 85 categories x 30 instances = 2,550 images (~15-20 s on one core)."""

    seed: int = 0
    train_categories: int = 60
    val_categories: int = 5
    test_categories: int = 20
    instances_per_category: int = 30
    min_keypoints: int = 5
    max_keypoints: int = 40
    min_image_side: int = 200
    max_image_side: int = 320
    max_rotation_deg: float = 30.0
    occlusion_prob: float = 0.35
    truncation_prob: float = 0.15
    jpeg_quality: int = 90

    def validate(self) -> None:
        if self.train_categories < 1 or self.test_categories < 1 or self.val_categories < 0:
            raise InputError("categories", "train >= 1, test >= 1, val >= 0",
                             (self.train_categories, self.val_categories, self.test_categories))
        if self.instances_per_category < 2:
            raise InputError("instances_per_category", ">= 2 (one support and one query)",
                             self.instances_per_category)
        if not 2 <= self.min_keypoints <= self.max_keypoints <= 70:
            raise InputError("min_keypoints/max_keypoints", "2 <= min <= max <= 70",
                             (self.min_keypoints, self.max_keypoints))
        if not 64 <= self.min_image_side <= self.max_image_side:
            raise InputError("min_image_side/max_image_side", "64 <= min <= max",
                             (self.min_image_side, self.max_image_side))


@dataclass(frozen=True)
class GeneratedBenchmark:
    """Where `generate` wrote things, and how much."""

    root: Path
    ann_file: Path
    split_file: Path
    image_dir: Path
    splits: dict[str, tuple[int, ...]]
    num_images: int
    seconds: float


# ----------------------------------------------------------------------------------------------------
# categories


@dataclass(frozen=True, eq=False)
class _Category:
    cid: int
    num_kpts: int
    parent: np.ndarray        # (K,) int, -1 for the root
    rel_angle: np.ndarray     # (K,) rest angle relative to the parent's bone (root children: absolute)
    length: np.ndarray        # (K,) rest bone length (template units)
    skeleton: list[tuple[int, int]]   # 0-based, file order (tree edges, some reversed, then extras)
    extra_edges: list[tuple[int, int]]
    palette: np.ndarray       # (P, 3) BGR limb colours
    edge_colour: np.ndarray   # (K,) palette index of the bone ending at node k
    edge_thick: np.ndarray    # (K,) bone thickness as a fraction of the object extent
    texture: int              # 0 stripes, 1 checker, 2 dots, 3 blotches
    tex_period: float
    tex_angle: float
    tex_contrast: float
    marker_shape: np.ndarray  # (K,) int in [0, _N_MARKER_SHAPES)
    marker_colour: np.ndarray  # (K, 3) BGR
    marker_colour2: np.ndarray  # (K, 3) BGR second colour (rings, bullseyes)
    marker_size: np.ndarray   # (K,) radius as a fraction of the object extent
    marker_angle: np.ndarray  # (K,) orientation of polygon markers
    outline: tuple[int, int, int]
    jitter: float             # joint angle noise (rad)


def _hsv_to_bgr(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N,) hue in [0, 1), saturation, value -> (N, 3) uint8 BGR."""
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.round(np.stack([b, g, r], axis=1) * 255).astype(np.uint8)


def _bright_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    return _hsv_to_bgr(rng.random(n), rng.uniform(0.55, 1.0, n), rng.uniform(0.55, 1.0, n))


def _make_category(cid: int, num_kpts: int, seed: int) -> _Category:
    rng = np.random.default_rng([seed, 1, cid])
    k = num_kpts
    parent = np.full(k, -1)
    for i in range(1, k):
        parent[i] = i - 1 if rng.random() < 0.5 else rng.integers(0, i)
    rel_angle = rng.uniform(-1.0, 1.0, k)
    root_children = np.flatnonzero(parent == 0)
    rel_angle[root_children] = (2 * np.pi * np.arange(len(root_children)) / len(root_children)
                                + rng.uniform(0, 2 * np.pi) + rng.uniform(-0.3, 0.3, len(root_children)))
    length = rng.uniform(0.55, 1.0, k)

    edges = [(int(parent[i]), i) if rng.random() < 0.8 else (i, int(parent[i])) for i in range(1, k)]
    extras: list[tuple[int, int]] = []
    if rng.random() < 0.4:
        for p in rng.permutation(k):
            kids = np.flatnonzero(parent == p)
            if len(kids) >= 2:
                a, b = rng.choice(kids, 2, replace=False)
                extras.append((int(a), int(b)))
            if len(extras) >= 3:
                break
    order = rng.permutation(len(edges))
    skeleton = [edges[i] for i in order] + extras

    n_pal = int(rng.integers(1, 4))
    palette = _bright_colours(rng, n_pal)
    return _Category(
        cid=cid, num_kpts=k, parent=parent, rel_angle=rel_angle, length=length, skeleton=skeleton,
        extra_edges=extras, palette=palette, edge_colour=rng.integers(0, n_pal, k),
        edge_thick=rng.uniform(0.035, 0.065) * rng.uniform(0.7, 1.3, k),
        texture=int(rng.integers(0, 4)), tex_period=float(rng.uniform(4.0, 10.0)),
        tex_angle=float(rng.uniform(0, np.pi)), tex_contrast=float(rng.uniform(0.2, 0.4)),
        marker_shape=rng.integers(0, _N_MARKER_SHAPES, k), marker_colour=_bright_colours(rng, k),
        marker_colour2=_bright_colours(rng, k), marker_size=rng.uniform(0.018, 0.03) * rng.uniform(0.8, 1.25, k),
        marker_angle=rng.uniform(0, np.pi, k),
        outline=(0, 0, 0) if rng.random() < 0.5 else (255, 255, 255), jitter=float(rng.uniform(0.12, 0.3)))


def _pose(cat: _Category, rng: np.random.Generator) -> np.ndarray:
    """(K, 2) keypoints of a jittered pose in template units (parents always precede children)."""
    k = cat.num_kpts
    ang = cat.rel_angle + np.clip(rng.normal(0, cat.jitter, k), -2 * cat.jitter, 2 * cat.jitter)
    length = cat.length * rng.uniform(0.85, 1.15, k)
    pts = np.zeros((k, 2))
    absang = np.zeros(k)
    for i in range(1, k):
        p = cat.parent[i]
        absang[i] = ang[i] if p == 0 else absang[p] + ang[i]
        pts[i] = pts[p] + length[i] * np.array([math.cos(absang[i]), math.sin(absang[i])])
    return pts


# ----------------------------------------------------------------------------------------------------
# drawing


def _fx(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * _ONE)), int(round(float(p[1]) * _ONE))


def _fx_all(pts: np.ndarray) -> list[tuple[int, int]]:
    """(N, 2) float pixel coords -> OpenCV fixed-point tuples, all at once (per-point rounding is slow)."""
    return [(int(x), int(y)) for x, y in np.round(pts * _ONE).astype(np.int64)]


def _poly(center: np.ndarray, r: float, n: int, angle: float) -> np.ndarray:
    t = angle + 2 * np.pi * np.arange(n) / n
    pts = center[None] + r * np.stack([np.cos(t), np.sin(t)], axis=1)
    return np.round(pts * _ONE).astype(np.int32)


def _marker(img: np.ndarray, c: np.ndarray, r: float, shape: int, col, col2, outline, angle: float,
            cfx: tuple[int, int] | None = None) -> None:
    """Draw one keypoint marker centred at c (pixel coords; cfx = its fixed-point form if known);
    shape selects one of 7 designs."""
    col, col2 = tuple(int(v) for v in col), tuple(int(v) for v in col2)
    aa = cv2.LINE_AA
    ri = max(1, int(round(r * _ONE)))
    cfx = _fx(c) if cfx is None else cfx
    if shape == 0:  # disk
        cv2.circle(img, cfx, ri, col, -1, aa, _SHIFT)
        cv2.circle(img, cfx, ri, outline, 1, aa, _SHIFT)
    elif shape == 1:  # ring
        cv2.circle(img, cfx, ri, outline, -1, aa, _SHIFT)
        cv2.circle(img, cfx, max(1, int(ri * 0.75)), col, -1, aa, _SHIFT)
        cv2.circle(img, cfx, max(1, int(ri * 0.4)), col2, -1, aa, _SHIFT)
    elif shape in (2, 3, 4):  # square, diamond (rotated square), triangle
        n = 3 if shape == 4 else 4
        pts = _poly(c, r * (1.25 if n == 3 else 1.1), n, angle + (np.pi / 4 if shape == 3 else 0.0))
        cv2.fillPoly(img, [pts], col, aa, _SHIFT)
        cv2.polylines(img, [pts], True, outline, 1, aa, _SHIFT)
    elif shape == 5:  # cross
        d = np.array([math.cos(angle), math.sin(angle)]) * r * 1.2
        e = np.array([-d[1], d[0]])
        th = max(2, int(round(r * 0.7)))
        cv2.line(img, _fx(c - d), _fx(c + d), col, th, aa, _SHIFT)
        cv2.line(img, _fx(c - e), _fx(c + e), col2, th, aa, _SHIFT)
    else:  # bullseye: two-colour disk
        cv2.circle(img, cfx, ri, col2, -1, aa, _SHIFT)
        cv2.circle(img, cfx, max(1, int(ri * 0.5)), col, -1, aa, _SHIFT)
        cv2.circle(img, cfx, ri, outline, 1, aa, _SHIFT)


def _texture(kind: int, h: int, w: int, period: float, angle: float, contrast: float,
             rng: np.random.Generator, x0: int = 0, y0: int = 0) -> np.ndarray:
    """(H, W) float32 multiplicative texture around 1, for the window whose top-left pixel is (x0, y0)
    (so a texture evaluated on a window lines up with the same texture on the whole image)."""
    xs = np.arange(x0, x0 + w, dtype=np.float32)[None, :]
    ys = np.arange(y0, y0 + h, dtype=np.float32)[:, None]
    f = np.float32(2 * np.pi / period)
    ca, sa = np.float32(math.cos(angle)) * f, np.float32(math.sin(angle)) * f
    if kind == 0:
        t = np.sign(np.sin(xs * ca + ys * sa))
    elif kind in (1, 2):
        prod = np.sin(xs * ca + ys * sa) * np.sin(ys * ca - xs * sa)
        t = np.sign(prod) if kind == 1 else np.where(prod > 0.5, np.float32(1.0), np.float32(-0.6))
    else:
        small = rng.random((max(2, int(h / period / 1.5)), max(2, int(w / period / 1.5))), dtype=np.float32)
        t = cv2.resize(small * 2 - 1, (w, h), interpolation=cv2.INTER_CUBIC)
    return (np.float32(1.0) + np.float32(contrast) * t).astype(np.float32)


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 noisy textured background with limb-like and marker-like distractors."""
    gh, gw = (int(v) for v in rng.integers(2, 7, 2))
    grey = float(rng.uniform(70, 190))
    small = (0.55 * rng.integers(20, 236, (gh, gw, 3)) + 0.45 * grey).astype(np.uint8)  # muted colours
    # cubic to 32 x 32 then linear: smooth, and ~20x cheaper than one cubic upscale from a tiny grid
    low = cv2.resize(cv2.resize(small, (32, 32), interpolation=cv2.INTER_CUBIC), (w, h),
                     interpolation=cv2.INTER_LINEAR)
    # the texture is evaluated at half resolution (4x cheaper) and upsampled
    tex = _texture(int(rng.integers(0, 4)), (h + 1) // 2, (w + 1) // 2, float(rng.uniform(3, 12)),
                   float(rng.uniform(0, np.pi)), float(rng.uniform(0.05, 0.2)), rng)
    tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)
    # texture and noise are one grey-level offset added to every channel, in saturating OpenCV arithmetic
    delta = ((tex - np.float32(1.0)) * np.float32(160.0)).astype(np.int16)
    delta += rng.integers(-18, 19, (h, w), dtype=np.int16)
    img = cv2.add(low, cv2.merge([delta, delta, delta]), dtype=cv2.CV_8U)
    n_bars, n_blobs = int(rng.integers(2, 6)), int(rng.integers(3, 9))
    cols = _bright_colours(rng, n_bars + 2 * n_blobs)  # one call: drawing ~10 shapes is Python-bound
    for i in range(n_bars):  # limb-like bars
        p, q = rng.uniform([0, 0], [w, h], (2, 2))
        cv2.line(img, _fx(p), _fx(q), tuple(int(c) for c in cols[i]), int(rng.integers(3, 12)), cv2.LINE_AA,
                 _SHIFT)
    for i in range(n_blobs):  # marker-like blobs
        c = rng.uniform([0, 0], [w, h])
        _marker(img, c, float(rng.uniform(2.5, 6)), int(rng.integers(0, _N_MARKER_SHAPES)),
                cols[n_bars + 2 * i], cols[n_bars + 2 * i + 1],
                (0, 0, 0) if rng.random() < 0.5 else (255, 255, 255), float(rng.uniform(0, np.pi)))
    return img


def _place(cat: _Category, cfg: SyntheticConfig, w: int, h: int, rng: np.random.Generator
           ) -> tuple[np.ndarray, float, float]:
    """Pose, rotate, scale and translate: (K, 2) pixel keypoints, extent (px) and rotation (rad)."""
    pts = _pose(cat, rng)
    rot = math.radians(float(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)))
    rmat = np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    pts = pts @ rmat.T * np.array([1.0, rng.uniform(0.9, 1.1)])
    lo, hi = pts.min(0), pts.max(0)
    extent_units = float(max((hi - lo).max(), 1e-6))
    extent = float(rng.uniform(0.55, 0.9)) * min(w, h)
    pts = (pts - (lo + hi) / 2) * (extent / extent_units)
    half = (hi - lo) / 2 * (extent / extent_units)
    margin = 0.06 * extent
    size = np.array([w, h], dtype=np.float64)
    low, high = half + margin, size - half - margin
    if rng.random() < cfg.truncation_prob:  # let up to a quarter of the object leave the image
        low, high = low - 0.25 * 2 * half, high + 0.25 * 2 * half
    centre = rng.uniform(np.minimum(low, high), np.maximum(low, high))
    return pts + centre, extent, rot


def _render_instance(cat: _Category, cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One image (H, W, 3) BGR uint8 and its annotation fields (bbox, keypoints, num_keypoints, area)."""
    w, h = (int(v) for v in rng.integers(cfg.min_image_side, cfg.max_image_side + 1, 2))
    for _ in range(20):  # redraw placements that leave too few keypoints inside the image
        pts, extent, rot = _place(cat, cfg, w, h, rng)
        pts = np.round(pts, 2)
        inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)
        if inside.sum() >= max(2, (cat.num_kpts + 1) // 2):
            break
    img = _background(h, w, rng)

    # limbs: anti-aliased alpha mask, flat per-bone colours, one texture over all of them
    alpha = np.zeros((h, w), np.uint8)
    colour = np.zeros((h, w, 3), np.uint8)
    pfx = _fx_all(pts)
    thick = np.maximum(2, np.round(cat.edge_thick * extent)).astype(int).tolist()
    palette = [tuple(int(c) for c in col) for col in cat.palette]
    for i in range(1, cat.num_kpts):
        p, q = pfx[cat.parent[i]], pfx[i]
        cv2.line(alpha, p, q, 255, thick[i], cv2.LINE_AA, _SHIFT)
        cv2.line(colour, p, q, palette[cat.edge_colour[i]], thick[i] + 2, cv2.LINE_8, _SHIFT)
    for a, b in cat.extra_edges:  # thin webbing between siblings
        cv2.line(alpha, pfx[a], pfx[b], 255, 2, cv2.LINE_AA, _SHIFT)
        cv2.line(colour, pfx[a], pfx[b], cat.outline, 4, cv2.LINE_8, _SHIFT)
    # composite only inside the limbs' bounding box (the expensive part is per pixel)
    x0, y0, rw, rh = cv2.boundingRect(alpha)
    if rw > 0 and rh > 0:
        tex = _texture(cat.texture, rh, rw, cat.tex_period * extent / 150.0, cat.tex_angle + rot,
                       cat.tex_contrast, rng, x0, y0)
        a = alpha[y0:y0 + rh, x0:x0 + rw].astype(np.float32) * np.float32(1 / 255)
        limb = cv2.multiply(colour[y0:y0 + rh, x0:x0 + rw], cv2.merge([tex, tex, tex]), dtype=cv2.CV_8U)
        img[y0:y0 + rh, x0:x0 + rw] = cv2.blendLinear(limb, img[y0:y0 + rh, x0:x0 + rw], a, 1 - a)

    # markers: their extents also count for the bbox
    obj = alpha.copy()
    for k in range(cat.num_kpts):
        r = max(2.5, float(cat.marker_size[k] * extent))
        _marker(img, pts[k], r, int(cat.marker_shape[k]), cat.marker_colour[k], cat.marker_colour2[k],
                cat.outline, float(cat.marker_angle[k] + rot), pfx[k])
        cv2.circle(obj, pfx[k], int(round((r + 1) * _ONE)), 255, -1, cv2.LINE_8, _SHIFT)
    bx, by, bw, bh = cv2.boundingRect((obj > 0).astype(np.uint8))

    # occluder: a textured blob over part of the object; keypoints under it become v = 1
    vis = np.where(inside, 2, 0)
    if rng.random() < cfg.occlusion_prob and inside.any():
        centre = pts[rng.choice(np.flatnonzero(inside))] + rng.normal(0, 0.05 * extent, 2)
        radius = float(rng.uniform(0.1, 0.22)) * extent
        n = int(rng.integers(3, 9))
        t = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = radius * rng.uniform(0.6, 1.3, n)
        poly = np.round((centre + np.stack([np.cos(t), np.sin(t)], 1) * rad[:, None]) * _ONE).astype(np.int32)
        occ = np.zeros((h, w), np.uint8)
        cv2.fillPoly(occ, [poly], 255, cv2.LINE_8, _SHIFT)
        ox, oy, ow, oh = cv2.boundingRect(occ)
        if ow > 0 and oh > 0:
            fill = np.clip(_bright_colours(rng, 1)[0].astype(np.float32) * 0.8
                           + rng.integers(-30, 31, (oh, ow, 1)).astype(np.float32), 0, 255).astype(np.uint8)
            m = occ[oy:oy + oh, ox:ox + ow] > 0
            img[oy:oy + oh, ox:ox + ow][m] = fill[m]
        ix = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
        iy = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
        vis = np.where(inside & (occ[iy, ix] > 0), 1, vis)

    img = cv2.convertScaleAbs(img, alpha=float(rng.uniform(0.85, 1.15)), beta=float(rng.uniform(-15, 15)))

    kps = []
    for (x, y), v in zip(pts, vis):
        kps += [float(x), float(y), int(v)] if v > 0 else [0.0, 0.0, 0]
    ann = dict(bbox=[float(bx), float(by), float(bw), float(bh)], area=float(bw * bh), keypoints=kps,
               num_keypoints=int((vis > 0).sum()))
    return img, ann


# ----------------------------------------------------------------------------------------------------
# the benchmark


def _split_ids(cfg: SyntheticConfig) -> dict[str, tuple[int, ...]]:
    n = cfg.train_categories + cfg.val_categories + cfg.test_categories
    ids = [int(i) + 1 for i in np.random.default_rng([cfg.seed, 0]).permutation(n)]
    a, b = cfg.train_categories, cfg.train_categories + cfg.val_categories
    return {"train": tuple(ids[:a]), "val": tuple(ids[a:b]), "test": tuple(ids[b:])}


def _keypoint_counts(cfg: SyntheticConfig, splits: dict[str, tuple[int, ...]]) -> dict[int, int]:
    """K per category: uniform in [min, max], but every 8th category of each split (starting with its
    first) gets more than 30 when max allows, so padding of big categories is always exercised."""
    out = {}
    for ids in splits.values():
        for pos, cid in enumerate(ids):
            rng = np.random.default_rng([cfg.seed, 3, cid])
            lo = 31 if pos % 8 == 0 and cfg.max_keypoints > 30 else cfg.min_keypoints
            out[cid] = int(rng.integers(max(lo, cfg.min_keypoints), cfg.max_keypoints + 1))
    return out


def generate(out_dir: str | Path, cfg: SyntheticConfig = SyntheticConfig(), verbose: bool = False
             ) -> GeneratedBenchmark:
    """Write the benchmark under out_dir (see the module docstring); returns where and how much."""
    cfg.validate()
    t0 = time.perf_counter()
    root = Path(out_dir)
    ann_dir, img_dir = root / "annotations", root / "images"
    ann_dir.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)

    splits = _split_ids(cfg)
    counts = _keypoint_counts(cfg, splits)
    images, annotations, categories = [], [], []
    for cid in sorted(counts):
        cat = _make_category(cid, counts[cid], cfg.seed)
        categories.append(dict(id=cid, name=f"synthetic_{cid:03d}", supercategory="synthetic",
                               keypoints=[f"kp{k}" for k in range(cat.num_kpts)],
                               skeleton=[[s, e] for s, e in cat.skeleton]))
        (img_dir / f"c{cid:03d}").mkdir(exist_ok=True)
        for j in range(cfg.instances_per_category):
            img, ann = _render_instance(cat, cfg, np.random.default_rng([cfg.seed, 2, cid, j]))
            name = f"c{cid:03d}/{j:04d}.jpg"
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
            if not ok:
                raise RuntimeError(f"OpenCV could not encode {name}")
            (img_dir / name).write_bytes(buf.tobytes())
            image_id = len(images) + 1
            images.append(dict(id=image_id, file_name=name, width=int(img.shape[1]), height=int(img.shape[0])))
            annotations.append(dict(id=image_id, image_id=image_id, category_id=cid, iscrowd=0, **ann))
        if verbose:
            print(f"category {cid:3d}: {cat.num_kpts:2d} keypoints, {len(cat.skeleton):2d} edges", file=sys.stderr)

    data = dict(info=dict(description="fgsa synthetic CAPE benchmark", config=asdict(cfg)),
                images=images, annotations=annotations, categories=categories)
    ann_file, split_file = ann_dir / ANN_NAME, ann_dir / SPLIT_NAME
    ann_file.write_text(json.dumps(data, separators=(",", ":")))
    split_file.write_text(json.dumps({k: list(v) for k, v in splits.items()}, indent=1))
    return GeneratedBenchmark(root=root, ann_file=ann_file, split_file=split_file, image_dir=img_dir,
                              splits=splits, num_images=len(images), seconds=time.perf_counter() - t0)


@command(one_line=False)
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fgsa.data.synthetic", description=__doc__.split("\n\n")[0])
    d = SyntheticConfig()
    ap.add_argument("--out", required=True, help="output folder (annotations/ and images/ go inside)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--train-categories", type=int, default=d.train_categories)
    ap.add_argument("--val-categories", type=int, default=d.val_categories)
    ap.add_argument("--test-categories", type=int, default=d.test_categories)
    ap.add_argument("--instances-per-category", type=int, default=d.instances_per_category)
    ap.add_argument("--min-keypoints", type=int, default=d.min_keypoints)
    ap.add_argument("--max-keypoints", type=int, default=d.max_keypoints)
    ap.add_argument("--verbose", action="store_true", help="print one line per category")
    args = ap.parse_args(argv)
    cfg = SyntheticConfig(seed=args.seed, train_categories=args.train_categories,
                          val_categories=args.val_categories, test_categories=args.test_categories,
                          instances_per_category=args.instances_per_category,
                          min_keypoints=args.min_keypoints, max_keypoints=args.max_keypoints)
    cv2.setNumThreads(1)  # reproducible timing on the shared CPU; output does not depend on it
    out = generate(args.out, cfg, verbose=args.verbose)
    print(f"wrote {out.num_images} images of {sum(len(v) for v in out.splits.values())} categories "
          f"({len(out.splits['train'])} train, {len(out.splits['val'])} val, {len(out.splits['test'])} test) "
          f"to {out.root} in {out.seconds:.1f} s\n  annotations: {out.ann_file}\n  splits: {out.split_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
