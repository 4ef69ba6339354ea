"""runtime.Engine on ONNX Runtime: images in, keypoints out, against the PyTorch model."""

import numpy as np
import pytest
import torch

from fgsa.preprocess import decode_points, prepare_instance
from runtime import Engine, EngineError
from tests.runtime.helpers import queries, support_args

TOL = 1e-4  # normalised crop units: the FP32 noise floor of FMMP (docs/MEASURED.md)


@pytest.fixture(scope="module")
def engine(tiny):
    with Engine(tiny.folder, threads=2) as e:
        yield e


def _torch_points(model, support: dict, query_images, boxes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch on inputs built with fgsa.preprocess directly -> (points (B, 70, 2), centers, scales)."""
    s = prepare_instance(support["images"][0], support["boxes"][0], support["keypoints"][0], support["skeleton"])
    crops, centers, scales = [], [], []
    for img, box in zip(query_images, boxes):
        q = prepare_instance(img, box, np.array([[box[0] + 5, box[1] + 5, 2.0]]), [[0, 0]])
        crops.append(q["image"]), centers.append(q["center"]), scales.append(q["scale"])
    b = len(crops)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with torch.inference_mode():
        layers = model(t(np.stack(crops)), t(np.repeat(s["image"][None, None], b, 0)),
                       t(np.repeat(s["points"][None, None], b, 0)), t(np.repeat(s["visible"][None, None], b, 0)),
                       t(np.repeat(s["links"][None, None], b, 0)))
    return layers[-1].numpy(), np.stack(centers), np.stack(scales)


def test_predict_matches_pytorch_in_image_pixels(engine, tiny):
    sup = support_args(seed=1)
    engine.set_support(**sup)
    imgs, boxes = queries(seed=2, n=3)
    got = engine.predict(imgs, boxes)
    want, centers, scales = _torch_points(tiny.model, sup, imgs, boxes)
    assert got.shape == (3, 7, 2) and got.dtype == np.float32
    want_px = decode_points(want, centers, scales)[:, :7]
    crop_side_px = scales[:, None, :].astype(np.float64) * 200.0  # image pixels per normalised unit
    assert np.abs(got - want_px).max() / crop_side_px.min() < TOL
    # and the raw normalised points of the same crops
    crops = np.stack([prepare_instance(i, b, np.array([[b[0] + 5, b[1] + 5, 2.0]]), [[0, 0]])["image"]
                      for i, b in zip(imgs, boxes)])
    np.testing.assert_allclose(engine.points(crops), want, rtol=0, atol=TOL)


def test_support_tensors_are_the_preprocess_output(micro):
    sup = support_args(seed=4)
    with Engine(micro.folder) as engine:
        s = engine.set_support(**sup)
        assert s.k_c == 7 and s.state["support_values_1_level1"].shape == (1, 1, 4, 8, 16, 16) and engine.cached
    ref = prepare_instance(sup["images"][0], sup["boxes"][0], sup["keypoints"][0], sup["skeleton"])
    np.testing.assert_array_equal(s.support[0, 0], ref["image"])
    np.testing.assert_array_equal(s.points[0, 0], ref["points"])
    np.testing.assert_array_equal(s.links[0, 0], ref["links"])


def test_cached_split_path_equals_full_graph(micro):
    sup = support_args(seed=5)
    imgs, boxes = queries(seed=6, n=2)
    results = {}
    for name, kw in {"cached": dict(path=micro.folder),
                     "folder-uncached": dict(path=micro.folder, cache_support=False),
                     "model.onnx": dict(path=micro.folder / "model.onnx")}.items():
        with Engine(kw.pop("path"), **kw) as e:
            assert e.cached == (name == "cached")
            e.set_support(**sup)
            results[name] = e.predict(imgs, boxes)
    np.testing.assert_array_equal(results["folder-uncached"], results["model.onnx"])
    np.testing.assert_allclose(results["cached"], results["model.onnx"], rtol=0, atol=1e-3)  # pixels


def test_batches_larger_than_the_graph_are_split_and_padded(engine):
    engine.set_support(**support_args(seed=7))
    imgs, boxes = queries(seed=8, n=6)  # graph batch range 1..4: pieces of 4 and 2
    together = engine.predict(imgs, boxes)
    one_by_one = np.concatenate([engine.predict(i, b) for i, b in zip(imgs, boxes)])
    np.testing.assert_allclose(together, one_by_one, rtol=0, atol=1e-6)


def test_infer_raw_tensors_and_graph_choice(micro):
    engine = Engine(micro.folder)
    rng = np.random.default_rng(0)
    feed = {"query": rng.standard_normal((2, 3, 256, 256), dtype=np.float32),
            "support": rng.standard_normal((2, 1, 3, 256, 256), dtype=np.float32),
            "support_points": rng.random((2, 1, 70, 2), dtype=np.float32),
            "support_visible": np.ones((2, 1, 70), bool),
            "support_links": np.tile(np.arange(70, dtype=np.int32)[:, None], (2, 1, 1, 16))}
    full = engine.infer(feed)
    assert set(full) == {"points"} and full["points"].shape == (2, 70, 2) and full["points"].dtype == np.float32
    state = engine.infer({k: v for k, v in feed.items() if k != "query"})  # -> support encoder
    assert {k: v.shape for k, v in state.items()} == {
        "support_embed": (2, 70, 16), "support_pos": (2, 1, 70, 16),
        # support layer 1's projected values in GridSample's layout: [B, S, side heads x heads, Dh, H, W]
        "support_values_1_level0": (2, 1, 4, 8, 8, 8), "support_values_1_level1": (2, 1, 4, 8, 16, 16)}
    rest = {k: v for k, v in feed.items() if k != "support"}
    split = engine.infer({**rest, **state})  # -> predictor
    np.testing.assert_allclose(split["points"], full["points"], rtol=0, atol=TOL)
    again = engine.infer(feed)
    assert again["points"] is not full["points"]  # fresh arrays: preallocated buffers never leak out
    np.testing.assert_array_equal(again["points"], full["points"])
    engine.close()


def test_plugin_form_runs_through_the_reference_op(micro, micro_plugin):
    pytest.importorskip("onnxruntime_extensions")
    sup = support_args(seed=9)
    imgs, boxes = queries(seed=10, n=1)
    with Engine(micro_plugin, ort_library=False) as plugin, Engine(micro.folder / "model.onnx") as portable:
        assert plugin.runners["full"].uses_reference_ops and not portable.runners["full"].uses_reference_ops
        for e in (plugin, portable):
            e.set_support(**sup)
        np.testing.assert_allclose(plugin.predict(imgs, boxes), portable.predict(imgs, boxes), rtol=0, atol=1e-3)


def test_engine_metadata_and_lifecycle(micro):
    e = Engine(micro.folder)
    assert (e.backend, e.shots, e.keypoints, e.input_size) == ("onnxruntime", 1, 70, 256)
    assert (e.batch.lo, e.batch.hi) == (1, 4) and e.graphs == ["full", "support_encoder", "predictor"]
    assert not e.runners["full"].is_active  # the full graph loads only when needed
    sup = support_args(seed=11)
    e.set_support(**sup)
    e.close()
    assert not any(r.is_active for r in e.runners.values())
    with pytest.raises(EngineError, match="closed"):
        e.predict(*queries(seed=12, n=1))
