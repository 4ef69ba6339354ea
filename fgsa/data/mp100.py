"""Reader for MP-100-style COCO keypoint JSON (no torch).

The file holds `images` (id, file_name, width, height), `annotations` (id, image_id, category_id,
bbox [x, y, w, h], keypoints [x, y, v] * K, optionally area, iscrowd, num_keypoints) and `categories`
(id, name, keypoints = names, skeleton = [[i, j], ...]). One file may hold every category (the official
unified `mp100_all_link_0412.json`); `class_ids` then selects a split (the official `valid_class_ids`).

What is kept, and in which order, follows the official test set (TestPoseDataset._get_db), because the
seeded episodes index into this order (see `fgsa.data.episodes`):
- images in file order, and per image its annotations in file order;
- crowd annotations (iscrowd = 1) are dropped; a missing `iscrowd` counts as 0 (the official code would
  raise KeyError instead);
- the bbox is cleaned: x1 = max(0, x), y1 = max(0, y), x2 = min(W-1, x1 + max(0, w-1)),
  y2 = min(H-1, y1 + max(0, h-1)); the annotation is dropped unless x2 > x1, y2 > y1 and (area absent or
  area > 0); clean_bbox = [x1, y1, x2-x1, y2-y1]. PCK is normalised by max of its w, h;
- an annotation is dropped when it has no `keypoints`, all of them are 0, or num_keypoints == 0.

Files from elsewhere: the JSON is read with bounded size and depth (:func:`fgsa.files.jsonfile.read_json`),
every `file_name` must stay inside the image folder once resolved, symbolic links included (absolute
names and `../` escapes are refused: :func:`fgsa.files.jsonfile.path_inside`), and images are read with
the pixel limit and damage checks of :func:`fgsa.files.images.read_image_rgb`.

Skeleton index base. COCO skeletons are 1-based, FMMP's code assumes 0-based (it indexes keypoints with
the skeleton entries directly and takes K_c = max index + 1). `skeleton_base` says which one the file uses;
"auto" decides once for the whole file with this rule, looking at every category with a skeleton:
  - some skeleton uses index 0 and none uses index K (K = the category's keypoint count) -> 0-based;
  - some skeleton uses index K and none uses index 0 -> 1-based;
  - both -> InputError (the file mixes bases: pass skeleton_base explicitly after fixing it);
  - neither (every index in 1..K-1, both readings valid) -> 0-based, FMMP's assumption.
Skeletons are always returned 0-based.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np

from fgsa.errors import InputError

SkeletonBase = Literal["auto", 0, 1]

#: FMMP pads every category to this many keypoints; a category with more cannot be fed to the model.
MAX_KEYPOINTS = 70


@dataclass(frozen=True)
class Category:
    """One keypoint category.

    skeleton: 0-based (start, end) keypoint index pairs in file order (the order padding and BFS use).
    num_keypoints: K, the length of the category's annotations' keypoint lists (names when no annotation).
    skeleton_keypoint_num: max skeleton index + 1, FMMP's K_c (may be < num_keypoints, see design note D5).
    """

    id: int
    name: str
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    num_keypoints: int
    skeleton_keypoint_num: int


@dataclass(frozen=True, eq=False)
class Instance:
    """One annotated object (what the official code calls a db entry).

    keypoints: (K, 2) float32 raw annotation pixel coordinates (kept as written, even when v = 0).
    visibility: (K,) int64 raw annotation flags v (0 unlabelled, 1 labelled but occluded, 2 visible).
    bbox: the COCO [x, y, w, h] as written; clean_bbox: the official cleaned box (see module docstring).
    image_path: image_root / file_name.
    """

    ann_id: int
    image_id: int
    category_id: int
    file_name: str
    image_path: str
    image_width: int
    image_height: int
    bbox: tuple[float, float, float, float]
    clean_bbox: tuple[float, float, float, float]
    keypoints: np.ndarray = field(repr=False)
    visibility: np.ndarray = field(repr=False)

    @property
    def visible(self) -> np.ndarray:
        """(K,) bool: min(1, v) > 0, the official `joints_3d_visible` (used by the PCK mask)."""
        return self.visibility > 0

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[0])


def clean_bbox(bbox: Sequence[float], width: int, height: int,
               area: float | None = None) -> tuple[float, float, float, float] | None:
    """The official bbox sanitiser: returns [x1, y1, x2-x1, y2-y1], or None when the box is rejected."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if (area is None or area > 0) and x2 > x1 and y2 > y1:
        return (x1, y1, x2 - x1, y2 - y1)
    return None


