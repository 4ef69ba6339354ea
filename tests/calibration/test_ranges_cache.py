"""Calibration episodes and the range cache: real pairs in, a JSON cache keyed by graph hash out."""

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from calibration import ranges as R
from calibration.episodes import FEEDS, load_episodes
from calibration.graph import graph_sha256
from fgsa.errors import InputError


def test_episodes_are_real_pairs_as_graph_feeds(benchmark, calib_pairs):
    assert len(calib_pairs) == 4
    feed = calib_pairs.feed(0)
    assert set(feed) == set(FEEDS)
    assert feed["query"].shape == (1, 3, 256, 256) and feed["query"].dtype == np.float32
    assert feed["support_links"].dtype == np.int32 and feed["support_visible"].dtype == bool
    assert feed["support_visible"].any()
    # round-robin over categories: the first pairs cover every category of the subset
    cats = [int(it["category_id"]) for it in calib_pairs.items[:3]]
    assert len(set(cats)) == 3 == len(calib_pairs.categories)
    with pytest.raises(InputError, match="episodes"):
        load_episodes(benchmark, "train", 0, progress=False)


def test_minmax_ranges_cover_every_gemm_input_and_output(fp32_graph, minmax_ranges):
    model = onnx.load(fp32_graph)
    wanted = {t for n in model.graph.node if n.op_type in ("Conv", "MatMul")
              for t in [n.input[0], n.output[0]]}
    assert wanted <= set(minmax_ranges.keys())
    first_conv = next(n for n in model.graph.node if n.op_type == "Conv")
    lo, hi = minmax_ranges[first_conv.input[0]].range_value
    assert float(np.ravel(hi)[0]) == pytest.approx(-float(np.ravel(lo)[0]))  # symmetric


def test_cache_round_trip_hit_and_graph_hash_key(tmp_path, fp32_graph, calib_pairs, minmax_ranges, monkeypatch):
    model = onnx.load(fp32_graph)
    cache = R.RangeCache(tmp_path / "cache.json")
    key = R.RangeCache.key(model, "minmax", calib_pairs.signature)
    assert cache.get(key) is None
    cache.put(key, minmax_ranges, len(calib_pairs))
    data = json.loads((tmp_path / "cache.json").read_text())
    assert data["format"] == R.CACHE_FORMAT and list(data["entries"]) == [key]
    assert key.startswith(graph_sha256(model))

    def no_inference(*a, **k):
        raise AssertionError("a cache hit must not run the model")

    monkeypatch.setattr(R, "compute_ranges", no_inference)
    got, hit = R.cached_ranges(model, calib_pairs, "minmax", cache, progress=False)
    assert hit
    name = next(iter(minmax_ranges.keys()))
    np.testing.assert_allclose(got[name].range_value, minmax_ranges[name].range_value)
    # the metadata is not part of the key; a changed weight is
    model.metadata_props.add(key="note", value="x")
    assert R.RangeCache.key(model, "minmax", calib_pairs.signature) == key
    w = model.graph.initializer[0]
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) * 2, w.name))
    assert R.RangeCache.key(model, "minmax", calib_pairs.signature) != key
    with pytest.raises(AssertionError, match="cache hit"):
        R.cached_ranges(model, calib_pairs, "minmax", cache, progress=False)


def test_foreign_cache_file_and_unknown_method_are_input_errors(tmp_path, fp32_graph, calib_pairs):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(InputError, match="--cache"):
        R.RangeCache(path).get("k")
    with pytest.raises(InputError, match="--method"):
        R.compute_ranges(onnx.load(fp32_graph), calib_pairs.feeds(), "kl", progress=False)
