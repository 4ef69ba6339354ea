"""``python -m export.trt``: a strongly typed TensorRT (11 or 10) or TensorRT-RTX (1.x) engine from an FP16,
INT8 or fp32 graph.

    python -m export.trt --onnx out/fp16/model.onnx --fp16 --out model.plan [--target tensorrt|tensorrt-rtx]
        [--plugin LIB] [--timing-cache PATH] [--compute-capability 8.6,8.9] [--dynamic-batch MIN:OPT:MAX]
        [--workspace MiB] [--dry-run]

``--target`` (default: TensorRT when ``tensorrt`` imports, else TensorRT-RTX when ``tensorrt_rtx`` imports):
a TensorRT plan runs on the GPU model it was built on; a TensorRT-RTX plan is built ahead of time on any
machine (no GPU needed) and runs on RTX-class GPUs of its target compute capabilities (``--compute-capability``,
default 8.0 and later), compiled for the GPU when it is first loaded.

TensorRT 11 builds only strongly typed networks (TensorRT 10: ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``,
which 11 keeps as an ignored flag): there are no FP16 / INT8 builder flags and no calibrator, the precision
comes from the graph. So ``--fp16`` needs an FP16 graph (``python -m export.onnx --precision fp16``) and
``--int8`` a Q/DQ graph (``python -m calibration`` or ``python -m calibration.report``); ``--fp32`` takes
an fp32 graph as is. Each is checked before TensorRT is touched.

Writes the plan and ``<out>.json`` beside it (the sidecar ``runtime.Engine`` checks before it loads a plan),
atomically as a pair (a plan never exists without its sidecar; the sidecar has the plan's SHA-256): target,
its version, GPU name and compute capability (TensorRT-RTX: the target compute capabilities), precision, I/O names / shapes / dtypes and profiles,
plugin library path and SHA-256, network and builder flags, the graph's export metadata, build time.

Everything before the builder call (graph inspection, precision check, profiles from the dynamic-batch
spec, flags, the sidecar) is a plain function tested without TensorRT. With neither package the command says
what to install and exits 2; ``--dry-run`` prints the build plan without either.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from fgsa import plan_sidecar
from fgsa import plan_targets as targets
from fgsa.cli import command, warn
from fgsa.errors import FgsaError, InputError
from fgsa.plan_sidecar import PLUGIN_ENV, PLUGIN_NAME, builds_under, file_sha256, sidecar_path  # noqa: F401
from export import metadata, trt_rtx
from export.precision_rules import QDQ_OPS, PrecisionPolicy, float16_share, island_violations, qdq_violations
from kernels.spec import TRT_MSDA_OP, load_plugin_spec

PRECISIONS = ("fp16", "int8", "fp32")
REPO_ROOT = Path(__file__).resolve().parents[1]
TRT_MISSING = (
    "TensorRT's Python package is not importable here. Install TensorRT 10.11+ or 11 with its libraries on a "
    "machine with an NVIDIA GPU: `pip install tensorrt` (pulls tensorrt-cu12/13-libs and -bindings; it needs "
    "access to NVIDIA's package index), or the TensorRT tarball / apt packages plus "
    "`pip install <TensorRT>/python/tensorrt-*.whl`; then `python -c 'import tensorrt'` must work. "
    "(The CPU-only machines this project is developed on cannot install it; use --dry-run to check the build "
    "plan there.)")
RTX_MISSING = (
    "TensorRT-RTX's Python package is not importable here. Install it with `pip install tensorrt-rtx-cu12` "
    "(or -cu13 to match the CUDA driver of the machines the plan will run on; `pip install -e .[rtx]`); it "
    "builds plans ahead of time without a GPU")
NEITHER_MISSING = ("neither TensorRT nor TensorRT-RTX is importable here. For plans that run on RTX-class GPUs "
                   "(compute capability 8.0+) and build on any machine: `pip install tensorrt-rtx-cu12` "
                   "(`pip install -e .[rtx]`). For TensorRT plans (built on the GPU they run on): "
                   "`pip install tensorrt` on a machine with an NVIDIA GPU. Use --dry-run to check the build "
                   "plan without either")
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


def _dtype(elem_type: int, name: str) -> str:
    """NumPy name of an ONNX element type; InputError for BF16 / FP8 / FP4 / INT4 graph I/O (NumPy cannot hold
    them, so neither the runtime nor a caller could feed or read them)."""
    if not elem_type:
        return "unknown"
    return targets.dtype_name(str(onnx.helper.tensor_dtype_to_np_dtype(elem_type)), name)


def _tensor(v: onnx.ValueInfoProto) -> TensorInfo:
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in v.type.tensor_type.shape.dim]
    return TensorInfo(v.name, dims, _dtype(v.type.tensor_type.elem_type, v.name))


def read_graph(path: str | Path) -> GraphInfo:
    """Inspect an exported graph: I/O, detected precision, plugins used, export metadata."""
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
    try:
        inputs = [_tensor(v) for v in model.graph.input if v.name not in inits]
        outputs = [_tensor(v) for v in model.graph.output]
    except InputError as exc:
        raise InputError("--onnx", f"graph I/O with NumPy types ({exc.expected})", f"{path}: {exc.field} is {exc.got}",
                         exc.fix) from None
    return GraphInfo(path, inputs, outputs, precision, share, qdq,
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


def network_flags(trt_major: int, target: str = "tensorrt") -> list[str]:
    """STRONGLY_TYPED on TensorRT 10; TensorRT 11 and TensorRT-RTX networks are always strongly typed."""
    return targets.network_flags(targets.get(target), trt_major)


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
    found = builds_under(REPO_ROOT / "build")
    if not found:
        raise InputError("--plugin", f"{PLUGIN_NAME} for the graph's plugin ops {info.plugin_ops}",
                         f"none given and none under {REPO_ROOT / 'build'}", fix)
    return found[0].resolve()


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
    target: str | None = None                       # "tensorrt" / "tensorrt-rtx"; None: decided by what imports
    compute_capabilities: list[str] | None = None   # TensorRT-RTX targets; None: its default set

    def set_target(self, name: str) -> None:
        """Fix the target and check the options that only one family has."""
        target = targets.get(name)
        if self.timing_cache and not target.timing_cache:
            raise InputError("--timing-cache", "a TensorRT build (--target tensorrt)",
                             f"--target {name}: {target.title} has no timing cache (it compiles for the GPU when the "
                             "plan is first loaded and keeps that in a runtime cache beside the plan)",
                             "drop --timing-cache")
        if self.compute_capabilities and target is not targets.TENSORRT_RTX:
            raise InputError("--compute-capability", "--target tensorrt-rtx (TensorRT-RTX plans are built for a list "
                             "of compute capabilities)", f"--target {name}: a TensorRT plan is built for the GPU "
                             "of the build machine", "drop --compute-capability, or build with --target tensorrt-rtx")
        self.target = name

    def not_shown_to_run(self) -> str | None:
        """Why the plan this builds has not been shown to run (a plugin-form graph for TensorRT-RTX), or None."""
        return plan_sidecar.not_shown_to_run(self.target or "", self.info.plugin_ops + self.info.builtin_plugin_ops)

    def io(self) -> list[dict]:
        """The plan's I/O as the graph declares it (names, shapes, NumPy dtype names, input profiles)."""
        return ([{**t.to_dict(), "mode": "input",
                  **({"profile": dict(zip(("min", "opt", "max"), self.profiles[t.name]))} if t.name in self.profiles
                     else {})} for t in self.info.inputs]
                + [{**t.to_dict(), "mode": "output"} for t in self.info.outputs])

    def dynamic_batch(self) -> str | None:
        """The profiles' batch range as ``MIN:OPT:MAX`` (the CLI form), None for a static graph."""
        if not self.profiles:
            return None
        lo, opt, hi = next(iter(self.profiles.values()))
        return f"{lo[0]}:{opt[0]}:{hi[0]}"

    def sidecar(self, trt_version: str, gpu: dict | None, build_seconds: float | None = None,
                engine_io: list[dict] | None = None, plan_sha256: str | None = None,
                build_warnings: list[str] | None = None) -> dict:
        target = targets.TARGETS.get(self.target or "tensorrt")
        major = targets.major_version(trt_version) or max(target.majors)
        rtx = target is targets.TENSORRT_RTX
        return plan_sidecar.make(
            plan_name=self.out.name, plan_sha256=plan_sha256, onnx=self.info.path,
            target=self.target or "<tensorrt or tensorrt-rtx: the first that imports>",
            trt_version=trt_version, gpu=gpu,
            compute_capabilities=self.compute_capabilities if rtx else (
                [gpu["compute_capability"]] if gpu and gpu.get("compute_capability") else None),
            ahead_of_time=rtx, runs_on=targets.runs_on(target, self.compute_capabilities, gpu),
            precision=self.precision, network_flags=targets.network_flags(target, major),
            builder_flags=builder_flags(major, self.precision), workspace_mib=self.workspace_mib,
            timing_cache=self.timing_cache, io=engine_io or self.io(), plugin=self.plugin,
            plugin_ops=self.info.plugin_ops + self.info.builtin_plugin_ops, metadata=self.info.metadata,
            graph_warnings=self.warnings, build_warnings=build_warnings or [], build_seconds=build_seconds)

    def cli_args(self, verbose: bool = False) -> list[str]:
        """This plan as ``python -m export.trt`` arguments (for a build in a child process)."""
        def absolute(p):  # the child runs in the repository root
            return None if p is None else Path(p).resolve()

        args = ["--onnx", str(absolute(self.info.path)), f"--{self.precision}", "--out", str(absolute(self.out))]
        for flag, value in (("--target", self.target), ("--plugin", absolute(self.plugin)),
                            ("--timing-cache", absolute(self.timing_cache)),
                            ("--dynamic-batch", self.dynamic_batch()), ("--workspace", self.workspace_mib),
                            ("--compute-capability", ",".join(self.compute_capabilities or []) or None)):
            if value is not None:
                args += [flag, str(value)]
        return args + (["--verbose"] if verbose else [])


