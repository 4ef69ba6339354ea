"""``python -m export.trt``: a strongly typed TensorRT engine (TensorRT 11, or 10) from an FP16 or INT8 graph.

    python -m export.trt --onnx out/fp16/model.onnx --fp16 --out model.plan [--plugin LIB]
        [--timing-cache PATH] [--dynamic-batch MIN:OPT:MAX] [--workspace MiB] [--dry-run]

TensorRT 11 builds only strongly typed networks (TensorRT 10: ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``,
which 11 keeps as an ignored flag): there are no FP16 / INT8 builder flags and no calibrator, the precision
comes from the graph. So ``--fp16`` needs an FP16 graph (``python -m export.onnx --precision fp16``) and
``--int8`` a Q/DQ graph (``python -m calibration`` or ``python -m calibration.report``); ``--fp32`` takes
an fp32 graph as is. Each is checked before TensorRT is touched.

Writes the plan and ``<out>.json`` beside it (the sidecar ``runtime.Engine`` checks before it loads a plan):
TensorRT version, GPU name and compute capability, precision, I/O names / shapes / dtypes and profiles,
plugin library path and SHA-256, network and builder flags, the graph's export metadata, build time.

Everything before the builder call (graph inspection, precision check, profiles from the dynamic-batch
spec, flags, the sidecar) is a plain function tested without TensorRT. Without TensorRT the command says
what to install and exits 2; ``--dry-run`` prints the build plan without it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from fgsa.errors import FgsaError, InputError

PRECISIONS = ("fp16", "int8", "fp32")
PLUGIN_NAME = "libfgsa_trt_plugin.so"
PLUGIN_ENV = "FGSA_PLUGIN_LIBRARY"
REPO_ROOT = Path(__file__).resolve().parents[1]
TRT_MISSING = (
    "TensorRT's Python package is not importable here. Install TensorRT 10.11+ or 11 with its libraries on a "
    "machine with an NVIDIA GPU: `pip install tensorrt` (pulls tensorrt-cu12/13-libs and -bindings; it needs "
    "access to NVIDIA's package index), or the TensorRT tarball / apt packages plus "
    "`pip install <TensorRT>/python/tensorrt-*.whl`; then `python -c 'import tensorrt'` must work. "
    "(The CPU-only machines this project is developed on cannot install it; use --dry-run to check the build "
    "plan there.)")
HOW_TO = {
    "fp16": "produce one with `python -m export.onnx --ckpt CKPT --precision fp16 --out out/fp16`",
    "int8": ("produce one with `python -m calibration --onnx out/fp32/model.onnx --data DIR --out out/int8/model.onnx` "
             "(or `python -m calibration.report`)"),
    "fp32": "produce one with `python -m export.onnx --ckpt CKPT`",
}


@dataclass
class TensorInfo:
    name: str
    shape: list  # ints, or strings for dynamic axes
    dtype: str   # numpy dtype name

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype}


@dataclass
class GraphInfo:
    """What the builder needs to know about an ONNX graph, read without TensorRT."""

    path: Path
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    precision: str                      # detected: "int8" (Q/DQ), "fp16" (float16 weights), "fp32"
    float16_share: float
    qdq_nodes: int
    plugin_ops: list[str]               # our plugin op types in the graph
    builtin_plugin_ops: list[str]       # TensorRT's own plugins (MultiscaleDeformableAttnPlugin_TRT)
    metadata: dict = field(default_factory=dict)


def _dtype(elem_type: int) -> str:
    return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type)) if elem_type else "unknown"


def _tensor(v: onnx.ValueInfoProto) -> TensorInfo:
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in v.type.tensor_type.shape.dim]
    return TensorInfo(v.name, dims, _dtype(v.type.tensor_type.elem_type))


def read_graph(path: str | Path) -> GraphInfo:
    """Inspect an exported graph: I/O, detected precision, plugins used, export metadata."""
    from calibration.qdq import QDQ_OPS
    from export import metadata
    from export.forms import TRT_MSDA_OP
    from export.precision import float16_share
    from kernels.spec import load_plugin_spec

    path = Path(path)
    if not path.is_file():
        raise InputError("--onnx", "an ONNX file exported by this toolkit", f"{path} (not found)", HOW_TO["fp16"])
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others
        raise InputError("--onnx", "a readable ONNX file", f"{path} ({type(exc).__name__}: {exc})") from None
    inits = {t.name for t in model.graph.initializer}
    ours = set(load_plugin_spec()["ops"])
    ops = [n.op_type for n in model.graph.node]
    qdq = sum(op in QDQ_OPS for op in ops)
    share = float16_share(model)
    precision = "int8" if qdq else "fp16" if share > 0.5 else "fp32"
    return GraphInfo(path, [_tensor(v) for v in model.graph.input if v.name not in inits],
                     [_tensor(v) for v in model.graph.output], precision, share, qdq,
                     sorted(set(op for op in ops if op in ours)), sorted(set(op for op in ops if op == TRT_MSDA_OP)),
                     metadata.read(model))


def check_precision(info: GraphInfo, precision: str) -> None:
    """The graph must already carry the requested precision: strongly typed builds take it from the graph."""
    if precision not in PRECISIONS:
        raise InputError("precision", f"one of --{', --'.join(PRECISIONS)}", precision)
    if info.precision == precision:
        return
    what = {"fp16": "an FP16 graph (float16 weights and tensors with FP32 islands)",
            "int8": "an INT8 graph (QuantizeLinear / DequantizeLinear nodes)", "fp32": "an fp32 graph"}[precision]
    found = {"fp16": f"FP16 ({100 * info.float16_share:.0f}% of the weights float16)",
             "int8": f"INT8 ({info.qdq_nodes} Q/DQ nodes)",
             "fp32": f"fp32 ({100 * info.float16_share:.0f}% float16 weights, no Q/DQ)"}[info.precision]
    raise InputError(f"--{precision}", f"{what}: TensorRT 11 builds only strongly typed networks and takes the "
                     "precision from the graph's types, not from a builder flag", f"{info.path}: {found}",
                     HOW_TO[precision])


def parse_dynamic_batch(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        lo, opt, hi = (int(v) for v in text.split(":"))
    except ValueError:
        raise InputError("--dynamic-batch", "MIN:OPT:MAX integers", repr(text)) from None
    if not 1 <= lo <= opt <= hi:
        raise InputError("--dynamic-batch", "1 <= MIN <= OPT <= MAX", text)
    return lo, opt, hi


def profile_shapes(info: GraphInfo, dynamic_batch: tuple[int, int, int] | None) -> dict[str, tuple[list, list, list]]:
    """(min, opt, max) shape of every input with a dynamic axis, for one optimization profile.

    The batch range is ``dynamic_batch`` or, by default, the range the graph was exported with (its metadata);
    a static graph needs no profile, and a dynamic-batch request on a static graph is an error.
    """
    dynamic = [t for t in info.inputs if any(isinstance(d, str) for d in t.shape)]
    if not dynamic:
        if dynamic_batch is not None:
            raise InputError("--dynamic-batch", "a graph exported with a dynamic batch axis",
                             f"{info.path} has static input shapes",
                             "re-export with `python -m export.onnx ... --dynamic-batch MIN:OPT:MAX`")
        return {}
    if dynamic_batch is None:
        batch = info.metadata.get("batch", {})
        if not batch.get("dynamic"):
            raise InputError("--dynamic-batch", "MIN:OPT:MAX for a graph with a dynamic batch axis",
                             "no range given and none in the graph's metadata")
        dynamic_batch = (int(batch["min"]), int(batch["opt"]), int(batch["max"]))
    shapes = {}
    for t in dynamic:
        unknown = [d for d in t.shape if isinstance(d, str) and d != "batch"]
        if unknown:
            raise InputError("--onnx", "inputs whose only dynamic axis is 'batch'", f"{t.name} {t.shape}")
        shapes[t.name] = tuple([b if d == "batch" else d for d in t.shape] for b in dynamic_batch)
    return shapes


def network_flags(trt_major: int) -> list[str]:
    """STRONGLY_TYPED on TensorRT 10; TensorRT 11 networks are always strongly typed (the flag is ignored)."""
    return ["STRONGLY_TYPED"] if trt_major < 11 else []


def builder_flags(trt_major: int, precision: str) -> list[str]:
    """No precision flags: FP16 / INT8 come from the graph (setting them on a strongly typed network is an
    error in TensorRT 10, and they no longer exist in 11). The list is kept for the sidecar and options."""
    if precision not in PRECISIONS:
        raise InputError("precision", f"one of {PRECISIONS}", precision)
    return []


def find_plugin_library(explicit: str | Path | None, info: GraphInfo) -> Path | None:
    """Our plugin library: ``--plugin`` > ``$FGSA_PLUGIN_LIBRARY`` > a build under ``build/``; None when the
    graph uses no plugin op of ours and none was given."""
    fix = ("build it with `make kernels` (CMake with the TensorRT headers and libnvinfer, see kernels/README.md) "
           f"and pass --plugin PATH or set {PLUGIN_ENV}")
    for candidate, what in ((explicit, "--plugin"), (os.environ.get(PLUGIN_ENV), PLUGIN_ENV)):
        if candidate:
            p = Path(candidate)
            if not p.is_file():
                raise InputError(what, f"the plugin library ({PLUGIN_NAME})", f"{p} (not found)", fix)
            return p.resolve()
    if not info.plugin_ops:
        return None
    found = sorted((REPO_ROOT / "build").glob(f"**/{PLUGIN_NAME}")) if (REPO_ROOT / "build").is_dir() else []
    if not found:
        raise InputError("--plugin", f"{PLUGIN_NAME} for the graph's plugin ops {info.plugin_ops}",
                         f"none given and none under {REPO_ROOT / 'build'}", fix)
    return found[0].resolve()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class BuildPlan:
    """Everything decided before TensorRT is called."""

    info: GraphInfo
    precision: str
    out: Path
    plugin: Path | None
    profiles: dict
    timing_cache: Path | None
    workspace_mib: int | None
    warnings: list[str] = field(default_factory=list)

    def sidecar(self, trt_version: str, gpu: dict | None, build_seconds: float | None = None,
                engine_io: list[dict] | None = None) -> dict:
        major = int(str(trt_version).split(".")[0]) if trt_version and trt_version[0].isdigit() else 11
        io = engine_io or ([{**t.to_dict(), "mode": "input", **({"profile": dict(zip(("min", "opt", "max"),
                                                                                        self.profiles[t.name]))}
                                                                 if t.name in self.profiles else {})}
                            for t in self.info.inputs] + [{**t.to_dict(), "mode": "output"} for t in self.info.outputs])
        return {
            "format": "fgsa-trt-plan", "version": 1,
            "plan": self.out.name, "onnx": str(self.info.path), "onnx_sha256": file_sha256(self.info.path),
            "trt_version": trt_version, "gpu": gpu, "precision": self.precision, "strongly_typed": True,
            "network_flags": network_flags(major), "builder_flags": builder_flags(major, self.precision),
            "workspace_mib": self.workspace_mib, "timing_cache": str(self.timing_cache) if self.timing_cache else None,
            "io": io, "plugin_library": str(self.plugin) if self.plugin else None,
            "plugin_sha256": file_sha256(self.plugin) if self.plugin else None,
            "plugin_ops": self.info.plugin_ops + self.info.builtin_plugin_ops,
            "version_compatible": False, "hardware_compatible": False,
            "metadata": self.info.metadata, "graph_warnings": self.warnings,
            "build_seconds": None if build_seconds is None else round(build_seconds, 1),
        }


def plan_build(onnx_path: str | Path, precision: str, out: str | Path, plugin: str | Path | None = None,
               timing_cache: str | Path | None = None, dynamic_batch: str | None = None,
               workspace_mib: int | None = None, resolve_plugin: bool = True) -> BuildPlan:
    """Check the request and decide the build (no TensorRT). ``resolve_plugin=False`` leaves ``plan.plugin``
    unset (see :func:`find_plugin_library`), so a missing TensorRT can be reported before a missing plugin."""
    info = read_graph(onnx_path)
    check_precision(info, precision)
    if workspace_mib is not None and workspace_mib < 1:
        raise InputError("--workspace", "a workspace size in MiB >= 1", workspace_mib)
    out = Path(out)
    if out.suffix not in (".plan", ".engine"):
        raise InputError("--out", "a .plan (or .engine) file path", str(out))
    return BuildPlan(info, precision, out, find_plugin_library(plugin, info) if resolve_plugin else None,
                     profile_shapes(info, parse_dynamic_batch(dynamic_batch)),
                     Path(timing_cache) if timing_cache else None, workspace_mib, graph_warnings(info, precision))


def graph_warnings(info: GraphInfo, precision: str) -> list[str]:
    """What this toolkit's own checks say about the graph (not fatal: a graph from another tool may differ on
    purpose): the FP32 islands of an FP16 graph, TensorRT's Q/DQ rules for an INT8 graph."""
    if precision == "fp32":
        return []
    model = onnx.load(str(info.path))
    if precision == "fp16":
        from export.precision import PrecisionPolicy, island_violations

        return [f"FP32 island: {v}" for v in island_violations(model, PrecisionPolicy())]
    from calibration.qdq import qdq_violations

    return [f"Q/DQ rule: {v}" for v in qdq_violations(model)]


