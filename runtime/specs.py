"""Tensor specs of an engine's graph and the checks every raw feed goes through before a backend sees it.

A spec's shape holds ints for fixed axes and strings (or None) for dynamic ones; dynamic axes that share a
name (``batch``) must agree across the inputs of one call. Checks raise :class:`InputError` naming the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from runtime.arrays import as_host_array, describe, is_device_array
from runtime.errors import InputError

Dim = int | str | None

# ONNX Runtime's type strings -> NumPy dtypes (the graphs use only the first three)
ORT_TYPES = {"tensor(float)": np.float32, "tensor(bool)": np.bool_, "tensor(int32)": np.int32,
             "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(double)": np.float64,
             "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[Dim, ...]
    dtype: np.dtype

    @classmethod
    def make(cls, name: str, shape, dtype) -> "TensorSpec":
        dims = tuple(d if isinstance(d, int) and d >= 0 else (d if isinstance(d, str) else None) for d in shape)
        return cls(name, dims, np.dtype(dtype))

    @property
    def dynamic(self) -> bool:
        return any(not isinstance(d, int) for d in self.shape)

    def text(self) -> str:
        dims = ", ".join(str(d) if d is not None else "?" for d in self.shape)
        return f"[{dims}] {self.dtype.name}"

    def resolve(self, symbols: Mapping[str, int]) -> tuple[int, ...] | None:
        """The concrete shape given the dynamic axis sizes, or None if an axis stays unknown."""
        out = []
        for d in self.shape:
            if isinstance(d, int):
                out.append(d)
            elif isinstance(d, str) and d in symbols:
                out.append(symbols[d])
            else:
                return None
        return tuple(out)


@dataclass(frozen=True)
class BatchRange:
    """Allowed batch sizes of a graph: [lo, hi]; hi None = unbounded."""
    lo: int = 1
    hi: int | None = None

    def fits(self, b: int) -> bool:
        return self.lo <= b and (self.hi is None or b <= self.hi)

    def text(self) -> str:
        return f"{self.lo}" if self.lo == self.hi else f"{self.lo}..{self.hi if self.hi is not None else 'any'}"


def _check_values(spec: TensorSpec, arr: np.ndarray) -> None:
    """Value checks that cost one pass: finite floats; support semantics of the FMMP graphs."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        raise InputError(spec.name, "finite values", f"NaN/inf at index {bad}",
                         "check the preprocessing; invisible keypoints should be (0, 0) with visibility 0")
    if spec.name == "support_links" and arr.size:
        k = arr.shape[2]
        if arr.min() < 0 or arr.max() >= k:
            raise InputError(spec.name, f"keypoint indices in [0, {k})",
                             f"values in [{int(arr.min())}, {int(arr.max())}]",
                             "build the table with fgsa.preprocess.support_links")
    if spec.name == "support_visible" and arr.size and not arr.any(axis=-1).all():
        b, s = np.argwhere(~arr.any(axis=-1))[0].tolist()
        raise InputError(spec.name, "at least one visible keypoint in every support shot",
                         f"none in batch row {b}, shot {s}", "drop that shot or fix its annotation")