def plan_build(onnx_path: str | Path, precision: str, out: str | Path, plugin: str | Path | None = None,
               timing_cache: str | Path | None = None, dynamic_batch: str | None = None,
               workspace_mib: int | None = None, resolve_plugin: bool = True, target: str | None = None,
               compute_capabilities: str | None = None) -> BuildPlan:
    """Check the request and decide the build (no TensorRT). ``resolve_plugin=False`` leaves ``plan.plugin``
    unset (see :func:`find_plugin_library`), so a missing TensorRT can be reported before a missing plugin.
    ``target=None`` leaves the family to :func:`import_target` (whatever imports)."""
    info = read_graph(onnx_path)
    check_precision(info, precision)
    if workspace_mib is not None and workspace_mib < 1:
        raise InputError("--workspace", "a workspace size in MiB >= 1", workspace_mib)
    out = Path(out)
    if out.suffix not in (".plan", ".engine"):
        raise InputError("--out", "a .plan (or .engine) file path", str(out))
    plan = BuildPlan(info, precision, out, find_plugin_library(plugin, info) if resolve_plugin else None,
                     profile_shapes(info, parse_dynamic_batch(dynamic_batch)),
                     Path(timing_cache) if timing_cache else None, workspace_mib, graph_warnings(info, precision),
                     compute_capabilities=targets.parse_compute_capabilities(compute_capabilities))
    if target is not None:
        plan.set_target(target)
    return plan


