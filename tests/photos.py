"""Real photographs for the tests: the sample photos scikit-image ships (skimage/data), written as JPEG and PNG
files and annotated as a small COCO keypoint set written "elsewhere" (its own ids, a flat folder of images).

Only the files are used (scikit-image is never imported), so any environment that installed the dev extra
has them, the torch-free serving one included.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np

#: (sample file, written as): JPEG re-encodes and the original JPEG exercise libjpeg, PNGs libpng
PHOTOS = (("chelsea.png", "chelsea.jpg"), ("coffee.png", "coffee.png"), ("astronaut.png", "astronaut.jpg"),
          ("rocket.jpg", "rocket.jpg"), ("motorcycle_left.png", "motorcycle.png"))
#: keypoints as fractions of each photo's box: a five-point "photo" category
LAYOUT = ((0.3, 0.3), (0.7, 0.3), (0.5, 0.5), (0.35, 0.75), (0.65, 0.75))
CATEGORY = "photo"


def sample_photo(name: str) -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-image (the dev extra) is not installed: no sample photographs")
    return Path(spec.submodule_search_locations[0]) / "data" / name


def write_photo_set(folder: Path) -> Path:
    """``folder``/annotations/photos.json + ``folder``/images/*: one category, one instance per photo (ids from
    500 and 9000, as an export from another tool would have them). Returns ``folder``."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "annotations").mkdir(exist_ok=True)
    images, anns = [], []
    for i, (src, dst) in enumerate(PHOTOS):
        bgr = cv2.imread(str(sample_photo(src)), cv2.IMREAD_COLOR)
        out = folder / "images" / dst
        if src == dst and src.endswith(".jpg"):  # the original JPEG as it came
            out.write_bytes(sample_photo(src).read_bytes())
        else:
            assert cv2.imwrite(str(out), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92] if dst.endswith(".jpg") else [])
        h, w = bgr.shape[:2]
        box = [0.1 * w + 3 * i, 0.08 * h, 0.75 * w, 0.8 * h]
        kps = []
        for fx, fy in LAYOUT:
            kps += [round(box[0] + fx * box[2], 2), round(box[1] + fy * box[3], 2), 2]
        images.append({"id": 500 + i, "file_name": dst, "width": w, "height": h})
        anns.append({"id": 9000 + i, "image_id": 500 + i, "category_id": 3, "bbox": [round(v, 2) for v in box],
                     "area": round(box[2] * box[3], 1), "iscrowd": 0, "num_keypoints": len(LAYOUT),
                     "keypoints": kps})
    cats = [{"id": 3, "name": CATEGORY, "supercategory": "thing", "keypoints": [f"p{j}" for j in range(len(LAYOUT))],
             "skeleton": [[1, 2], [2, 3], [3, 4], [3, 5]]}]
    (folder / "annotations" / "photos.json").write_text(json.dumps(
        {"info": {"description": "photos annotated elsewhere"}, "images": images, "annotations": anns,
         "categories": cats}))
    return folder


def crop_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every photo's query crop, the uint8 pixels and the normalised float32 input (decoded by the
    project's reader, cropped to its box)."""
    import hashlib

    from fgsa.files.images import read_image_rgb
    from fgsa.preprocess import bbox_to_center_scale, crop_image
    from runtime.preprocessing import prepare_queries

    ann = json.loads((folder / "annotations" / "photos.json").read_text())
    boxes = {a["image_id"]: a["bbox"] for a in ann["annotations"]}
    out = {}
    for img in ann["images"]:
        rgb = read_image_rgb(folder / "images" / img["file_name"])
        crops, _, _ = prepare_queries(rgb, np.asarray([boxes[img["id"]]]))
        pixels = crop_image(rgb, *bbox_to_center_scale(boxes[img["id"]]))
        out[img["file_name"]] = hashlib.sha256(pixels.tobytes() + np.ascontiguousarray(crops).tobytes()).hexdigest()
    return out
