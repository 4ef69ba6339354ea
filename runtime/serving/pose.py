"""The serving model's work, without Triton: per-category support sets from the repository, request rows in,
keypoints out, every row of a batch in one predictor run with its own category's support state.

The predictor graph takes the support state with a batch axis (``support_embed`` [B, K, D], ``support_pos``
[B, S, K, D], ``support_values_*`` [B, S, ...], and the keypoint inputs [B, S, 70, ...]), so rows of different
categories are stacked along it: a mixed batch is one run, never split per category. K_c differs between
categories but every graph input is padded to 70 keypoints; each row is trimmed to its K_c after decoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fgsa.files.images import decode_image_rgb, strip_zero_padding
from fgsa.plan_sidecar import file_sha256
from fgsa.preprocess import decode_points
from runtime.engine import Engine
from runtime.errors import EngineError, InputError
from runtime.preprocessing import SupportSet, prepare_queries

SUPPORT_DIR = "support"
INDEX = "index.json"


@dataclass
class Category:
    name: str
    support: SupportSet
    keypoint_names: list[str]


def save_categories(folder: Path, categories: list[Category]) -> None:
    """support/index.json + support/<i>.npz: each category's support state and keypoint inputs."""
    out = folder / SUPPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for i, cat in enumerate(categories):
        s = cat.support
        arrays = {"points": s.points, "visible": s.visible, "links": s.links, "skeleton": s.skeleton,
                  **{f"state:{k}": v for k, v in s.state.items()}}
        np.savez(out / f"{i}.npz", **arrays)
        index.append({"name": cat.name, "file": f"{i}.npz", "k_c": s.k_c, "shots": s.shots,
                      "keypoint_names": cat.keypoint_names})
    (out / INDEX).write_text(json.dumps({"categories": index}, indent=1))


def load_categories(folder: Path) -> dict[str, Category]:
    index = json.loads((folder / SUPPORT_DIR / INDEX).read_text())
    cats = {}
    for entry in index["categories"]:
        with np.load(folder / SUPPORT_DIR / entry["file"]) as z:
            arrays = {k: z[k] for k in z.files}
        state = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("state:")}
        support = SupportSet(support=np.zeros((1, entry["shots"], 0, 0, 0), np.float32), points=arrays["points"],
                             visible=arrays["visible"], links=arrays["links"], k_c=int(entry["k_c"]),
                             skeleton=arrays["skeleton"], state=state)
        names = entry["keypoint_names"] or [str(i) for i in range(support.k_c)]
        cats[entry["name"]] = Category(entry["name"], support, names)
    return cats


def decode_image(image: np.ndarray, field: str = "IMAGE") -> np.ndarray:
    """One row of IMAGE (batch axis removed): (1, 1, N) encoded JPEG/PNG/BMP/WebP bytes (zero padding after
    the file allowed: the rows of one request share N), or (H, W, 3) RGB pixels. Encoded bytes go through the
    project's image reader (:func:`fgsa.files.images.decode_image_rgb`: pixel limit from the header, damaged
    files refused), as every image file the toolkit reads."""
    if image.dtype != np.uint8:
        raise InputError(field, "UINT8 data", f"dtype {image.dtype}")
    if image.ndim == 3 and image.shape[0] == 1 and image.shape[1] == 1 and image.shape[2] != 3:
        data = strip_zero_padding(np.ascontiguousarray(image.reshape(-1)).tobytes())
        return decode_image_rgb(data, f"{field} ({image.shape[2]} encoded bytes)")
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 2:
        raise InputError(field, "an RGB image [H, W, 3] (H, W >= 2) or encoded bytes [1, 1, N]",
                         f"shape {list(image.shape)}")
    return image


def category_name(value: Any, field: str = "CATEGORY") -> str:
    arr = np.asarray(value, dtype=object).reshape(-1)
    if arr.size != 1:
        raise InputError(field, "one category name per image", f"{arr.size} values")
    item = arr[0]
    try:
        return item.decode("utf-8") if isinstance(item, bytes) else str(item)
    except UnicodeDecodeError:
        raise InputError(field, "a UTF-8 category name", repr(item)[:60]) from None


def repository_ort_library(version_dir: Path, meta: dict) -> Path | None:
    """The op library the repository carries (plugin-form graphs), after checking it is the one written
    there; None when it carries none (the Engine's own lookup then applies)."""
    if not meta.get("ort_library"):
        return None
    path = version_dir / meta["ort_library"]
    if not path.is_file():
        raise EngineError(f"the repository's op library {path} is missing", "re-write the repository with "
                          "python -m runtime.triton")
    got = file_sha256(path)
    if got != meta.get("ort_library_sha256"):
        raise EngineError(f"the repository's op library {path} is not the one it was written with (SHA-256 "
                          f"{got[:16]}..., engine.json says {str(meta.get('ort_library_sha256'))[:16]}...)",
                          "re-write the repository with python -m runtime.triton; never replace its files by hand")
    return path


@dataclass
class Row:
    category: Category
    crop: np.ndarray     # (3, H, W) f32
    center: np.ndarray
    scale: np.ndarray