def graph_warnings(info: GraphInfo, precision: str) -> list[str]:
    """What this toolkit's own checks say about the graph (not fatal: a graph from another tool may differ on
    purpose): the FP32 islands of an FP16 graph, TensorRT's Q/DQ rules for an INT8 graph."""
    if precision == "fp32":
        return []
    model = onnx.load(str(info.path))
    if precision == "fp16":
        return [f"FP32 island: {v}" for v in island_violations(model, PrecisionPolicy())]
    return [f"Q/DQ rule: {v}" for v in qdq_violations(model)]


write_plan_and_sidecar = plan_sidecar.write  # the pair, atomically (fgsa.plan_sidecar.write)


# ---- the TensorRT part ------------------------------------------------------------------------------

def import_target(name: str | None = None):
    """``(Target, module)`` for ``name``, or the first of TensorRT, TensorRT-RTX that imports when None;
    ModuleNotFoundError saying what to install otherwise."""
    order = [targets.get(name)] if name else [targets.TENSORRT, targets.TENSORRT_RTX]
    failures = []
    for target in order:
        try:
            return target, importlib.import_module(target.module)
        except Exception as exc:  # ImportError, or OSError when the bindings miss their libraries
            failures.append(f"{target.module}: {type(exc).__name__}: {exc}")
    message = {"tensorrt": TRT_MISSING, "tensorrt-rtx": RTX_MISSING}.get(name, NEITHER_MISSING)
    raise ModuleNotFoundError(f"{message} ({'; '.join(failures)})")