def _detect_skeleton_base(cats: Iterable[tuple[int, list[list[int]], int]]) -> int:
    """File-wide base from (category id, raw skeleton, K) triples; rule in the module docstring."""
    zero_in, k_in = [], []
    for cid, skel, k in cats:
        # only well-formed entries vote; a malformed one (Infinity, 1.5, a string) is named by the category check
        flat = [i for pair in skel if isinstance(pair, list) for i in pair if _is_int(i)]
        if not flat:
            continue
        if 0 in flat:
            zero_in.append(cid)
        if k in flat:
            k_in.append(cid)
    if zero_in and k_in:
        raise InputError("skeleton_base", "one index base for the whole file",
                         f"index 0 used by categories {zero_in[:5]} and index K by categories {k_in[:5]}",
                         "fix the file's skeletons or pass skeleton_base=0 or 1 explicitly")
    return 1 if k_in else 0


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _len_or_zero(v: Any) -> int:
    return len(v) if isinstance(v, list) else 0


def _names(raw_cats: Mapping[int, Mapping[str, Any]], ids: Sequence[int], limit: int = 20) -> str:
    """'ids 1 (cat), 2 (dog), ...' for error messages: categories by id and name."""
    shown = [f"{i} ({raw_cats[i].get('name', '?')})" for i in ids[:limit]]
    return "ids " + ", ".join(shown) + (", ..." if len(ids) > limit else "")


def _load_coco(ann: str | Path | Mapping[str, Any], source: str = "annotation file"):
    """A pycocotools COCO index of a path or an already-parsed dict, without its stdout chatter."""
    from pycocotools.coco import COCO

    from fgsa.files.jsonfile import read_json

    if isinstance(ann, Mapping):
        data = dict(ann)
    else:
        data = read_json(ann, f"annotation file {ann}")
        if not isinstance(data, dict):
            raise InputError(f"annotation file {ann}", "a JSON object with images, annotations and categories",
                             type(data).__name__)
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InputError(f"{source}[{key!r}]", "a list", type(data.get(key)).__name__,
                             "an MP-100-style file has images, annotations and categories lists")
    for key in ("images", "annotations", "categories"):  # what createIndex indexes by
        for entry in data[key]:
            if not isinstance(entry, Mapping) or not _is_int(entry.get("id")):
                raise InputError(f"{source}: {key}", "JSON objects with an integer id", repr(entry)[:80])
    for entry in data["annotations"]:
        if not _is_int(entry.get("image_id")) or not _is_int(entry.get("category_id")):
            raise InputError(f"{source}: annotation {entry['id']}", "integer image_id and category_id",
                             f"{entry.get('image_id')!r}, {entry.get('category_id')!r}")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