def check_feed(specs: list[TensorSpec], feed: Mapping[str, Any], batch: BatchRange | None = None,
               allow_device: bool = False, values: bool = True) -> tuple[dict[str, Any], dict[str, int]]:
    """Validate ``feed`` against ``specs``: names, rank, fixed axes, consistent dynamic axes, dtype, values.

    Host inputs come back as NumPy arrays sharing the caller's memory (C-contiguous ones are not copied;
    others are made contiguous, since backends read raw buffers). Device arrays pass through untouched
    when ``allow_device`` (shape/dtype read from their interface; values not checked).
    Returns (arrays by name, dynamic axis sizes by name).
    """
    if not isinstance(feed, Mapping):
        raise InputError("feed", "a dict {input name: array}", type(feed).__name__)
    names = [s.name for s in specs]
    missing = [n for n in names if n not in feed]
    extra = [n for n in feed if n not in names]
    if missing or extra:
        raise InputError("feed", f"exactly the inputs {names}",
                         f"missing {missing}, unexpected {extra}" if extra else f"missing {missing}")
    out: dict[str, Any] = {}
    symbols: dict[str, int] = {}
    for spec in specs:
        value = feed[spec.name]
        if allow_device and is_device_array(value):
            shape, dtype = device_shape_dtype(value)
            arr = value
        else:
            arr = as_host_array(value, spec.name)
            shape, dtype = arr.shape, arr.dtype
        if len(shape) != len(spec.shape):
            raise InputError(spec.name, f"rank {len(spec.shape)}: {spec.text()}", f"shape {tuple(shape)}")
        for axis, (want, got) in enumerate(zip(spec.shape, shape)):
            if isinstance(want, int) and want != got:
                raise InputError(spec.name, f"size {want} on axis {axis}: {spec.text()}", f"shape {tuple(shape)}")
            if isinstance(want, str):
                if symbols.setdefault(want, got) != got:
                    raise InputError(spec.name, f"axis {axis} ('{want}') = {symbols[want]} like the other inputs",
                                     f"shape {tuple(shape)}")
        if dtype != spec.dtype:
            raise InputError(spec.name, f"dtype {spec.dtype.name}: {spec.text()}", f"dtype {dtype}",
                             f"convert with .astype(np.{spec.dtype.name}) (the runtime never casts silently)")
        if not isinstance(arr, np.ndarray):
            out[spec.name] = arr
            continue
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        if values:
            _check_values(spec, arr)
        out[spec.name] = arr
    if batch is not None and "batch" in symbols and not batch.fits(symbols["batch"]):
        raise InputError(names[0], f"a batch size in {batch.text()} (fixed when the graph was exported)",
                         symbols["batch"], "re-export with --dynamic-batch MIN:OPT:MAX or split the batch")
    return out, symbols


def device_shape_dtype(x: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a CUDA array from ``__cuda_array_interface__`` (or DLPack metadata via .shape/.dtype)."""
    cai = getattr(x, "__cuda_array_interface__", None)
    if cai is not None:
        if cai.get("strides") is not None:
            itemsize = np.dtype(cai["typestr"]).itemsize
            expect, acc = [], itemsize
            for d in reversed(cai["shape"]):
                expect.insert(0, acc)
                acc *= d
            if tuple(cai["strides"]) != tuple(expect):
                raise InputError("device array", "a C-contiguous CUDA array", f"strides {cai['strides']}",
                                 "make it contiguous on the device first")
        return tuple(cai["shape"]), np.dtype(cai["typestr"])
    shape = tuple(int(d) for d in x.shape)
    dtype = np.dtype(str(x.dtype).replace("torch.", ""))
    return shape, dtype


def array_shape(x: Any) -> tuple[int, ...]:
    """Shape of a host (NumPy) or device array."""
    return tuple(int(d) for d in x.shape) if isinstance(x, np.ndarray) else device_shape_dtype(x)[0]


def device_pointer(x: Any) -> int:
    """Device address of a CUDA array (``__cuda_array_interface__`` data pointer, or ``data_ptr()``)."""
    cai = getattr(x, "__cuda_array_interface__", None)
    if cai is not None:
        return int(cai["data"][0])
    if hasattr(x, "data_ptr"):
        return int(x.data_ptr())
    raise InputError("device array", "an object with __cuda_array_interface__", type(x).__name__)


def spec_from_dict(d: Mapping[str, Any]) -> TensorSpec:
    return TensorSpec.make(d["name"], d["shape"], d["dtype"])


__all__ = ["TensorSpec", "BatchRange", "check_feed", "describe", "ORT_TYPES", "spec_from_dict",
           "device_shape_dtype", "device_pointer", "array_shape"]