class PoseModel:
    """What the Triton model does per execution; ``run(rows)`` returns per row (keypoints, names) or an error."""

    def __init__(self, version_dir: str | Path, backend: str = "auto", threads: int | None = None,
                 spinning: bool = False, device: int = 0):
        version_dir = Path(version_dir)
        meta = json.loads((version_dir / "engine.json").read_text())
        self.engine = Engine(version_dir / meta["engine"], backend, threads=threads, spinning=spinning,
                             device=device, ort_library=repository_ort_library(version_dir, meta))
        if not self.engine.cached:
            raise InputError("engine", "split graphs (support_encoder + predictor)", self.engine.graphs,
                             "export with python -m export.onnx --split")
        self.categories = load_categories(version_dir)
        self.predictor = self.engine.runners["predictor"]
        self.inputs = [s.name for s in self.predictor.inputs]

    def known(self) -> str:
        return ", ".join(repr(n) for n in sorted(self.categories))

    def parse(self, image: np.ndarray, box: np.ndarray | None, category: Any, field: str = "IMAGE") -> Row:
        """One image's inputs (batch axis removed) -> a Row, or InputError naming the input."""
        where = field.replace("IMAGE", "CATEGORY")
        name = category_name(category, where)
        cat = self.categories.get(name)
        if cat is None:
            raise InputError(where, f"one of the categories of this repository: {self.known()}", repr(name),
                             "re-export the repository with that category in --support-set")
        img = decode_image(image, field)
        if box is not None:
            box = np.asarray(box, dtype=np.float64).reshape(-1)
            if box.shape != (4,) or not np.isfinite(box).all():
                raise InputError(field.replace("IMAGE", "BOX"), "4 finite numbers [x, y, w, h] in image pixels",
                                 f"{box.tolist()}")
        try:
            crops, centers, scales = prepare_queries(img, None if box is None else box[None],
                                                     self.engine.input_size)
        except InputError as exc:
            name = "BOX" if "box" in exc.field else "IMAGE"
            raise InputError(field.replace("IMAGE", name), exc.expected, exc.got, exc.fix) from None
        return Row(cat, crops[0], centers[0], scales[0])

    def parse_request(self, image: np.ndarray | None, box: np.ndarray | None,
                      category: np.ndarray | None) -> list[Row]:
        """A request's tensors (batch axis first: IMAGE [B, ...], BOX [B, 4] or None, CATEGORY [B, 1]) -> B
        Rows; InputError naming the input (and the row, for B > 1) for the first bad one."""
        for name, value in (("IMAGE", image), ("CATEGORY", category)):
            if value is None:
                raise InputError(name, f"the {name} input in every request", "a request without it",
                                 "see the repository README's inputs table")
        if image.ndim < 1 or image.shape[0] < 1:
            raise InputError("IMAGE", "a batch axis of at least one image", f"shape {list(image.shape)}")
        b = image.shape[0]
        for name, value in (("CATEGORY", category), ("BOX", box)):
            if value is not None and (value.ndim < 1 or value.shape[0] != b):
                raise InputError(name, f"{b} rows, one per IMAGE row", f"shape {list(value.shape)}")
        return [self.parse(image[i], None if box is None else box[i], category[i],
                           "IMAGE" if b == 1 else f"IMAGE[{i}]") for i in range(b)]

    def feed(self, rows: list[Row]) -> dict[str, np.ndarray]:
        """The predictor feed of a batch: query crops and each row's own support state, stacked on axis 0."""
        def stack(get):
            return np.concatenate([get(r.category.support) for r in rows])

        feed = {"query": np.stack([r.crop for r in rows]),
                "support_points": stack(lambda s: s.points), "support_visible": stack(lambda s: s.visible),
                "support_links": stack(lambda s: s.links)}
        for name in rows[0].category.support.state:
            feed[name] = stack(lambda s, n=name: s.state[n])
        return {k: feed[k] for k in self.inputs if k in feed}

    def run(self, rows: list[Row]) -> list[np.ndarray]:
        """Keypoints (K_c, 2) float32 image pixels per row: one predictor run per piece of the graph's batch range
        (one run for any batch within it)."""
        if not rows:
            return []
        feed = self.feed(rows)
        points = []
        for start, stop, size in self.engine.batch_chunks(len(rows)):
            chunk = {k: v[start:stop] for k, v in feed.items()}
            if size > stop - start:  # static or minimum batch: pad with the last row, drop afterwards
                chunk = {k: np.concatenate([v, np.repeat(v[-1:], size - (stop - start), axis=0)])
                         for k, v in chunk.items()}
            points.append(self.predictor.infer(chunk)["points"][: stop - start])
        pts = np.concatenate(points)
        centers = np.stack([r.center for r in rows])
        scales = np.stack([r.scale for r in rows])
        pixels = decode_points(pts, centers, scales, self.engine.input_size)
        return [pixels[i, : r.category.support.k_c].astype(np.float32) for i, r in enumerate(rows)]

    def close(self) -> None:
        self.engine.close()


__all__ = ["Category", "PoseModel", "Row", "load_categories", "save_categories"]
