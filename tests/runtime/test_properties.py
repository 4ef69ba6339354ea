"""Property tests: thousands of generated malformed annotations, boxes, images and feeds go to the readers
and to runtime.Engine; the only exception that ever escapes is InputError, and a good call after each
still gives the same result."""

from __future__ import annotations

import copy
import json
import struct

import cv2
import numpy as np
import pytest

from fgsa.data.mp100 import MP100Annotations
from fgsa.errors import InputError
from fgsa.files.images import read_image_rgb
from runtime import Engine
from runtime.annotations import read_support_annotation
from tests.runtime.helpers import queries, support_args

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

def fast(examples: int):
    """Fixed-seed runs (derandomize: CI sees the same examples every time) without per-example deadlines."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])

# any JSON value, small: what a foreign file may hold where we expect something else
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
                    | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)

BASE_COCO = {
    "images": [{"id": 1, "file_name": "a/1.jpg", "width": 100, "height": 80},
               {"id": 2, "file_name": "a/2.jpg", "width": 120, "height": 90}],
    "annotations": [{"id": 10, "image_id": 1, "category_id": 3, "bbox": [10, 10, 50, 40], "area": 2000,
                     "iscrowd": 0, "num_keypoints": 3, "keypoints": [20, 20, 2, 30, 30, 1, 40, 25, 2]},
                    {"id": 11, "image_id": 2, "category_id": 3, "bbox": [5, 8, 60, 50],
                     "keypoints": [15, 20, 2, 35, 30, 2, 45, 40, 0]}],
    "categories": [{"id": 3, "name": "thing", "keypoints": ["a", "b", "c"], "skeleton": [[0, 1], [1, 2]]}],
}


def _paths(obj, prefix=()):
    """Every (path) into a nested dict/list, for picking where to plant a bad value."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


COCO_PATHS = [p for p in _paths(BASE_COCO) if p]