def import_tensorrt():
    return import_target("tensorrt")[1]


_LOGGERS: dict = {}


def process_logger(trt, verbose: bool = False):
    """One logger per module and level for the whole process, writing to stderr: the plugin registry keeps
    the logger ``init_libnvinfer_plugins`` was given and calls it after the build has returned, so it must
    never be freed."""
    key = (trt.__name__, verbose)
    if key not in _LOGGERS:
        level = trt.Logger.VERBOSE if verbose else trt.Logger.WARNING
        if hasattr(trt, "ILogger"):
            class StderrLogger(trt.ILogger):
                def __init__(self):
                    trt.ILogger.__init__(self)
                    self.min_severity = level

                def log(self, severity, msg):
                    if severity <= level:
                        print(f"[{trt.__name__}] {str(severity).split('.')[-1]}: {msg}", file=sys.stderr, flush=True)

            _LOGGERS[key] = StderrLogger()
        else:
            _LOGGERS[key] = trt.Logger(level)
    return _LOGGERS[key]


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
            return plan_sidecar.GpuInfo(name.strip("\x00 "), f"{prop.major}.{prop.minor}").to_dict()
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return plan_sidecar.GpuInfo(torch.cuda.get_device_name(0), f"{major}.{minor}").to_dict()
    except ImportError:
        pass
    try:
        line = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader", "-i", "0"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
        name, cc = (s.strip() for s in line.split(","))
        return plan_sidecar.GpuInfo(name, cc).to_dict()
    except Exception:
        return None




def build_engine(plan: BuildPlan, verbose: bool = False, progress: bool = True) -> dict:
    """Parse, build and write the plan and its sidecar; returns the sidecar dict.

    Never deserializes the plan: a TensorRT-RTX build has no GPU to do it with, and the I/O recorded comes
    from the network the plan was built from (names, NumPy dtype names, the profile the builder accepted)."""
    target, trt = import_target(plan.target)
    plan.set_target(target.name)
    major = targets.check_version(target, trt.__version__)
    if target is targets.TENSORRT_RTX and plan.plugin and not trt_rtx.unversioned_on_path():
        return _build_in_child(plan, verbose)  # the child says what follows
    doubt = plan.not_shown_to_run()
    if doubt:
        warn(doubt)  # before the build: it can take minutes, and the plan it writes may not run
    notes: list[str] = []
    logger = process_logger(trt, verbose)
    if hasattr(trt, "init_libnvinfer_plugins"):
        trt.init_libnvinfer_plugins(logger, "")  # TensorRT's own plugins (MultiscaleDeformableAttnPlugin_TRT)
    if target is targets.TENSORRT_RTX and plan.plugin:
        trt_rtx.expose_symbols()
    registry = trt.get_plugin_registry()
    handle = registry.load_library(str(plan.plugin)) if plan.plugin else None
    if plan.plugin and handle is None and not _creators_registered(registry, plan.info.plugin_ops):
        raise InputError("--plugin", f"a plugin library {target.title} can load", str(plan.plugin),
                         f"rebuild it against {target.title} {trt.__version__}'s headers (make kernels)")
    builder = trt.Builder(logger)
    flags = 0
    for name in targets.network_flags(target, major):
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(plan.info.path)):
        errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InputError("--onnx", f"a graph {target.title}'s ONNX parser accepts", f"{plan.info.path}:\n{errors}",
                         "run `python -m export.onnx` (its TensorRT lint names unsupported ops)")
    config = builder.create_builder_config()
    if plan.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mib << 20)
    accepted = {}
    if plan.profiles:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in plan.profiles.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
        accepted = {name: [list(s) for s in profile.get_shape(name)] for name in plan.profiles}
    io = network_io(network, plan, accepted)
    if target.timing_cache and plan.timing_cache:
        _use_timing_cache(config, plan.timing_cache, notes)
    if target is targets.TENSORRT_RTX:
        _set_compute_capabilities(trt, config, plan.compute_capabilities)
    monitor = _progress_monitor(trt) if progress and hasattr(trt, "IProgressMonitor") else None
    if monitor is not None:  # kept referenced here: it must outlive the build
        config.progress_monitor = monitor
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if serialized is None:
        raise InputError("build", f"a {target.title} engine", "build_serialized_network returned None",
                         "rerun with --verbose; check the plugin library and the graph's lint in export.json")
    data = bytes(serialized)
    gpu = gpu_info() if target.needs_gpu_to_build else None
    side = plan.sidecar(trt.__version__, gpu, seconds, io, hashlib.sha256(data).hexdigest(), notes)
    write_plan_and_sidecar(plan.out, data, side)
    if target.timing_cache and plan.timing_cache:  # after the pair: a failure here costs only the cache
        _save_timing_cache(config, plan.timing_cache, notes)
    for note in notes:
        warn(note)
    return side


