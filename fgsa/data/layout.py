"""Find the annotation file and category list of a subset under a data folder (no torch).

``python -m fgsa.train`` and ``python -m fgsa.evaluate`` take ``--data DIR``; this module turns DIR plus a
subset ('train' | 'val' | 'test') and an MP-100 split number into :class:`MP100Annotations`. Layouts
recognised, in this order:

1. **split file** (what ``python -m fgsa.data.synthetic`` writes): ``DIR/annotations/splits.json`` plus one
   other ``DIR/annotations/*.json`` holding every category; the subset's ids come from the split file.
2. **official per-split files** (the MP-100 release): ``DIR/annotations/mp100_split{N}_{subset}.json``; the
   categories are the official split-N list, in official order (the order the test episodes are drawn in).
3. **one unified file** (FMMP's ``mp100_all_*.json``): the only ``DIR/annotations/*.json`` and it holds
   every category of the official split-N subset; official split-N lists.
4. **your own COCO keypoint file**: the only ``DIR/annotations/*.json``, any category ids (skeletons 0- or
   1-based, detected): every category of the file, whichever subset is asked for (train, val and test are
   then the same categories; ``python -m calibration.report`` warns about that). No split file needed.

A COCO keypoint file of your own may also come without the ``annotations/`` folder:

5. **a JSON file**: ``--data FILE.json`` (layout 3 or 4 for that file); images from ``--image-root``, else
   ``FILE/../../images`` when the file sits in an ``annotations/`` folder next to ``images/``, else the
   file's own folder;
6. **a folder holding one JSON next to its images**: ``--data DIR`` with ``DIR/*.json`` (one file) and the
   images under ``DIR`` (``file_name`` relative to it).

The returned annotations carry ``layout`` (which was found). fgsa/data/README.md shows each layout with an
example.

Images are read from ``DIR/images`` (``file_name`` relative to it) unless ``image_root`` is given.
"""

from __future__ import annotations

from pathlib import Path

from fgsa.data.mp100 import MP100Annotations, load_mp100
from fgsa.data.mp100_splits import SUBSETS, official_class_ids
from fgsa.errors import InputError

SPLIT_FILE = "splits.json"


def _json_files(ann_dir: Path) -> list[Path]:
    return sorted(p for p in ann_dir.glob("*.json") if p.name != SPLIT_FILE)


def open_subset(data: str | Path, subset: str, split: int = 1, image_root: str | Path | None = None,
                **kwargs) -> MP100Annotations:
    """The annotations of one subset of the data folder ``data`` (layouts in the module docstring).

    ``kwargs`` go to :func:`fgsa.data.mp100.load_mp100` (skeleton_base, max_keypoints).
    """
    if subset not in SUBSETS:
        raise InputError("subset", f"one of {SUBSETS}", repr(subset))
    root = Path(data)
    ann_dir = root / "annotations"
    if root.is_file():
        return _single_file(root, Path(image_root) if image_root is not None else _images_of(root), subset, split,
                            **kwargs)
    if not ann_dir.is_dir():
        beside = _json_files(root) if root.is_dir() else []
        if len(beside) == 1:
            return _single_file(beside[0], Path(image_root) if image_root is not None else root, subset, split,
                                **kwargs)
        raise InputError("--data", "an MP-100 / COCO keypoint data set: a folder with annotations/*.json and "
                         "images/, a folder holding one .json next to its images, or a .json file (with "
                         "--image-root DIR)", f"{root}" + (" (does not exist)" if not root.exists() else
                         f" ({len(beside)} .json files in it)" if root.is_dir() else ""),
                         "see fgsa/data/README.md; `python -m fgsa.data.synthetic --out DIR` makes a test set")
    images = Path(image_root) if image_root is not None else root / "images"
    files = _json_files(ann_dir)
    if (ann_dir / SPLIT_FILE).is_file():
        if len(files) != 1:
            raise InputError(f"{ann_dir}", f"exactly one annotation JSON next to {SPLIT_FILE}",
                             [p.name for p in files])
        ann = load_mp100(files[0], images, split_file=ann_dir / SPLIT_FILE, subset=subset, **kwargs)
        ann.layout = "split file"
        return ann
    per_split = ann_dir / f"mp100_split{split}_{subset}.json"
    if per_split.is_file():
        ann = load_mp100(per_split, images, split=split, subset=subset, **kwargs)
        ann.layout = "official per-split files"
        return ann
    if len(files) == 1:
        return _single_file(files[0], images, subset, split, **kwargs)
    raise InputError(f"{ann_dir}", f"{SPLIT_FILE} + one annotation file, mp100_split{split}_{subset}.json, "
                     "or a single unified annotation file", [p.name for p in files][:10])


def _images_of(ann_file: Path) -> Path:
    """Where a lone annotation file's images are: ``../images`` beside an ``annotations/`` folder, else its own
    folder."""
    parent = ann_file.resolve().parent
    if parent.name == "annotations" and (parent.parent / "images").is_dir():
        return parent.parent / "images"
    return parent


def _single_file(path: Path, images: Path, subset: str, split: int, **kwargs) -> MP100Annotations:
    """Layouts 3 and 4: the official split lists when the file holds them, else every category."""
    from fgsa.files.jsonfile import read_json

    source = f"annotation file {path}"
    data = read_json(path, source)  # parsed once, handed on as a dict
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise InputError(source, "a COCO keypoint JSON object with images, annotations and categories",
                         type(data).__name__ if not isinstance(data, dict) else f"keys {sorted(data)[:8]}")
    ids = {c.get("id") for c in data["categories"] if isinstance(c, dict)}
    official = official_class_ids(split, subset)
    if set(official) <= ids:
        ann = load_mp100(data, images, split=split, subset=subset, source=source, **kwargs)
        ann.layout = "unified MP-100 file"
    else:
        ann = load_mp100(data, images, source=source, **kwargs)
        ann.layout = "own file"
    return ann
