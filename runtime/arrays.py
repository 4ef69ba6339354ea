"""Turn what callers pass (NumPy, torch CPU tensors, anything with ``__array_interface__`` or DLPack) into
NumPy arrays without copying, and recognise device arrays (``__cuda_array_interface__`` / DLPack on CUDA).

No torch import: a torch CPU tensor is read through DLPack (``np.from_dlpack``), which shares its memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.errors import InputError

# DLPack device types (dlpack.h DLDeviceType)
DL_CPU, DL_CUDA, DL_CUDA_HOST, DL_CUDA_MANAGED = 1, 2, 3, 13
_HOST_DEVICES = (DL_CPU, DL_CUDA_HOST)


def dlpack_device(x: Any) -> int | None:
    """The DLPack device type of ``x``, or None when it does not speak DLPack."""
    get = getattr(x, "__dlpack_device__", None)
    if get is None:
        return None
    try:
        return int(get()[0])
    except Exception:  # a broken producer: treat it as not DLPack-capable
        return None


def is_device_array(x: Any) -> bool:
    """True for CUDA memory: ``__cuda_array_interface__`` or a DLPack producer on a CUDA device."""
    if isinstance(x, np.ndarray):
        return False
    if hasattr(x, "__cuda_array_interface__"):
        return True
    dev = dlpack_device(x)
    return dev is not None and dev not in _HOST_DEVICES


def as_host_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a NumPy array that shares its memory when ``x`` lives in host memory.

    Order: ndarray as is; DLPack on the CPU (torch CPU tensors, JAX/CuPy host arrays) via ``np.from_dlpack``;
    ``__array_interface__`` / ``__array__`` via ``np.asarray``; nested lists are converted (a copy).
    Raises InputError for device arrays (the caller decides whether its backend takes them) and for
    tensors that cannot be shared (e.g. torch tensors that require grad).
    """
    if isinstance(x, np.ndarray):
        return x
    if is_device_array(x):
        raise InputError(name, "a host (CPU) array for this backend", "a CUDA device array",
                         "copy it to the host first (e.g. tensor.cpu()), or use a CUDA backend")
    if dlpack_device(x) is not None:
        try:
            return np.from_dlpack(x)
        except (RuntimeError, BufferError, TypeError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            fix = "call .detach() first" if "grad" in text else "pass a NumPy array"
            raise InputError(name, "an array NumPy can share through DLPack", text, fix) from None
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise InputError(name, "an array-like (NumPy, torch CPU tensor, DLPack or __array_interface__)",
                         f"{type(x).__name__} ({exc})") from None
    if arr.dtype == object:
        raise InputError(name, "a numeric array", "an object array (ragged or mixed types)")
    return arr


def describe(arr: np.ndarray) -> str:
    return f"shape {tuple(arr.shape)} dtype {arr.dtype}"