def _creators_registered(registry, ops: list[str]) -> bool:
    """True when the registry holds a creator for each of ``ops``. ``load_library`` returns None when the library
    registered its creators itself as it was loaded (a plugin library may do both; TensorRT then refuses the
    second registration), so None alone does not mean the library is unusable."""
    if not ops:
        return False
    names = {str(c.name) for c in getattr(registry, "all_creators", [])}
    return all(op in names for op in ops)


def network_io(network, plan: BuildPlan, accepted_profiles: dict) -> list[dict]:
    """The parsed network's I/O in the sidecar's form: dynamic axes keep the graph's names, dtypes are NumPy
    names (as in a --dry-run sidecar), profiles are those the builder config holds. InputError for I/O types
    NumPy cannot hold (BF16 / FP8 ...)."""
    graph = {t.name: t for t in plan.info.inputs + plan.info.outputs}
    io = []
    for mode, count, get in (("input", network.num_inputs, network.get_input),
                             ("output", network.num_outputs, network.get_output)):
        for i in range(count):
            t = get(i)
            declared = graph.get(t.name)
            shape = [(declared.shape[a] if declared is not None and a < len(declared.shape) else "?") if d < 0 else d
                     for a, d in enumerate(int(d) for d in t.shape)]
            entry = {"name": t.name, "shape": shape, "dtype": targets.dtype_name(t.dtype, t.name), "mode": mode}
            if t.name in accepted_profiles:
                entry["profile"] = dict(zip(("min", "opt", "max"), accepted_profiles[t.name]))
            io.append(entry)
    return io


def _use_timing_cache(config, path: Path, notes: list[str]) -> None:
    """Read the cache; one from another GPU or TensorRT version (set_timing_cache returns False) or an
    unreadable one is replaced by an empty cache, and the note says so."""
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if cache is None and data:
        notes.append(f"timing cache {path} is unreadable; building with an empty one and replacing it")
        cache = config.create_timing_cache(b"")
    if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
        return
    if data:
        notes.append(f"timing cache {path} was written for another GPU or TensorRT version; building with an "
                     "empty one and replacing it")
    empty = config.create_timing_cache(b"")
    if empty is None or not config.set_timing_cache(empty, ignore_mismatch=False):
        notes.append("TensorRT refused an empty timing cache; building without one")


def _save_timing_cache(config, path: Path, notes: list[str]) -> None:
    cache = config.get_timing_cache()
    if cache is None:
        notes.append(f"TensorRT returned no timing cache after the build; {path} not written")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(bytes(cache.serialize()))
        os.replace(tmp, path)
    except OSError as exc:
        notes.append(f"timing cache {path} not written ({exc}); the plan and its sidecar are")


def _set_compute_capabilities(trt, config, ccs: list[str] | None) -> None:
    if not ccs:  # TensorRT-RTX's default set (fgsa.plan_targets.RTX_DEFAULT_RUNS_ON)
        return
    members = trt.ComputeCapability.__members__
    known = [n for n in members if n.startswith("SM")]
    names = [targets.cc_enum_name(c) for c in ccs]
    unknown = [c for c, n in zip(ccs, names) if n not in members]
    if unknown:
        say = ", ".join(f"{n[2:-1]}.{n[-1]}" for n in known)
        raise InputError("--compute-capability", f"compute capabilities TensorRT-RTX {trt.__version__} builds for "
                         f"({say})", ", ".join(unknown))
    config.num_compute_capabilities = len(names)
    for i, n in enumerate(names):
        config.set_compute_capability(members[n], i)