class MP100Annotations:
    """Parsed MP-100-style annotations, restricted to `class_ids`.

    Args:
        ann_file: path of the COCO JSON, or the parsed dict.
        image_root: folder the `file_name`s are relative to. Default: `<ann_file dir>/../images`
            (the layout `fgsa.data.synthetic` writes); must be given when ann_file is a dict.
        class_ids: categories to keep, in the order episodes are drawn (the official `valid_class_ids`).
            None keeps every category of the file, in file order.
        skeleton_base: 0, 1 or "auto" (rule in the module docstring).
        max_keypoints: reject categories with more keypoints (FMMP pads to 70); None disables the check.

    Attributes:
        coco: the pycocotools COCO index of the whole file.
        categories: {category id: Category} for every category of the file.
        class_ids: tuple of the kept category ids.
        instances: list[Instance] of kept categories, official order.
        instances_by_category: {category id: [ann_id, ...]} in official order (the official `cat2obj`).
        skeleton_base: 0 or 1, the base the file was read with.
    """

    def __init__(self, ann_file: str | Path | Mapping[str, Any], image_root: str | Path | None = None,
                 class_ids: Sequence[int] | None = None, skeleton_base: SkeletonBase = "auto",
                 max_keypoints: int | None = MAX_KEYPOINTS, check_image_paths: bool = True,
                 source: str | None = None):
        if skeleton_base not in ("auto", 0, 1):
            raise InputError("skeleton_base", '"auto", 0 or 1', repr(skeleton_base))
        if image_root is None:
            if isinstance(ann_file, Mapping):
                raise InputError("image_root", "a folder when ann_file is a dict", None)
            image_root = Path(ann_file).resolve().parent.parent / "images"
        self.image_root = Path(image_root)
        #: how errors name the file: its path, or what the caller says a parsed dict came from
        self.source = source or (f"annotation file {ann_file}" if not isinstance(ann_file, Mapping)
                                 else "annotation dict")
        self.check_image_paths = check_image_paths
        #: which data-folder layout it came from (set by fgsa.data.layout.open_subset)
        self.layout = "file"
        self.coco = _load_coco(ann_file, self.source)
        try:
            self._parse(class_ids, skeleton_base, max_keypoints)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as exc:
            if isinstance(exc, InputError):
                raise
            # a backstop: the specific checks below name the field; anything they miss still names the file
            raise InputError(self.source, "a COCO keypoint file (images: id, file_name, width, height; "
                             "annotations: id, image_id, category_id, bbox, keypoints; categories: id, name, "
                             "keypoints, skeleton)", f"{type(exc).__name__}: {exc}"[:200],
                             "fix the file (see fgsa/data/README.md)") from None

    def _parse(self, class_ids, skeleton_base, max_keypoints) -> None:
        ann_k = self._annotation_keypoint_counts()
        raw_cats = {}
        for c in self.coco.dataset["categories"]:
            if not isinstance(c, Mapping) or not _is_int(c.get("id")):
                raise InputError(f"{self.source}: categories", "objects with an integer id", repr(c)[:80])
            raw_cats[int(c["id"])] = c
        k_of = {cid: ann_k.get(cid, _len_or_zero(c.get("keypoints"))) for cid, c in raw_cats.items()}
        if class_ids is None:
            class_ids = list(raw_cats)
        self.class_ids: tuple[int, ...] = tuple(int(c) for c in class_ids)
        unknown = [c for c in self.class_ids if c not in raw_cats]
        if unknown:
            raise InputError("class_ids", "category ids present in the annotation file",
                             f"unknown ids {unknown[:10]}",
                             f"{self.source} has {_names(raw_cats, sorted(raw_cats))}")
        if len(set(self.class_ids)) != len(self.class_ids):
            raise InputError("class_ids", "distinct category ids", list(self.class_ids))
        # the keypoint limit first: a category over it is refused for that reason, with the number
        if max_keypoints is not None:
            for cid in self.class_ids:
                if k_of[cid] > max_keypoints:
                    raise InputError(f"{self.source}: category {cid} ({raw_cats[cid].get('name', '?')})",
                                     f"at most {max_keypoints} keypoints (FMMP pads every category to "
                                     f"{max_keypoints})", f"{k_of[cid]} keypoints",
                                     "split the category or drop keypoints")
        if skeleton_base == "auto":
            skeleton_base = _detect_skeleton_base(
                (cid, c.get("skeleton") or [], k_of[cid]) for cid, c in raw_cats.items())
        self.skeleton_base: int = int(skeleton_base)

        self.categories: dict[int, Category] = {
            cid: self._parse_category(c, k_of[cid]) for cid, c in raw_cats.items()}
        for cid in self.class_ids:
            self._check_usable(self.categories[cid], max_keypoints)

        self.instances: list[Instance] = []
        self.instances_by_category: dict[int, list[int]] = {cid: [] for cid in self.class_ids}
        self._by_ann: dict[int, Instance] = {}
        #: {ann_id: why it was not kept} for annotations of kept categories (crowd, box, keypoints)
        self.dropped: dict[int, str] = {}
        self._image_paths: dict[int, str] = {}
        self._collect_instances()

    # -- parsing ---------------------------------------------------------------------------------------

    def _annotation_keypoint_counts(self) -> dict[int, int]:
        """K per category from its annotations; raises when they disagree or are not triples."""
        counts: dict[int, int] = {}
        for ann in self.coco.dataset["annotations"]:
            if not isinstance(ann, Mapping):
                raise InputError(f"{self.source}: annotations", "JSON objects", repr(ann)[:80])
            where = f"{self.source}: annotation {ann.get('id')!r}"
            for key in ("id", "image_id", "category_id"):
                if not _is_int(ann.get(key)):
                    raise InputError(f"{where}.{key}", "an integer id", repr(ann.get(key))[:80])
            kp = ann.get("keypoints")
            if kp is None:
                continue
            if not isinstance(kp, list) or not all(_is_number(v) for v in kp):
                raise InputError(f"{where}.keypoints", "a flat list of numbers [x, y, v] * K",
                                 repr(kp)[:80], "numbers, not strings or nested lists")
            if len(kp) % 3:
                raise InputError(f"{where}.keypoints", "a flat [x, y, v] * K list",
                                 f"length {len(kp)} (not a multiple of 3)")
            cid, k = int(ann["category_id"]), len(kp) // 3
            if counts.setdefault(cid, k) != k:
                raise InputError(f"{where}.keypoints",
                                 f"{counts[cid]} keypoints like the other annotations of category {cid}",
                                 f"{k} keypoints")
        return counts

    def _parse_category(self, raw: Mapping[str, Any], k: int) -> Category:
        cid = int(raw["id"])
        where = f"{self.source}: category {cid} ({raw.get('name', '?')})"
        names = tuple(str(n) for n in (raw.get("keypoints") or []))
        if names and len(names) != k:
            warnings.warn(f"category {cid} ({raw.get('name')}): {len(names)} keypoint names but annotations "
                          f"have {k} keypoints; using {k}", stacklevel=3)
        skeleton = []
        raw_skeleton = raw.get("skeleton") or []
        if not isinstance(raw_skeleton, list):
            raise InputError(f"{where}.skeleton", "a list of [start, end] index pairs", repr(raw_skeleton)[:80])
        for pair in raw_skeleton:
            if not isinstance(pair, list) or len(pair) != 2 or not all(_is_int(i) for i in pair):
                raise InputError(f"{where}.skeleton", "[start, end] integer index pairs", repr(pair)[:80])
            s, e = int(pair[0]) - self.skeleton_base, int(pair[1]) - self.skeleton_base
            if not (0 <= s < k and 0 <= e < k):
                raise InputError(f"{where}.skeleton", f"{self.skeleton_base}-based indices of {k} keypoints",
                                 repr(list(pair)), "check skeleton_base and the keypoint count")
            skeleton.append((s, e))
        k_c = max((i for pair in skeleton for i in pair), default=-1) + 1
        return Category(id=cid, name=str(raw.get("name", cid)), keypoint_names=names,
                        skeleton=tuple(skeleton), num_keypoints=k, skeleton_keypoint_num=k_c)

    def _check_usable(self, cat: Category, max_keypoints: int | None) -> None:
        if max_keypoints is not None and cat.num_keypoints > max_keypoints:
            raise InputError(f"{self.source}: category {cat.id} ({cat.name})", f"at most {max_keypoints} keypoints",
                             cat.num_keypoints)
        if not cat.skeleton:
            raise InputError(f"{self.source}: category {cat.id} ({cat.name}).skeleton",
                             "at least one [start, end] edge", "an empty skeleton",
                             "FMMP pads keypoints along skeleton edges and needs them")

    def _collect_instances(self) -> None:
        keep = set(self.class_ids)
        for img_id in self.coco.getImgIds():  # file order
            img = self.coco.imgs[img_id]
            width, height = img.get("width"), img.get("height")
            if not (_is_int(width) and _is_int(height) and width > 0 and height > 0):
                raise InputError(f"{self.source}: image {img_id!r}", "positive integer width and height",
                                 f"{width!r} x {height!r}")
            for ann in self.coco.imgToAnns.get(img_id, []):  # file order
                if int(ann["category_id"]) not in keep:
                    continue
                if ann.get("iscrowd", 0):
                    self.dropped[int(ann["id"])] = "a crowd annotation (iscrowd = 1)"
                    continue
                inst = self._parse_instance(ann, img, int(width), int(height))
                if inst is None:
                    continue
                self.instances.append(inst)
                self.instances_by_category[inst.category_id].append(inst.ann_id)
                self._by_ann[inst.ann_id] = inst

    def _image_path(self, img: Mapping[str, Any]) -> str:
        from fgsa.files.jsonfile import path_inside

        img_id = int(img["id"])
        path = self._image_paths.get(img_id)
        if path is None:
            field = f"{self.source}: image {img_id}.file_name"
            if self.check_image_paths:
                path = str(path_inside(self.image_root, img.get("file_name"), field))
            else:
                path = str(self.image_root / str(img.get("file_name")))
            self._image_paths[img_id] = path
        return path

    def _parse_instance(self, ann: Mapping[str, Any], img: Mapping[str, Any], width: int,
                        height: int) -> Instance | None:
        ann_id = int(ann["id"])
        where = f"{self.source}: annotation {ann_id}"
        if "bbox" not in ann or "keypoints" not in ann:
            self.dropped[ann_id] = f"it has no {'bbox' if 'bbox' not in ann else 'keypoints'}"
            return None
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            raise InputError(f"{where}.bbox", "4 numbers [x, y, w, h]", repr(bbox)[:80])
        area = ann.get("area")
        if area is not None and not _is_number(area):
            raise InputError(f"{where}.area", "a number", repr(area)[:80])
        cbox = clean_bbox(bbox, width, height, area)
        if cbox is None:
            self.dropped[ann_id] = (f"its bbox {bbox} has zero size inside the {width} x {height} image"
                                    + (" or area 0" if area is not None else ""))
            return None
        kp_raw = ann["keypoints"]
        if not kp_raw or max(kp_raw) == 0 or ann.get("num_keypoints", 1) == 0:
            self.dropped[ann_id] = "it has no labelled keypoint"
            return None
        kp = np.asarray(kp_raw, dtype=np.float64).reshape(-1, 3)
        if not np.isfinite(kp).all():
            raise InputError(f"{where}.keypoints", "finite numbers", "NaN or infinity")
        # finite in float64 yet infinite as the float32 the model reads (1e300), or a visibility the int cast
        # would bend (1.5 -> 1, 1e300 -> garbage): refused rather than read as something else
        if np.abs(kp[:, :2]).max() > np.finfo(np.float32).max:
            raise InputError(f"{where}.keypoints", "coordinates within float32 range",
                             f"{np.abs(kp[:, :2]).max():g}")
        bad_vis = kp[~np.isin(kp[:, 2], (0, 1, 2)), 2]
        if bad_vis.size:
            raise InputError(f"{where}.keypoints", "COCO visibility flags 0, 1 or 2 (every third number)",
                             f"{bad_vis[0]:g}", "write 0 (not labelled), 1 (labelled, occluded) or 2 (visible)")
        return Instance(
            ann_id=ann_id, image_id=int(img["id"]), category_id=int(ann["category_id"]),
            file_name=str(img["file_name"]), image_path=self._image_path(img),
            image_width=width, image_height=height,
            bbox=tuple(float(v) for v in bbox), clean_bbox=cbox,
            keypoints=kp[:, :2].astype(np.float32), visibility=kp[:, 2].astype(np.int64))

    # -- access ----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.instances)

    def instance(self, ann_id: int) -> Instance:
        """The kept instance with this annotation id."""
        try:
            return self._by_ann[int(ann_id)]
        except KeyError:
            pass
        why = self.dropped.get(int(ann_id))
        if why is not None:
            raise InputError("ann_id", "the id of a kept annotation", f"{ann_id}, which was dropped: {why}",
                             f"fix annotation {ann_id} in {self.source} or pick another") from None
        raise InputError("ann_id", "the id of a kept annotation (selected class, valid bbox, keypoints)",
                         f"{ann_id}, not an annotation of the selected categories in {self.source}") from None

    def category_of(self, ann_id: int) -> Category:
        return self.categories[self.instance(ann_id).category_id]


