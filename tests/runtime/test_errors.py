"""Every invalid input raises InputError naming the input; engines that cannot load say how to fix it."""

import numpy as np
import pytest

from runtime import Engine, EngineError, InputError
from tests.runtime.helpers import queries, support_args


@pytest.fixture(scope="module")
def engine(micro):
    with Engine(micro.folder) as e:
        yield e


@pytest.fixture(scope="module")
def feed():
    rng = np.random.default_rng(0)
    return {"query": rng.standard_normal((1, 3, 256, 256), dtype=np.float32),
            "support": rng.standard_normal((1, 1, 3, 256, 256), dtype=np.float32),
            "support_points": rng.random((1, 1, 70, 2), dtype=np.float32),
            "support_visible": np.ones((1, 1, 70), bool),
            "support_links": np.tile(np.arange(70, dtype=np.int32)[:, None], (1, 1, 1, 16))}


def _raises(field: str, fn, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    assert info.value.field == field, str(info.value)
    return info.value


def test_predict_before_set_support(micro):
    with Engine(micro.folder) as fresh:
        err = _raises("support", fresh.predict, *queries(seed=0, n=1))
    assert "set_support" in str(err)


@pytest.mark.parametrize("change, field", [
    (lambda f: f.update(query=f["query"][:, :, :128]), "query"),                        # shape
    (lambda f: f.update(query=f["query"].astype(np.float64)), "query"),                  # dtype
    (lambda f: f.update(support_links=f["support_links"].astype(np.int64)), "support_links"),
    (lambda f: f.update(support_points=f["support_points"][:, :, :69]), "support_points"),  # K
    (lambda f: f.update(support_visible=np.zeros((1, 1, 70), bool)), "support_visible"),
    (lambda f: f.update(support_links=f["support_links"] + 70), "support_links"),         # index range
    (lambda f: f["query"].__setitem__((0, 0, 5, 5), np.nan), "query"),                    # NaN
    (lambda f: f.update(support=np.repeat(f["support"], 2, axis=0)), "support"),          # batch mismatch
    (lambda f: f.pop("support_links"), "feed"),                                            # missing input
])
def test_raw_feed_errors_name_the_input(engine, feed, change, field):
    bad = {k: v.copy() for k, v in feed.items()}
    change(bad)
    _raises(field, engine.infer, bad)


def test_batch_outside_the_exported_range(engine, feed):
    big = {k: np.repeat(v, 5, axis=0) for k, v in feed.items()}
    err = _raises("query", engine.infer, big)
    assert "--dynamic-batch" in str(err)


@pytest.mark.parametrize("change, field", [
    (lambda a: a.update(images=[a["images"][0].astype(np.float32)]), "images[0]"),       # dtype
    (lambda a: a.update(images=[a["images"][0][:, :, :2]]), "images[0]"),                 # shape
    (lambda a: a.update(images=a["images"] * 2), "images"),                               # shots
    (lambda a: a.update(keypoints=np.zeros((1, 71, 3))), "keypoints (K_c, keypoints per shot)"),  # K > 70
    (lambda a: a.update(keypoints=a["keypoints"][..., :1]), "keypoints"),
    (lambda a: a["keypoints"].__setitem__((0, 2, 0), np.nan), "keypoints"),
    (lambda a: a.update(visible=np.ones((1, 5))), "visible"),
    (lambda a: a.update(visible=np.zeros((1, 7))), "visible"),                             # nothing visible
    (lambda a: a.update(skeleton=[]), "skeleton"),                                         # empty skeleton
    (lambda a: a.update(skeleton=[[0, 7]]), "skeleton"),
    (lambda a: a.update(skeleton=None), "skeleton"),
    (lambda a: a.update(boxes=[[0, 0, 10, np.nan]]), "boxes[0]"),
    (lambda a: a.update(boxes=[[0, 0, 10, 10], [0, 0, 5, 5]]), "boxes"),
    (lambda a: a.update(boxes=[[5000, 5000, 10, 10]]), "boxes[0]"),                       # outside the image
])
def test_set_support_errors_name_the_input(engine, change, field):
    args = support_args(seed=1)
    args["keypoints"] = args["keypoints"].copy()
    change(args)
    _raises(field, engine.set_support, **args)


def test_empty_skeleton_message_says_how_to_fix(engine):
    err = _raises("skeleton", engine.set_support, **{**support_args(seed=2), "skeleton": []})
    assert "at least one edge" in str(err)


@pytest.mark.parametrize("change, field", [
    (lambda q: (q[0] + [np.zeros((10, 10), np.uint8)], None), "query_images[1]"),
    (lambda q: ([q[0][0]], np.array([[0, 0, 10]])), "boxes"),
    (lambda q: ([q[0][0]], np.array([[0, 0, 10, -1.0]])), "boxes[0]"),
    (lambda q: ([], None), "query_images"),
])
def test_predict_errors_name_the_input(engine, change, field):
    engine.set_support(**support_args(seed=3))
    imgs, boxes = change(queries(seed=4, n=1))
    _raises(field, engine.predict, imgs, boxes)


def test_engine_paths_and_backends(micro, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Engine(tmp_path / "nope.onnx")
    with pytest.raises(InputError, match="backend"):
        Engine(micro.folder, backend="tvm")
    with pytest.raises(EngineError, match="export.trt"):
        Engine(micro.folder / "model.onnx", backend="tensorrt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineError, match="export.onnx"):
        Engine(tmp_path / "empty")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a graph")
    with pytest.raises(EngineError, match="cannot load"):
        Engine(broken)