def _build_in_child(plan: BuildPlan, verbose: bool) -> dict:
    """The same build in a child process whose loader finds ``libtensorrt_rtx.so`` (export/trt_rtx.py)."""
    with tempfile.TemporaryDirectory(prefix="fgsa-trt-rtx-") as folder:
        proc = subprocess.run([sys.executable, "-m", "export.trt", *plan.cli_args(verbose)], cwd=REPO_ROOT,
                              env=trt_rtx.loader_env(Path(folder)), capture_output=True, text=True)
    lines = proc.stderr.splitlines()
    said = {f"warning: {w}" for w in plan.warnings}  # the graph's warnings were printed here already
    for line in lines:
        if not line.startswith("error: ") and line not in said:
            print(line, file=sys.stderr)
    if proc.returncode != 0:
        said = [line[len("error: "):] for line in lines if line.startswith("error: ")]
        raise FgsaError(said[-1] if said else f"the TensorRT-RTX build process exited with {proc.returncode}: "
                        f"{proc.stderr[-2000:]}")
    return plan_sidecar.read_dict(plan.out)


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
    p.add_argument("--target", choices=tuple(targets.TARGETS),
                   help="tensorrt (default when importable) or tensorrt-rtx (default otherwise; builds without a GPU)")
    p.add_argument("--plugin", type=Path, help=f"{PLUGIN_NAME} (default: ${PLUGIN_ENV}, else build/**/)")
    p.add_argument("--timing-cache", type=Path, help="read and update this TensorRT timing cache (TensorRT only)")
    p.add_argument("--compute-capability", metavar="CC[,CC]",
                   help="TensorRT-RTX target GPUs, e.g. 8.6,8.9,12.0 (default: TensorRT-RTX's, 8.0 and later)")
    p.add_argument("--dynamic-batch", metavar="MIN:OPT:MAX",
                   help="batch range of the optimization profile (default: the graph's exported range)")
    p.add_argument("--workspace", type=int, metavar="MiB", help="builder workspace limit")
    p.add_argument("--out", type=Path, required=True, help="engine file (.plan); the sidecar is <out>.json")
    p.add_argument("--dry-run", action="store_true", help="check and print the build plan; no TensorRT needed")
    p.add_argument("--verbose", action="store_true")
    return p


@command(catch=(ModuleNotFoundError,), one_line=False)  # no TensorRT here: one line naming the package
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the graph first (fixable anywhere), then TensorRT, then the plugin library (built against TensorRT)
    plan = plan_build(args.onnx, args.precision, args.out, args.plugin, args.timing_cache, args.dynamic_batch,
                      args.workspace, resolve_plugin=False, target=args.target,
                      compute_capabilities=args.compute_capability)
    if not args.dry_run:
        plan.set_target(import_target(args.target)[0].name)
    plan.plugin = find_plugin_library(args.plugin, plan.info)
    for w in plan.warnings:
        warn(w)
    if args.dry_run:
        if plan.not_shown_to_run():
            warn(plan.not_shown_to_run())
        print(json.dumps(plan.sidecar(f"<{targets.TARGETS[plan.target or 'tensorrt'].title} version>", None),
                         indent=1))
        return 0
    side = build_engine(plan, args.verbose)
    title = targets.TARGETS[side["target"]].title
    print(f"wrote {plan.out} ({plan.out.stat().st_size / 2**20:.1f} MiB, {side['precision']}, {title} "
          f"{side['trt_version']}, {side['build_seconds']} s) and {sidecar_path(plan.out)}")
    if side["ahead_of_time"]:
        print(f"built ahead of time (no GPU used): runs with {title} {'.'.join(side['trt_version'].split('.')[:3])} "
              f"on {side['runs_on']}; compiled for the GPU when first loaded (runtime.Engine keeps that runtime "
              "cache beside the plan)")
    else:
        print(f"runs with {title} {side['trt_version']} on {side['runs_on']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