def _plant(base, path, value, delete):
    data = copy.deepcopy(base)
    node = data
    for key in path[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return data


def _good_coco():
    ann = MP100Annotations(BASE_COCO, "/tmp/images")
    assert len(ann) == 2 and ann.categories[3].skeleton == ((0, 1), (1, 2))


@fast(1200)
@given(st.lists(st.tuples(st.sampled_from(COCO_PATHS), JSON, st.booleans()), min_size=1, max_size=3))
def test_malformed_coco_raises_only_input_error(changes):
    data = BASE_COCO
    for path, value, delete in changes:
        try:
            data = _plant(data, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced the parent
    try:
        MP100Annotations(data, "/tmp/images")
    except InputError:
        pass
    _good_coco()


SMALL = {"keypoints": [[10, 10, 2], [20, 30, 2], [40, 20, 1]], "skeleton": [[0, 1], [1, 2]],
         "bbox": [0, 0, 60, 50], "visible": [1, 1, 0], "keypoint_names": ["a", "b", "c"], "skeleton_base": 0}
SMALL_PATHS = [p for p in _paths(SMALL) if p]


@fast(300)
@given(st.lists(st.tuples(st.sampled_from(SMALL_PATHS), JSON, st.booleans()), min_size=1, max_size=3),
       st.booleans())
def test_malformed_small_json_raises_only_input_error(tmp_path_factory, changes, raw_garbage):
    folder = tmp_path_factory.getbasetemp()
    path = folder / "small.json"
    data = SMALL
    for p, value, delete in changes:
        try:
            data = _plant(data, p, value, delete)
        except (KeyError, IndexError, TypeError):
            continue
    path.write_text(json.dumps(data)[: 17 if raw_garbage else None])  # sometimes cut mid-way
    try:
        read_support_annotation(path)
    except InputError:
        pass
    path.write_text(json.dumps(SMALL))
    assert read_support_annotation(path).keypoints.shape == (3, 3)


def _image_bytes(ext: str) -> bytes:
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (40, 30))
    return cv2.imencode(ext, img)[1].tobytes()


IMAGES = {ext: _image_bytes(ext) for ext in (".png", ".jpg", ".bmp", ".webp")}


@fast(400)
@given(st.sampled_from(sorted(IMAGES)), st.sampled_from(["cut", "flip", "dims", "junk"]), st.data())
def test_damaged_images_raise_only_input_error(tmp_path_factory, ext, how, data):
    raw = bytearray(IMAGES[ext])
    if how == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    elif how == "dims":  # the header declares another size, up to 2^32 - 1 per side
        w, h = data.draw(st.integers(0, 2**32 - 1)), data.draw(st.integers(0, 2**32 - 1))
        if ext == ".png":
            raw[16:24] = struct.pack(">II", w, h)
        elif ext == ".jpg":
            sof = raw.find(b"\xff\xc0")
            raw[sof + 5:sof + 9] = struct.pack(">HH", h & 0xFFFF, w & 0xFFFF)
        elif ext == ".bmp":
            raw[18:26] = struct.pack("<ii", (w & 0x7FFFFFFF) - (1 << 30), (h & 0x7FFFFFFF) - (1 << 30))
    else:
        raw = bytearray(data.draw(st.binary(max_size=64)))
    path = tmp_path_factory.getbasetemp() / f"img{ext}"
    path.write_bytes(bytes(raw))
    try:
        img = read_image_rgb(path, "--query", max_pixels=4_000_000)  # bounded: at most 12 MB decoded
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.size > 0
    except InputError:
        pass
    path.write_bytes(IMAGES[ext])
    assert read_image_rgb(path).shape == (30, 40, 3)


# -- runtime.Engine ----------------------------------------------------------------------------------------

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.integers(-10**9, 10**9)


def _array(draw, dtype_choices=("uint8", "float32", "float64", "int64", "bool", "int8")):
    dtype = draw(st.sampled_from(dtype_choices))
    shape = tuple(draw(st.lists(st.integers(0, 9), min_size=0, max_size=4)))
    n = int(np.prod(shape)) if shape else 1
    if n > 400:
        shape = shape[:2]
    return np.zeros(shape, dtype) + np.asarray(draw(st.integers(0, 3))).astype(dtype)


@st.composite
def bad_support(draw):
    args = support_args(seed=1)
    which = draw(st.sampled_from(["images", "keypoints", "visible", "skeleton", "boxes"]))
    if which == "images":
        choice = draw(st.sampled_from(["array", "channels", "zero", "dtype", "many"]))
        img = args["images"][0]
        args["images"] = {"array": [_array(draw)], "channels": [np.dstack([img, img[..., :1]])],
                          "zero": [img[:0]], "dtype": [img.astype(np.float32)], "many": [img, img]}[choice]
    elif which == "keypoints":
        args["keypoints"] = _array(draw, ("float64", "float32", "int64", "bool", "uint8"))
        if draw(st.booleans()):
            kp = support_args(seed=1)["keypoints"].copy()
            kp[0, draw(st.integers(0, 6)), draw(st.integers(0, 2))] = draw(FLOATS)
            args["keypoints"] = kp
    elif which == "visible":
        args["visible"] = _array(draw)
    elif which == "skeleton":
        args["skeleton"] = draw(st.lists(st.lists(st.integers(-3, 9), max_size=3), max_size=4))
    else:
        args["boxes"] = [draw(st.lists(FLOATS, min_size=0, max_size=5))]
    return args


@pytest.fixture(scope="module")
def engine(micro):
    with Engine(micro.folder) as e:
        e.set_support(**support_args(seed=1))
        yield e


@pytest.fixture(scope="module")
def good(engine):
    imgs, boxes = queries(seed=4, n=1)
    return imgs, boxes, engine.predict(imgs, boxes)


@fast(80)
@given(bad_support())
def test_engine_set_support_raises_only_input_error(engine, good, args):
    try:
        engine.set_support(**args)
    except InputError:
        pass
    engine.set_support(**support_args(seed=1))
    imgs, boxes, want = good
    np.testing.assert_array_equal(engine.predict(imgs, boxes), want)


@st.composite
def bad_query(draw):
    imgs, boxes = queries(seed=4, n=1)
    if draw(st.booleans()):
        imgs = [_array(draw)] if draw(st.booleans()) else [np.zeros((draw(st.integers(0, 3)), 5, 3), np.uint8)]
    else:
        boxes = draw(st.lists(FLOATS, min_size=0, max_size=6)) if draw(st.booleans()) else _array(draw)
    return imgs, boxes


@fast(100)
@given(bad_query())
def test_engine_predict_raises_only_input_error(engine, good, query):
    try:
        engine.predict(*query)
    except InputError:
        pass
    imgs, boxes, want = good
    np.testing.assert_array_equal(engine.predict(imgs, boxes), want)
