"""torch Datasets of FMMP episodes: test pairs (official test pipeline) and training pairs (official recipe).

One item is one (supports..., query) pair of a category: S support images and one query, already through
:func:`fgsa.preprocess.prepare_instance`, as a dict of tensors. :func:`collate` stacks items into a batch
whose first five fields are exactly ``FMMP.forward``'s arguments (``model(**forward_inputs(batch))``); the
other fields are what the loss, decoding and PCK need. Fields (S shots, K = 70 padded keypoints):

==================  ============  =========  ===============================================================
field               item shape    dtype      meaning
==================  ============  =========  ===============================================================
query               (3, 256, 256) float32    normalised query crop
support             (S, 3, 256, 256) float32 normalised support crops
support_points      (S, 70, 2)    float32    padded support keypoints, crop coordinates / 256
support_visible     (S, 70)       bool       model visibility (annotation flag AND heatmap bound)
support_links       (S, 70, 16)   int32      BFS reference indices
query_points        (70, 2)       float32    padded query keypoints in crop coordinates (the training target)
query_visible       (70,)         bool       query model visibility (the loss weight, official target_weight)
query_center        (2,)          float32    crop center and scale of the query, for
query_scale         (2,)          float32      :func:`fgsa.preprocess.decode_points`
query_keypoints     (70, 2)       float64    query ground truth in original image pixels; rows >= K are 0
query_flags         (70,)         int64      raw annotation flags v of the query; rows >= K are 0
support_flags       (S, 70)       int64      raw annotation flags of every support (PCK mask)
query_bbox          (4,)          float64    clean query box [x, y, w, h] (PCK normaliser: max(w, h))
num_keypoints       ()            int64      K, the category's annotated keypoint count
K_c                 ()            int64      real (unpadded) keypoints; rows >= K_c are padding
category_id         ()            int64
query_id            ()            int64      annotation ids
support_ids         (S,)          int64
==================  ============  =========  ===============================================================

Test items (:class:`EpisodeDataset`) use eqdiv padding and no augmentation: they are a pure function of
the pair. Training items (:class:`TrainingPairDataset`) follow the official CJCTrainSet (spec §5): every
image of the pair gets its own random scale / rotation (mmpose ``TopDownGetRandomScaleRotation``), and
the pair shares one set of mixup-padding draws so that padded points correspond across its images. All
randomness of item ``i`` in epoch ``e`` comes from ``np.random.default_rng([seed, e, i])``, so an item does
not depend on the worker, on the order items are read in, or on anything drawn before it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from fgsa.data.episodes import episode_pairs, sample_episodes, sample_training_pairs
from fgsa.data.mp100 import Category, Instance, MP100Annotations, load_image_rgb
from fgsa.errors import InputError
from fgsa.preprocess import K_MAX, MixupDraws, draw_mixup, prepare_instance
from fgsa.preprocess.instance import KeypointCount

#: The model's forward arguments, in order.
FORWARD_FIELDS = ("query", "support", "support_points", "support_visible", "support_links")

#: Every field of an item and its dtype (collate enforces these).
FIELD_DTYPES: dict[str, torch.dtype] = {
    "query": torch.float32, "support": torch.float32, "support_points": torch.float32,
    "support_visible": torch.bool, "support_links": torch.int32,
    "query_points": torch.float32, "query_visible": torch.bool,
    "query_center": torch.float32, "query_scale": torch.float32,
    "query_keypoints": torch.float64, "query_flags": torch.int64, "support_flags": torch.int64,
    "query_bbox": torch.float64, "num_keypoints": torch.int64, "K_c": torch.int64,
    "category_id": torch.int64, "query_id": torch.int64, "support_ids": torch.int64,
}

#: Official augmentation (TopDownGetRandomScaleRotation in the s1 config).
SCALE_FACTOR = 0.15
ROT_FACTOR = 15.0
ROT_PROB = 0.6


def draw_scale_rotation(rng: np.random.Generator, scale_factor: float = SCALE_FACTOR,
                        rot_factor: float = ROT_FACTOR, rot_prob: float = ROT_PROB) -> tuple[float, float]:
    """mmpose ``TopDownGetRandomScaleRotation``: -> (scale multiplier, rotation in degrees).

    ``s = clip(N(0,1) * sf + 1, 1 - sf, 1 + sf)``; ``r = clip(N(0,1) * rf, -2 rf, 2 rf)``, kept when
    ``U(0,1) <= rot_prob`` and 0 otherwise (both normals are always drawn, in this order, as mmpose does).
    """
    s = float(np.clip(rng.standard_normal() * scale_factor + 1.0, 1.0 - scale_factor, 1.0 + scale_factor))
    r = float(np.clip(rng.standard_normal() * rot_factor, -2.0 * rot_factor, 2.0 * rot_factor))
    return s, (r if rng.random() <= rot_prob else 0.0)


def _pad_rows(values: np.ndarray, rows: int, dtype) -> np.ndarray:
    out = np.zeros((rows,) + values.shape[1:], dtype=dtype)
    out[: values.shape[0]] = values
    return out


class _PairBuilder:
    """Shared by both datasets: annotation ids -> one item dict (see the module docstring)."""

    def __init__(self, ann: MP100Annotations, keypoint_count: KeypointCount,
                 image_loader: Callable[[str], np.ndarray] | None):
        self.ann = ann
        self.keypoint_count = keypoint_count
        self.load = image_loader or load_image_rgb

    def prepare(self, inst: Instance, cat: Category, rotation: float = 0.0, scale_factor: float = 1.0,
                mixup: MixupDraws | None = None) -> dict[str, Any]:
        xyv = np.concatenate([inst.keypoints.astype(np.float64), inst.visibility[:, None].astype(np.float64)], 1)
        # the raw COCO box: prepare_instance cleans it exactly once (cleaning twice would shrink it by 1 px)
        return prepare_instance(self.load(inst.image_path), inst.bbox, xyv, cat.skeleton,
                                keypoint_count=self.keypoint_count, rotation=rotation,
                                scale_factor=scale_factor, mixup=mixup)

    def build(self, ids: Sequence[int], supports: list[dict[str, Any]], query: dict[str, Any]) -> dict[str, torch.Tensor]:
        ann = self.ann
        insts = [ann.instance(i) for i in ids]
        q_inst = insts[-1]
        k = q_inst.num_keypoints
        item = {
            "query": query["image"],
            "support": np.stack([p["image"] for p in supports]),
            "support_points": np.stack([p["points"] for p in supports]),
            "support_visible": np.stack([p["visible"] for p in supports]),
            "support_links": np.stack([p["links"] for p in supports]),
            "query_points": query["points"],
            "query_visible": query["visible"],
            "query_center": query["center"],
            "query_scale": query["scale"],
            "query_keypoints": _pad_rows(q_inst.keypoints.astype(np.float64), K_MAX, np.float64),
            "query_flags": _pad_rows(q_inst.visibility, K_MAX, np.int64),
            "support_flags": np.stack([_pad_rows(s.visibility, K_MAX, np.int64) for s in insts[:-1]]),
            "query_bbox": np.asarray(q_inst.clean_bbox, dtype=np.float64),
            "num_keypoints": np.int64(k),
            "K_c": np.int64(query["K_c"]),
            "category_id": np.int64(q_inst.category_id),
            "query_id": np.int64(q_inst.ann_id),
            "support_ids": np.asarray([s.ann_id for s in insts[:-1]], dtype=np.int64),
        }
        return {key: torch.as_tensor(np.asarray(val)).to(FIELD_DTYPES[key]) for key, val in item.items()}


def _check_pairs(ann: MP100Annotations, pairs: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    pairs = [tuple(int(i) for i in p) for p in pairs]
    if not pairs:
        raise InputError("pairs", "at least one (supports..., query) tuple", "[]")
    shots = {len(p) for p in pairs}
    if len(shots) != 1 or min(shots) < 2:
        raise InputError("pairs", "tuples of S >= 1 supports + 1 query, the same S for all", sorted(shots))
    for p in pairs[:1] + pairs[-1:]:
        cats = {ann.instance(i).category_id for i in p}
        if len(cats) != 1:
            raise InputError("pairs", "instances of one category per pair", f"{p} spans categories {cats}")
    return pairs


class EpisodeDataset(Dataset):
    """Test / val pairs through the official test pipeline (eqdiv padding, no augmentation).

    Args:
        ann: the subset's annotations (e.g. ``fgsa.data.layout.open_subset(DIR, 'test')``).
        pairs: (support_1, ..., support_S, query) annotation-id tuples, e.g. ``episode_pairs(episodes)``.
        keypoint_count: K_c rule of :func:`fgsa.preprocess.category_keypoint_count`.
        image_loader: path -> (H, W, 3) uint8 RGB; default :func:`fgsa.data.mp100.load_image_rgb`.
    """

    def __init__(self, ann: MP100Annotations, pairs: Sequence[Sequence[int]],
                 keypoint_count: KeypointCount = "annotation",
                 image_loader: Callable[[str], np.ndarray] | None = None):
        self.pairs = _check_pairs(ann, pairs)
        self.num_shots = len(self.pairs[0]) - 1
        self._builder = _PairBuilder(ann, keypoint_count, image_loader)

    @classmethod
    def from_episodes(cls, ann: MP100Annotations, num_episodes: int, num_queries: int, num_shots: int = 1,
                      seed: int = 1, **kwargs) -> "EpisodeDataset":
        """Episodes drawn as the official test set draws them (`fgsa.data.episodes.sample_episodes`)."""
        episodes = sample_episodes(ann.instances_by_category, ann.class_ids, num_episodes, num_shots,
                                   num_queries, seed)
        return cls(ann, episode_pairs(episodes), **kwargs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = self.pairs[index]
        ann = self._builder.ann
        cat = ann.category_of(ids[-1])
        prepared = [self._builder.prepare(ann.instance(i), cat) for i in ids]
        return self._builder.build(ids, prepared[:-1], prepared[-1])


class TrainingPairDataset(Dataset):
    """Training pairs of the official CJCTrainSet: class-balanced episodes redrawn every epoch, random
    scale / rotation per image, mixup padding with draws shared by the pair.

    Call :meth:`set_epoch` before each epoch: it redraws the pairs (``sample_training_pairs`` with a seed
    derived from (seed, epoch)) and the per-item random streams. ``len`` is the same every epoch
    (number of categories x largest category pool).

    Args:
        ann: the training subset's annotations.
        num_shots: S supports per pair.
        seed: base seed of pairs, augmentation and padding draws.
        augment: False disables scale / rotation (padding stays mixup).
        scale_factor, rot_factor, rot_prob: augmentation strength (official 0.15, 15, 0.6).
    """

    def __init__(self, ann: MP100Annotations, num_shots: int = 1, seed: int = 0, augment: bool = True,
                 scale_factor: float = SCALE_FACTOR, rot_factor: float = ROT_FACTOR, rot_prob: float = ROT_PROB,
                 keypoint_count: KeypointCount = "annotation",
                 image_loader: Callable[[str], np.ndarray] | None = None):
        if isinstance(num_shots, bool) or not isinstance(num_shots, (int, np.integer)) or num_shots < 1:
            raise InputError("num_shots", "a positive integer", repr(num_shots))
        self.num_shots = int(num_shots)
        self.seed = int(seed)
        self.augment = augment
        self.aug = (float(scale_factor), float(rot_factor), float(rot_prob))
        self._builder = _PairBuilder(ann, keypoint_count, image_loader)
        self.epoch = -1
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        self.epoch = int(epoch)
        pair_seed = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0])
        ann = self._builder.ann
        self.pairs = sample_training_pairs(ann.instances_by_category, ann.class_ids, self.num_shots, pair_seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def item_rng(self, index: int) -> np.random.Generator:
        """The random stream of item ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = self.pairs[index]
        ann = self._builder.ann
        cat = ann.category_of(ids[-1])
        rng = self.item_rng(index)
        draws = draw_mixup(len(cat.skeleton), rng)  # once per pair: padded ids correspond across images
        augs = [draw_scale_rotation(rng, *self.aug) if self.augment else (1.0, 0.0) for _ in ids]
        prepared = []
        for pos, (i, (scale, rot)) in enumerate(zip(ids, augs)):
            inst = ann.instance(i)
            out = self._builder.prepare(inst, cat, rot, scale, draws)
            if pos < len(ids) - 1 and not out["visible"].any():
                # the model needs a visible keypoint in every support shot: drop this shot's augmentation
                out = self._builder.prepare(inst, cat, 0.0, 1.0, draws)
                if not out["visible"].any():
                    raise InputError(f"annotation {i}", "a support instance with a visible keypoint in its crop",
                                     "none", "drop the annotation or fix its visibility flags")
            prepared.append(out)
        return self._builder.build(ids, prepared[:-1], prepared[-1])


def collate(items: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items into a batch (leading axis B) with the dtypes of :data:`FIELD_DTYPES`.

    All items must have the same number of shots S.
    """
    if not items:
        raise InputError("items", "at least one dataset item", "[]")
    shots = {int(it["support"].shape[0]) for it in items}
    if len(shots) != 1:
        raise InputError("items", "the same number of support shots in every item", sorted(shots))
    return {key: torch.stack([it[key] for it in items]).to(dtype) for key, dtype in FIELD_DTYPES.items()}


def forward_inputs(batch: Mapping[str, torch.Tensor], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """The model's forward arguments out of a batch, optionally moved to ``device``."""
    return {k: batch[k] if device is None else batch[k].to(device, non_blocking=True) for k in FORWARD_FIELDS}
