"""libfgsa_ort_ops.so refuses bad inputs with an error naming the input, stays usable, and is thread-safe;
its op names, domain and input tables are the plugin spec's."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest

from kernels.spec import load_plugin_spec
from kernels.tools import cases
from tests.kernels.ort_graphs import (TRT_MSDA_OP, fgsa_feed, library_or_skip, msda_feed, node_model, session,
                                      trt_msda_feed)

SHAPES = cases.FMMP_SHAPES
SOURCE = Path(__file__).resolve().parents[2] / "kernels" / "ort" / "ort_ops.cpp"


@pytest.fixture(scope="module")
def library():
    return library_or_skip()


@pytest.fixture(scope="module")
def fgsa_case():
    return cases.make_fgsa_case(2, keypoints=6, seed=3)


def _run_bad(library, op: str, sess, feed: dict, change: dict, shapes=SHAPES):
    """Runs ``feed`` with ``change`` applied: on ``sess`` when the dtypes stay (a shape error at run time),
    else on a session whose graph declares the new dtypes (ONNX Runtime checks declared input types itself)."""
    bad = {**feed, **change}
    if any(bad[k].dtype != feed[k].dtype for k in change):
        sess = session(library, node_model(op, bad, shapes))
    return sess.run(None, bad)


def _bad_fgsa(feed: dict[str, np.ndarray]) -> list[tuple[str, dict, str]]:
    """(what, feed changes, pattern the error must match)."""
    f = feed
    return [
        ("value float64", {"value": f["value"].astype(np.float64)}, r"'value': expected float32 or float16, got float64"),
        ("links int64", {"links": f["links"].astype(np.int64)}, r"'links': expected int32, got int64"),
        ("links float", {"links": f["links"].astype(np.float32)}, r"'links': expected int32, got float32"),
        ("mixed coords", {"offsets": f["offsets"].astype(np.float16)}, r"'offsets': expected float32 like 'ref_points'"),
        ("value rank", {"value": f["value"][0]}, r"'value': expected a rank-4 tensor, got shape \[1344, 64, 32\]"),
        ("ref rank", {"ref_points": f["ref_points"][..., None]}, r"'ref_points': expected a rank-3 tensor"),
        ("Len_in", {"value": f["value"][:, :-1]}, r"value: expected Len_in = sum of H\*W over spatial_shapes = 1344"),
        ("links K", {"links": f["links"][:, :5]}, r"links: expected \[B, K, Hs\]"),
        ("links B", {"links": f["links"][:1]}, r"links: expected \[B, K, Hs\]"),
        ("Hs*M", {"links": f["links"][..., :3]}, r"value: expected dim 2 = Hs\*M, a multiple of Hs"),
        ("offsets L", {"offsets": f["offsets"][:, :, :, :2]}, r"offsets: expected \[B, K, Hs\*M, L, P, 2\]"),
        ("offsets xy", {"offsets": f["offsets"][..., :1]}, r"offsets: expected \[B, K, Hs\*M, L, P, 2\]"),
        ("logits LP", {"logits": f["logits"][..., :11]}, r"logits: expected \[B, K, Hs\*M, L\*P\]"),
        ("ref B", {"ref_points": f["ref_points"][:1]}, r"ref_points: expected \[B, K, 2\]"),
    ]


def test_every_bad_fgsa_input_is_an_error_naming_it_and_the_session_survives(library, fgsa_case):
    feed = fgsa_feed(fgsa_case)
    sess = session(library, node_model("FGSA_Attention", feed, SHAPES))
    good = sess.run(None, feed)[0]
    for what, change, pattern in _bad_fgsa(feed):
        with pytest.raises(Exception, match=pattern) as info:
            _run_bad(library, "FGSA_Attention", sess, feed, change)
        assert "FGSA_Attention input" in str(info.value), what
        np.testing.assert_array_equal(sess.run(None, feed)[0], good, err_msg=f"after {what}")


def test_every_bad_msda_input_is_an_error_naming_it(library):
    case = cases.make_msda_case(2, queries=5, seed=4)
    feed = msda_feed(case)
    sess = session(library, node_model("FGSA_MSDA", feed, SHAPES))
    good = sess.run(None, feed)[0]
    bad = [({"value": feed["value"].astype(np.int32)}, r"'value': expected float32 or float16, got int32"),
           ({"attention_weights": feed["attention_weights"].astype(np.float16)},
            r"'attention_weights': expected float32 like 'sampling_locations'"),
           ({"sampling_locations": feed["sampling_locations"][:, :, :4]}, r"sampling_locations: expected \[B, Q, M, L, P, 2\]"),
           ({"attention_weights": feed["attention_weights"][..., :3]}, r"attention_weights: expected \[B, Q, M, L, P\]"),
           ({"value": feed["value"][:, :100]}, r"value: expected Len_in"),
           ({"attention_weights": feed["attention_weights"][0]}, r"'attention_weights': expected a rank-5 tensor")]
    for change, pattern in bad:
        with pytest.raises(Exception, match=pattern):
            _run_bad(library, "FGSA_MSDA", sess, feed, change)
        np.testing.assert_array_equal(sess.run(None, feed)[0], good)


def test_every_bad_tensorrt_msda_input_is_an_error_naming_it(library):
    case = cases.make_msda_case(1, queries=5, seed=6)
    feed = trt_msda_feed(case)
    sess = session(library, node_model(TRT_MSDA_OP, feed))
    good = sess.run(None, feed)[0]
    shapes, starts = feed["spatial_shapes"], feed["level_start_index"]
    bad = [({"level_start_index": starts + 1}, r"'level_start_index': expected the running sums of H\*W"),
           ({"level_start_index": starts[:2]}, r"'level_start_index': expected shape \[L\] = \[3\]"),
           ({"spatial_shapes": shapes[:, :1]}, r"'spatial_shapes': expected shape \[L, 2\]"),
           ({"spatial_shapes": shapes * 2, "level_start_index": starts * 4}, r"value: expected Len_in = sum of H\*W over spatial_shapes = 5376"),
           ({"spatial_shapes": -shapes}, r"spatial_shapes: level 0 must have 1 <= H, W"),
           ({"spatial_shapes": shapes.astype(np.float32)}, r"'spatial_shapes': expected int32 \(or int64\), got float32"),
           ({"value": feed["value"].astype(np.float16)}, None)]  # fp16 values with fp32 coordinates are fine
    for change, pattern in bad:
        if pattern is None:
            assert np.isfinite(_run_bad(library, TRT_MSDA_OP, sess, feed, change, None)[0]).all()
            continue
        with pytest.raises(Exception, match=pattern):
            _run_bad(library, TRT_MSDA_OP, sess, feed, change, None)
        np.testing.assert_array_equal(sess.run(None, feed)[0], good)


@pytest.mark.parametrize("shapes,pattern", [([], r"spatial_shapes"), ([8, 8, 16], r"even number of ints"),
                                            ([8, 0], r"level 0 must have 1 <= H, W"),
                                            ([1, 1] * 9, r"1\.\.8 levels")])
def test_bad_spatial_shapes_attribute_fails_the_session_with_a_message(library, fgsa_case, shapes, pattern):
    feed = fgsa_feed(fgsa_case)
    # [] = the attribute missing altogether
    model = node_model("FGSA_Attention", feed, attributes={"spatial_shapes": shapes} if shapes else None)
    with pytest.raises(Exception, match=pattern):
        session(library, model).run(None, feed)


def test_eight_threads_on_one_session_equal_the_serial_results(library):
    case = cases.make_fgsa_case(2, seed=9)
    feeds = []
    for i in range(8):  # a different batch per thread: a mixed-up output would show
        c = cases.make_fgsa_case(2, seed=40 + i)
        feeds.append(fgsa_feed(c))
    sess = session(library, node_model("FGSA_Attention", fgsa_feed(case), SHAPES), threads=2)
    serial = [sess.run(None, f)[0] for f in feeds]
    results: dict[int, list[np.ndarray]] = {i: [] for i in range(8)}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                results[i].append(sess.run(None, feeds[i])[0])
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(8):
        for got in results[i]:
            np.testing.assert_array_equal(got, serial[i])


def test_thread_count_does_not_change_results(library):
    case = cases.make_fgsa_case(3, seed=10)
    feed = fgsa_feed(case)
    model = node_model("FGSA_Attention", feed, SHAPES)
    one, two = (session(library, model, threads=t).run(None, feed)[0] for t in (1, 2))
    np.testing.assert_array_equal(one, two)


# ---- the spec ---------------------------------------------------------------------------------------

def _input_tables() -> dict[str, list[tuple[str, int]]]:
    text = SOURCE.read_text()
    tables = {}
    for name, body in re.findall(r"constexpr InputDef (\w+)\[\] = \{(.*?)\};", text, flags=re.S):
        tables[name] = [(n, int(r)) for n, r in re.findall(r'\{"(\w+)", (\d+)\}', body)]
    return tables


def test_domain_and_inputs_match_the_plugin_spec():
    spec = load_plugin_spec()
    text = SOURCE.read_text()
    assert re.search(r'kDomain = "([^"]+)"', text).group(1) == spec["onnx_domain"]
    tables = _input_tables()
    for op, table in (("FGSA_MSDA", "kMsdaInputs"), ("FGSA_Attention", "kFgsaInputs")):
        declared = [(i["name"], len(i["shape"])) for i in spec["ops"][op]["inputs"]]
        assert tables[table] == declared
    assert "fgsa::plugin::kMsdaPluginName" in text and "fgsa::plugin::kFgsaAttentionPluginName" in text
    assert "fgsa::plugin::kSpatialShapesField" in text


def test_tensorrt_op_inputs_match_the_exporter():
    """The TensorRT op's input order is what export.forms writes (value, shapes, starts, locations, weights)."""
    from export.forms import TRT_DOMAIN, TRT_MSDA_OP as EXPORTED

    text = SOURCE.read_text()
    assert EXPORTED == TRT_MSDA_OP and f'"{TRT_MSDA_OP}"' in text and TRT_DOMAIN == load_plugin_spec()["onnx_domain"]
    assert [n for n, _ in _input_tables()["kTrtMsdaInputs"]] == ["value", "spatial_shapes", "level_start_index",
                                                                 "sampling_locations", "attention_weights"]


def test_library_exports_only_register_custom_ops(library):
    import subprocess

    out = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True).stdout
    functions = sorted(line.split()[-1] for line in out.splitlines() if line.split()[1] == "T")
    assert functions == ["RegisterCustomOps"]
    undefined = subprocess.run(["nm", "-D", "--undefined-only", str(library)], capture_output=True, text=True).stdout
    assert "Ort" not in undefined  # nothing from libonnxruntime: the API table comes at registration