def sidecar_path(plan: Path) -> Path:
    return plan.with_name(plan.name + ".json")


# ---- the TensorRT part ------------------------------------------------------------------------------

def import_tensorrt():
    try:
        import tensorrt as trt
    except Exception as exc:  # ImportError, or OSError when the bindings miss their libraries
        raise ModuleNotFoundError(f"{TRT_MISSING} ({type(exc).__name__}: {exc})") from None
    return trt


def gpu_info() -> dict | None:
    """Name and compute capability of device 0 (cuda-python, else torch, else nvidia-smi); None if unknown."""
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            cudart = None
    if cudart is not None:
        err, prop = cudart.cudaGetDeviceProperties(0)
        if int(err) == 0:
            name = prop.name.decode() if isinstance(prop.name, bytes) else str(prop.name)
            return {"name": name.strip("\x00 "), "compute_capability": f"{prop.major}.{prop.minor}"}
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return {"name": torch.cuda.get_device_name(0), "compute_capability": f"{major}.{minor}"}
    except ImportError:
        pass
    import subprocess

    try:
        line = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader", "-i", "0"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
        name, cc = (s.strip() for s in line.split(","))
        return {"name": name, "compute_capability": cc}
    except Exception:
        return None


def build_engine(plan: BuildPlan, verbose: bool = False, progress: bool = True) -> dict:
    """Parse, build and write the plan and its sidecar; returns the sidecar dict."""
    trt = import_tensorrt()
    major = int(trt.__version__.split(".")[0])
    if major < 10:
        raise InputError("TensorRT", "TensorRT 10 or 11 (strongly typed networks)", trt.__version__)
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    if hasattr(trt, "init_libnvinfer_plugins"):
        trt.init_libnvinfer_plugins(logger, "")  # TensorRT's own plugins (MultiscaleDeformableAttnPlugin_TRT)
    registry = trt.get_plugin_registry()
    handle = registry.load_library(str(plan.plugin)) if plan.plugin else None
    if plan.plugin and handle is None:
        raise InputError("--plugin", "a plugin library TensorRT can load", str(plan.plugin),
                         "rebuild it against this TensorRT version (make kernels)")
    builder = trt.Builder(logger)
    flags = 0
    for name in network_flags(major):
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(plan.info.path)):
        errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InputError("--onnx", "a graph TensorRT's ONNX parser accepts", f"{plan.info.path}:\n{errors}",
                         "run `python -m export.onnx` (its TensorRT lint names unsupported ops)")
    config = builder.create_builder_config()
    if plan.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mib << 20)
    if plan.profiles:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in plan.profiles.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    cache_bytes = plan.timing_cache.read_bytes() if plan.timing_cache and plan.timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    monitor = _progress_monitor(trt) if progress and hasattr(trt, "IProgressMonitor") else None
    if monitor is not None:  # kept referenced here: it must outlive the build
        config.progress_monitor = monitor
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if serialized is None:
        raise InputError("build", "a TensorRT engine", "build_serialized_network returned None",
                         "rerun with --verbose; check the plugin library and the graph's lint in export.json")
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    plan.out.write_bytes(bytes(serialized))
    if plan.timing_cache:
        plan.timing_cache.parent.mkdir(parents=True, exist_ok=True)
        plan.timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    engine = trt.Runtime(logger).deserialize_cuda_engine(bytes(serialized))
    io = None
    if engine is not None:
        io = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            io.append({"name": name, "mode": "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output",
                       "shape": list(engine.get_tensor_shape(name)), "dtype": str(engine.get_tensor_dtype(name)).split(".")[-1].lower()})
    side = plan.sidecar(trt.__version__, gpu_info(), seconds, io)
    sidecar_path(plan.out).write_text(json.dumps(side, indent=1))
    return side


