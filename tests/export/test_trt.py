"""python -m export.trt: everything before the builder call, without TensorRT; the build itself where it exists."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from export import metadata
from export import trt as T
from fgsa.errors import InputError

try:
    import tensorrt  # noqa: F401

    HAVE_TRT = True
except Exception:
    HAVE_TRT = False
NO_TRT = "TensorRT is not installed here (docs/MEASURED.md: the wheels need libraries this network cannot fetch)"


def _graph(path, precision="fp16", batch="batch", plugin=True, meta_batch=None):
    """A small graph shaped like ours: the precision is carried by its weights / Q/DQ nodes, as in export."""
    wtype = TensorProto.FLOAT16 if precision == "fp16" else TensorProto.FLOAT
    npdt = np.float16 if precision == "fp16" else np.float32
    inputs = [helper.make_tensor_value_info("query", TensorProto.FLOAT, [batch, 3, 8, 8]),
              helper.make_tensor_value_info("support_links", TensorProto.INT32, [batch, 1, 4, 16])]
    outputs = [helper.make_tensor_value_info("points", TensorProto.FLOAT, [batch, 4, 8, 8])]
    w = helper.make_tensor("w", wtype, [4, 3, 1, 1], np.ones((4, 3, 1, 1), npdt).tobytes(), raw=True)
    nodes = [helper.make_node("Cast", ["query"], ["q"], to=wtype), helper.make_node("Conv", ["q", "w"], ["c"])]
    inits = [w]
    if precision == "int8":
        inits += [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]), helper.make_tensor("z", TensorProto.INT8, [], [0])]
        nodes = [helper.make_node("QuantizeLinear", ["query", "s", "z"], ["qq"]),
                 helper.make_node("DequantizeLinear", ["qq", "s", "z"], ["q"]), nodes[1]]
    if plugin:
        nodes.append(helper.make_node("FGSA_MSDA", ["c", "c", "c"], ["m"], domain="trt.plugins"))
    nodes.append(helper.make_node("Cast", ["m" if plugin else "c"], ["points"], to=TensorProto.FLOAT))
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("trt.plugins", 1)])
    batch_meta = meta_batch or ({"dynamic": True, "min": 1, "opt": 4, "max": 8} if isinstance(batch, str)
                                else {"dynamic": False, "size": batch})
    metadata.attach(model, {"attention": "plugin" if plugin else "portable", "batch": batch_meta, "graph": "full"})
    onnx.save(model, path)
    return path


def test_precision_is_read_from_the_graph_and_checked(tmp_path):
    fp16, fp32, int8 = (_graph(tmp_path / f"{p}.onnx", p) for p in ("fp16", "fp32", "int8"))
    assert [T.read_graph(p).precision for p in (fp16, fp32, int8)] == ["fp16", "fp32", "int8"]
    T.check_precision(T.read_graph(fp16), "fp16")
    T.check_precision(T.read_graph(int8), "int8")
    with pytest.raises(InputError, match="--precision fp16"):  # says how to produce an FP16 graph
        T.check_precision(T.read_graph(fp32), "fp16")
    with pytest.raises(InputError, match="python -m calibration"):
        T.check_precision(T.read_graph(fp16), "int8")
    with pytest.raises(InputError, match="not found"):
        T.read_graph(tmp_path / "missing.onnx")


def test_profiles_come_from_the_dynamic_batch_spec_or_the_graph(tmp_path):
    info = T.read_graph(_graph(tmp_path / "d.onnx"))
    assert T.profile_shapes(info, (2, 3, 5)) == {"query": ([2, 3, 8, 8], [3, 3, 8, 8], [5, 3, 8, 8]),
                                                 "support_links": ([2, 1, 4, 16], [3, 1, 4, 16], [5, 1, 4, 16])}
    assert T.profile_shapes(info, None)["query"] == ([1, 3, 8, 8], [4, 3, 8, 8], [8, 3, 8, 8])  # metadata range
    static = T.read_graph(_graph(tmp_path / "s.onnx", batch=1))
    assert T.profile_shapes(static, None) == {}
    with pytest.raises(InputError, match="re-export"):
        T.profile_shapes(static, (1, 2, 4))
    for bad in ("4:2:8", "0:1:2", "1:2", "a:b:c"):
        with pytest.raises(InputError, match="--dynamic-batch"):
            T.parse_dynamic_batch(bad)


def test_plugin_library_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv(T.PLUGIN_ENV, raising=False)
    monkeypatch.setattr(T, "REPO_ROOT", tmp_path)  # no build/ folder
    with_plugin = T.read_graph(_graph(tmp_path / "p.onnx"))
    without = T.read_graph(_graph(tmp_path / "n.onnx", plugin=False))
    assert with_plugin.plugin_ops == ["FGSA_MSDA"] and without.plugin_ops == []
    assert T.find_plugin_library(None, without) is None
    with pytest.raises(InputError, match="make kernels"):
        T.find_plugin_library(None, with_plugin)
    with pytest.raises(InputError, match="not found"):
        T.find_plugin_library(tmp_path / "nope.so", with_plugin)
    lib = tmp_path / "build" / "x" / T.PLUGIN_NAME
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"not really a library")
    assert T.find_plugin_library(None, with_plugin) == lib.resolve()
    monkeypatch.setenv(T.PLUGIN_ENV, str(lib))
    assert T.find_plugin_library(None, without) == lib.resolve()


def test_sidecar_has_what_runtime_reads(tmp_path, monkeypatch):
    from runtime.backends.plan import read_sidecar

    lib = tmp_path / T.PLUGIN_NAME
    lib.write_bytes(b"\x7fELF plugin")
    plan = T.plan_build(_graph(tmp_path / "m.onnx"), "fp16", tmp_path / "m.plan", plugin=lib, workspace_mib=512)
    side = plan.sidecar("11.1.0", {"name": "NVIDIA H100", "compute_capability": "9.0"}, 12.3)
    assert side["precision"] == "fp16" and side["strongly_typed"] and side["network_flags"] == []
    assert side["plugin_sha256"] == T.file_sha256(lib) and side["plugin_ops"] == ["FGSA_MSDA"]
    assert [io["name"] for io in side["io"]] == ["query", "support_links", "points"]
    assert side["io"][0]["profile"]["max"] == [8, 3, 8, 8] and side["io"][1]["dtype"] == "int32"
    assert side["metadata"]["attention"] == "plugin" and side["workspace_mib"] == 512
    T.sidecar_path(plan.out).write_text(json.dumps(side))
    parsed = read_sidecar(plan.out)
    assert (parsed.trt_version, parsed.precision, parsed.plugin_sha256) == ("11.1.0", "fp16", side["plugin_sha256"])
    assert parsed.needs_plugin and parsed.gpu["compute_capability"] == "9.0"
    with pytest.raises(InputError, match="--out"):
        T.plan_build(tmp_path / "m.onnx", "fp16", tmp_path / "m.onnx", plugin=lib)
    with pytest.raises(InputError, match="precision"):  # no BF16 plans: FP16 / INT8 come from the graph
        T.plan_build(tmp_path / "m.onnx", "bf16", tmp_path / "b.plan", plugin=lib)


@pytest.fixture
def no_builder(monkeypatch):
    """Neither tensorrt nor tensorrt_rtx importable (a None entry in sys.modules makes import fail)."""
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)


def test_without_either_package_the_command_says_what_to_install(tmp_path, capsys, no_builder):
    path = _graph(tmp_path / "m.onnx", plugin=False)
    assert T.main(["--onnx", str(path), "--fp16", "--out", str(tmp_path / "m.plan")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: neither TensorRT nor TensorRT-RTX") and err.count("\n") == 1
    assert "pip install tensorrt-rtx-cu12" in err and "pip install tensorrt" in err and "--dry-run" in err
    assert T.main(["--onnx", str(path), "--fp16", "--target", "tensorrt", "--out", str(tmp_path / "m.plan")]) == 2
    assert "TensorRT's Python package is not importable" in capsys.readouterr().err
    assert T.main(["--onnx", str(path), "--fp16", "--out", str(tmp_path / "m.plan"), "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["precision"] == "fp16" and [io["dtype"] for io in dry["io"]] == ["float32", "int32", "float32"]
    assert T.main(["--onnx", str(path), "--int8", "--out", str(tmp_path / "m.plan"), "--dry-run"]) == 2
    assert "python -m calibration" in capsys.readouterr().err
    int8 = _graph(tmp_path / "q.onnx", "int8", plugin=False)  # its Q/DQ feeds a Conv: no rule warnings
    assert T.main(["--onnx", str(int8), "--int8", "--out", str(tmp_path / "q.plan"), "--dry-run"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert not (tmp_path / "m.plan").exists()


def test_target_options_are_checked_per_family(tmp_path):
    path = _graph(tmp_path / "m.onnx", plugin=False)
    with pytest.raises(InputError, match=r"--timing-cache.*TensorRT-RTX has no timing cache.*drop --timing-cache"):
        T.plan_build(path, "fp16", tmp_path / "m.plan", timing_cache=tmp_path / "c.bin", target="tensorrt-rtx")
    with pytest.raises(InputError, match=r"--compute-capability.*--target tensorrt-rtx"):
        T.plan_build(path, "fp16", tmp_path / "m.plan", target="tensorrt", compute_capabilities="8.6")
    with pytest.raises(InputError, match="--target"):
        T.plan_build(path, "fp16", tmp_path / "m.plan", target="tensorrt-llm")
    plan = T.plan_build(path, "fp16", tmp_path / "m.plan", target="tensorrt-rtx", compute_capabilities="sm_89, 8.6,120")
    assert plan.compute_capabilities == ["8.6", "8.9", "12.0"]
    assert plan.cli_args()[-2:] == ["--compute-capability", "8.6,8.9,12.0"]
    for bad in ("8", "x.y", "8.6;8.9"):
        with pytest.raises(InputError, match="--compute-capability"):
            T.targets.parse_compute_capabilities(bad)
    side = plan.sidecar("1.7.1.116", None)
    assert side["target"] == "tensorrt-rtx" and side["ahead_of_time"] and side["network_flags"] == []
    assert side["compute_capabilities"] == ["8.6", "8.9", "12.0"] and "8.6, 8.9, 12.0" in side["runs_on"]
    assert T.targets.check_version(T.targets.TENSORRT_RTX, "1.7.1.116") == 1
    with pytest.raises(InputError, match="TensorRT-RTX 1.x"):
        T.targets.check_version(T.targets.TENSORRT_RTX, "2.0.0")
    assert T.network_flags(10, "tensorrt") == ["STRONGLY_TYPED"] and T.network_flags(1, "tensorrt-rtx") == []


def test_bf16_and_fp8_io_are_refused_with_a_fix(tmp_path):
    for elem, name in ((TensorProto.BFLOAT16, "bfloat16"), (TensorProto.FLOAT8E4M3FN, "float8")):
        m = helper.make_model(helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=elem)], "g",
                                                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                                                [helper.make_tensor_value_info("y", elem, [1, 4])]),
                              opset_imports=[helper.make_opsetid("", 19)])
        onnx.save(m, tmp_path / "m.onnx")
        with pytest.raises(InputError, match=rf"--onnx.*I/O tensor .y. is {name}.*[Cc]ast inside the graph"):
            T.read_graph(tmp_path / "m.onnx")
    with pytest.raises(InputError, match="I/O tensor 'out'.*got bfloat16"):
        T.targets.dtype_name("BF16", "out")
    assert [T.targets.dtype_name(n) for n in ("FLOAT", "HALF", "INT32", "BOOL", "float32")] == \
        ["float32", "float16", "int32", "bool", "float32"]


def test_plan_and_sidecar_are_written_as_a_pair(tmp_path, monkeypatch):
    from runtime.backends.plan import read_sidecar

    out = tmp_path / "m.plan"
    T.write_plan_and_sidecar(out, b"old plan", {"plan_sha256": "old"})
    real_replace = T.os.replace
    calls = []

    def failing_replace(src, dst):  # the second rename (the plan's) fails
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(T.os, "replace", failing_replace)
    with pytest.raises(OSError):
        T.write_plan_and_sidecar(out, b"new plan", {"plan_sha256": "new"})
    monkeypatch.setattr(T.os, "replace", real_replace)
    assert calls == [T.sidecar_path(out), out]  # the sidecar first: a plan never stands without one
    assert out.read_bytes() == b"old plan" and read_sidecar(out).plan_sha256 == "new"  # the runtime refuses this pair
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.plan", "m.plan.json"]  # no temporary files left
    fresh = tmp_path / "fresh.plan"
    monkeypatch.setattr(T.os, "replace", lambda s, d: (_ for _ in ()).throw(OSError("no space")))
    with pytest.raises(OSError):
        T.write_plan_and_sidecar(fresh, b"plan", {})
    assert not fresh.exists() and not T.sidecar_path(fresh).exists()


class FakeConfig:
    """The timing-cache calls of IBuilderConfig: caches from another GPU / version are refused."""

    def __init__(self, foreign=b"foreign", saved=b"cache"):
        self.foreign, self.saved, self.set = foreign, saved, []

    def create_timing_cache(self, data):
        return None if data == b"garbage" else ("cache", bytes(data))

    def set_timing_cache(self, cache, ignore_mismatch):
        self.set.append(cache)
        return cache[1] != self.foreign

    def get_timing_cache(self):
        class C:
            def serialize(inner):
                return self.saved
        return None if self.saved is None else C()


def test_timing_cache_mismatch_unreadable_and_missing_are_said(tmp_path):
    path = tmp_path / "cache.bin"
    notes = []
    path.write_bytes(b"foreign")
    config = FakeConfig()
    T._use_timing_cache(config, path, notes)
    assert config.set == [("cache", b"foreign"), ("cache", b"")] and "another GPU or TensorRT version" in notes[0]
    path.write_bytes(b"garbage")
    T._use_timing_cache(FakeConfig(), path, notes)
    assert "unreadable" in notes[1]
    ok = FakeConfig()
    path.write_bytes(b"mine")
    T._use_timing_cache(ok, path, notes)
    assert ok.set == [("cache", b"mine")] and len(notes) == 2
    T._save_timing_cache(ok, path, notes)
    assert path.read_bytes() == b"cache" and len(notes) == 2
    T._save_timing_cache(FakeConfig(saved=None), path, notes)
    assert "no timing cache" in notes[2] and path.read_bytes() == b"cache"


@pytest.mark.skipif(not HAVE_TRT, reason=NO_TRT)
def test_builds_a_strongly_typed_fp16_engine(tmp_path):
    """On a machine with TensorRT and a GPU: a plain (plugin-free) FP16 graph builds and the sidecar is written."""
    path = _graph(tmp_path / "m.onnx", plugin=False)
    plan = T.plan_build(path, "fp16", tmp_path / "m.plan", timing_cache=tmp_path / "cache.bin", dynamic_batch="1:2:4")
    side = T.build_engine(plan, progress=False)
    assert plan.out.stat().st_size > 0 and (tmp_path / "cache.bin").is_file()
    assert side["precision"] == "fp16" and side["trt_version"].split(".")[0] in ("10", "11")
    assert json.loads(T.sidecar_path(plan.out).read_text())["io"]


def test_a_plugin_form_tensorrt_rtx_plan_is_marked_not_shown_to_run(tmp_path, capsys):
    from runtime.backends.plan import read_sidecar

    lib = tmp_path / T.PLUGIN_NAME
    lib.write_bytes(b"\x7fELF plugin")
    plugin_graph, portable_graph = _graph(tmp_path / "p.onnx"), _graph(tmp_path / "s.onnx", plugin=False)
    rtx = T.plan_build(plugin_graph, "fp16", tmp_path / "m.plan", plugin=lib, target="tensorrt-rtx")
    side = rtx.sidecar("1.7.1.116", None)
    assert "porting guide says plugins are not supported at run time" in side["not_shown_to_run"]
    assert "--attention portable" in side["not_shown_to_run"]
    T.sidecar_path(rtx.out).write_text(json.dumps(side))
    assert read_sidecar(rtx.out).not_shown_to_run == side["not_shown_to_run"]
    trt_plan = T.plan_build(plugin_graph, "fp16", tmp_path / "t.plan", plugin=lib, target="tensorrt")
    assert trt_plan.sidecar("11.1.0", {"name": "NVIDIA H100", "compute_capability": "9.0"})["not_shown_to_run"] is None
    assert T.plan_build(portable_graph, "fp16", tmp_path / "s.plan", target="tensorrt-rtx").sidecar(
        "1.7.1.116", None)["not_shown_to_run"] is None
    # the command says it once, at build time (here: --dry-run, which needs no TensorRT-RTX)
    assert T.main(["--onnx", str(plugin_graph), "--fp16", "--target", "tensorrt-rtx", "--plugin", str(lib),
                   "--out", str(tmp_path / "m.plan"), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("has not been shown to run") == 1
    assert json.loads(captured.out)["not_shown_to_run"] == side["not_shown_to_run"]


def test_a_tensorrt_rtx_build_of_a_plugin_graph_warns_before_building(tmp_path, monkeypatch, capsys):
    import types

    class Stop(Exception):
        pass

    def registry():
        raise Stop("the builder would start here")

    fake_rtx = types.SimpleNamespace(__version__="1.7.1.116", get_plugin_registry=registry)
    monkeypatch.setattr(T, "import_target", lambda name: (T.targets.TENSORRT_RTX, fake_rtx))
    monkeypatch.setattr(T.trt_rtx, "unversioned_on_path", lambda: True)  # build in this process
    monkeypatch.setattr(T.trt_rtx, "expose_symbols", lambda: None)
    monkeypatch.setattr(T, "process_logger", lambda trt, verbose: None)
    lib = tmp_path / T.PLUGIN_NAME
    lib.write_bytes(b"\x7fELF plugin")
    plan = T.plan_build(_graph(tmp_path / "p.onnx"), "fp16", tmp_path / "m.plan", plugin=lib, target="tensorrt-rtx")
    with pytest.raises(Stop):
        T.build_engine(plan, progress=False)
    assert "warning: a plugin-form plan for TensorRT-RTX has not been shown to run" in capsys.readouterr().err