def load_mp100(ann_file: str | Path | Mapping[str, Any], image_root: str | Path | None = None, *,
               split: int | None = None, subset: str | None = None, split_file: str | Path | None = None,
               class_ids: Sequence[int] | None = None, skeleton_base: SkeletonBase = "auto",
               max_keypoints: int | None = MAX_KEYPOINTS, **kwargs) -> MP100Annotations:
    """Read annotations and select categories in one of three ways (at most one):

    - `split` (1..5) + `subset` ('train' | 'val' | 'test'): the official MP-100 split lists;
    - `split_file` + `subset`: a {"train": [...], "val": [...], "test": [...]} JSON (synthetic benchmark);
    - `class_ids`: explicit ids; none of them: every category.
    """
    from fgsa.data.mp100_splits import load_split_file, official_class_ids

    given = [n for n, v in (("split", split), ("split_file", split_file), ("class_ids", class_ids))
             if v is not None]
    if len(given) > 1:
        raise InputError("category selection", "at most one of split, split_file, class_ids", given)
    if (split is not None or split_file is not None) and subset is None:
        raise InputError("subset", "'train', 'val' or 'test' together with split / split_file", None)
    if split is not None:
        class_ids = official_class_ids(split, subset)
    elif split_file is not None:
        class_ids = load_split_file(split_file)[subset]
        if not class_ids:
            raise InputError(f"split_file[{subset!r}]", "a non-empty category list", "[]", f"see {split_file}")
    return MP100Annotations(ann_file, image_root, class_ids, skeleton_base, max_keypoints, **kwargs)


def load_image_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, like mmcv.imread(..., channel_order='rgb') in the official pipeline, through
    :func:`fgsa.files.images.read_image_rgb` (pixel limit, damaged files refused)."""
    from fgsa.files.images import read_image_rgb

    return read_image_rgb(path, f"image {path}")