def _progress_monitor(trt):
    class Progress(trt.IProgressMonitor):
        """One line per top-level phase and its steps on stderr (TensorRT calls this from its threads)."""

        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.t0 = time.perf_counter()

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:
                print(f"[trt {time.perf_counter() - self.t0:6.1f}s] {phase_name} ({num_steps} steps)", file=sys.stderr,
                      flush=True)

        def step_complete(self, phase_name, step):
            return True  # never cancel

        def phase_finish(self, phase_name):
            pass

    return Progress()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export.trt", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", type=Path, required=True, help="graph from export.onnx / calibration")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--fp16", dest="precision", action="store_const", const="fp16", help="FP16 graph")
    g.add_argument("--int8", dest="precision", action="store_const", const="int8", help="Q/DQ INT8 graph")
    g.add_argument("--fp32", dest="precision", action="store_const", const="fp32", help="fp32 graph")
    p.add_argument("--plugin", type=Path, help=f"{PLUGIN_NAME} (default: ${PLUGIN_ENV}, else build/**/)")
    p.add_argument("--timing-cache", type=Path, help="read and update this TensorRT timing cache")
    p.add_argument("--dynamic-batch", metavar="MIN:OPT:MAX",
                   help="batch range of the optimization profile (default: the graph's exported range)")
    p.add_argument("--workspace", type=int, metavar="MiB", help="builder workspace limit")
    p.add_argument("--out", type=Path, required=True, help="engine file (.plan); the sidecar is <out>.json")
    p.add_argument("--dry-run", action="store_true", help="check and print the build plan; no TensorRT needed")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # the graph first (fixable anywhere), then TensorRT, then the plugin library (built against TensorRT)
        plan = plan_build(args.onnx, args.precision, args.out, args.plugin, args.timing_cache, args.dynamic_batch,
                          args.workspace, resolve_plugin=False)
        if not args.dry_run:
            import_tensorrt()
        plan.plugin = find_plugin_library(args.plugin, plan.info)
        for w in plan.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if args.dry_run:
            print(json.dumps(plan.sidecar("<TensorRT version>", None), indent=1))
            return 0
        side = build_engine(plan, args.verbose)
    except ModuleNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FgsaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {plan.out} ({plan.out.stat().st_size / 2**20:.1f} MiB, {side['precision']}, TensorRT "
          f"{side['trt_version']}, {side['build_seconds']} s) and {sidecar_path(plan.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
