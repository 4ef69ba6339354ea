"""The two TensorRT families a plan can be built for, and the facts about them that both the plan build
(``python -m export.trt``) and the runtime (``runtime.Engine``) need. Torch-free, imports nothing heavy.

- ``tensorrt``: TensorRT 10 / 11 (module ``tensorrt``). A plan runs on the GPU model it was built on, with
  the same TensorRT version; builds need that GPU; a timing cache speeds up rebuilds.
- ``tensorrt-rtx``: TensorRT for RTX 1.x (module ``tensorrt_rtx``). Builds ahead of time on any machine,
  no GPU needed; the plan is compiled for its target compute capabilities when it is first loaded (the JIT
  step) and that result is kept in a runtime cache. Always strongly typed; no timing cache.

Tensor types are named as NumPy names them (``float32``, ``float16``, ``int32``, ``bool``...) everywhere a
plan's I/O is written or read, so a dry-run sidecar and a real build's sidecar say the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from fgsa.errors import InputError


@dataclass(frozen=True)
class Target:
    name: str                 # --target value and the sidecar's "target"
    module: str               # Python module
    title: str                # for messages
    majors: tuple[int, ...]   # supported major versions
    timing_cache: bool        # has a builder timing cache
    needs_gpu_to_build: bool


TENSORRT = Target("tensorrt", "tensorrt", "TensorRT", (10, 11), timing_cache=True, needs_gpu_to_build=True)
TENSORRT_RTX = Target("tensorrt-rtx", "tensorrt_rtx", "TensorRT-RTX", (1,), timing_cache=False,
                      needs_gpu_to_build=False)
TARGETS = {t.name: t for t in (TENSORRT, TENSORRT_RTX)}

# What TensorRT-RTX builds for when no compute capability is given (NVIDIA's TensorRT-RTX documentation:
# "8.0, 8.6, 8.9, 12.0 and later"; Turing, 7.5, only when asked for explicitly).
RTX_DEFAULT_MIN_CC = (8, 0)
RTX_DEFAULT_RUNS_ON = "NVIDIA GPUs of compute capability 8.0 and later (Ampere, Ada, Blackwell RTX)"

# TensorRT DataType member name -> NumPy dtype name. Types without a NumPy dtype cannot be graph I/O here:
# the runtime exchanges NumPy arrays.
DTYPE_NAMES = {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32", "INT64": "int64",
               "BOOL": "bool", "UINT8": "uint8"}
NO_NUMPY_DTYPE = {"BF16": "bfloat16", "FP8": "float8", "INT4": "int4", "FP4": "float4", "E8M0": "e8m0",
                  "bfloat16": "bfloat16", "float8_e4m3fn": "float8", "float8_e5m2": "float8",
                  "float8_e4m3fnuz": "float8", "float8_e5m2fnuz": "float8", "int4": "int4", "uint4": "uint4",
                  "float4_e2m1": "float4"}
IO_TYPES_FIX = ("Keep the graph's inputs and outputs float32 / float16 / int32 / bool (python -m export.onnx "
                "does; cast inside the graph for BF16 / FP8 compute)")


def get(name: str) -> Target:
    if name not in TARGETS:
        raise InputError("--target", f"one of {', '.join(TARGETS)}", repr(name))
    return TARGETS[name]


def major_version(version: str) -> int | None:
    head = str(version).split(".")[0]
    return int(head) if head.isdigit() else None


def check_version(target: Target, version: str) -> int:
    """The major version, or InputError when this toolkit does not know how to build with it."""
    major = major_version(version)
    if major not in target.majors:
        want = " or ".join(f"{m}.x" for m in target.majors)
        raise InputError(f"--target {target.name}", f"{target.title} {want}", f"{target.title} {version}",
                         f"install {target.title} {want}")
    return major


def network_flags(target: Target, major: int) -> list[str]:
    """STRONGLY_TYPED on TensorRT 10; TensorRT 11 and TensorRT-RTX networks are always strongly typed."""
    return ["STRONGLY_TYPED"] if target is TENSORRT and major < 11 else []


def dtype_name(trt_dtype, tensor: str = "tensor") -> str:
    """NumPy name of a TensorRT ``DataType`` (or of its member name); InputError for BF16 / FP8 / FP4 / INT4."""
    key = getattr(trt_dtype, "name", None) or str(trt_dtype).split(".")[-1]
    if key in DTYPE_NAMES:
        return DTYPE_NAMES[key]
    if key in DTYPE_NAMES.values():
        return key
    raise InputError(f"I/O tensor '{tensor}'", "a type with a NumPy dtype (float32, float16, int8, int32, int64, "
                     "bool, uint8)", NO_NUMPY_DTYPE.get(key, key), IO_TYPES_FIX)


def parse_compute_capabilities(text: str | None) -> list[str] | None:
    """``"8.6,8.9"`` -> ``["8.6", "8.9"]`` (also ``86`` / ``sm_86``); None keeps the builder's default."""
    if not text:
        return None
    out = []
    for item in text.split(","):
        raw = item.strip().lower().replace("sm_", "").replace("sm", "")
        if raw.isdigit() and len(raw) in (2, 3):
            raw = f"{raw[:-1]}.{raw[-1]}"
        parts = raw.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise InputError("--compute-capability", "comma-separated compute capabilities like 8.6,8.9,12.0",
                             repr(text))
        out.append(f"{int(parts[0])}.{int(parts[1])}")
    return sorted(set(out), key=lambda c: tuple(int(p) for p in c.split(".")))


def cc_enum_name(cc: str) -> str:
    """``"8.6"`` -> ``"SM86"`` (TensorRT-RTX's ``ComputeCapability`` member)."""
    major, minor = cc.split(".")
    return f"SM{major}{minor}"


def runs_on(target: Target, compute_capabilities: list[str] | None, build_gpu: dict | None) -> str:
    """Where a plan can run, in words (the build's closing line and the sidecar)."""
    if target is TENSORRT_RTX:
        if compute_capabilities:
            return f"NVIDIA GPUs of compute capability {', '.join(compute_capabilities)}"
        return RTX_DEFAULT_RUNS_ON
    if build_gpu:
        return f"{build_gpu.get('name')} (compute capability {build_gpu.get('compute_capability')}) only"
    return "the GPU model it was built on only"


def cc_supported(target_ccs: list[str] | None, gpu_cc: str) -> bool:
    """Can a TensorRT-RTX plan built for ``target_ccs`` (None: the default set) run on ``gpu_cc``?"""
    key = tuple(int(p) for p in gpu_cc.split("."))
    if not target_ccs:
        return key >= RTX_DEFAULT_MIN_CC
    return gpu_cc in target_ccs
