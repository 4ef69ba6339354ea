"""ctypes wrapper of the compiled CPU reference (kernels/src/cpu_reference.cpp).

The library runs the CUDA kernels' own sampling math and thread decomposition on the host, so comparing
it with :mod:`fgsa.ops.reference` checks the kernels' indexing without a GPU. NumPy in, NumPy out:

    ref = CpuReference(kernels.build.build_cpu_reference())
    out = ref.fgsa_attention(value, [(8, 8), (16, 16), (32, 32)], ref_points, links, offsets, logits)

Float inputs are float32 or float64 (one dtype for all of them; the result has it too); links are int32.
``vec`` and ``groups`` choose the GPU thread layout to emulate (fgsa/team.h): vec=4, groups=4 is what
the FP32 kernel runs for Dh=32, vec=8, groups=8 the FP16 kernel. ``layout`` is "team" (the default) or
"item" (fgsa/item_layout.h: groups 0 then follow the item count) and ``index_bits`` (0, 32, 64) the item
layout's offset width, 0 = 32 where the sizes allow.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Sequence

import numpy as np

from fgsa.errors import InputError

_DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float64): 2}  # fgsa::DType
LAYOUTS = {"team": 1, "item": 2}  # fgsa::Layout
_ERR_LEN = 512

_ptr = ctypes.c_void_p
_i32 = ctypes.c_int32
_shape = ctypes.POINTER(ctypes.c_int64)


def _as_shape(a: np.ndarray) -> ctypes.Array:
    return (ctypes.c_int64 * a.ndim)(*a.shape)


def _levels(spatial_shapes: Sequence[Sequence[int]]) -> tuple[ctypes.Array, int]:
    flat = [int(v) for hw in spatial_shapes for v in hw]
    return (ctypes.c_int64 * len(flat))(*flat), len(flat) // 2


def _raise(message: str) -> None:
    field, _, expected = message.partition(": expected ")
    if expected:
        raise InputError(field, expected)
    raise InputError("CPU reference arguments", "arguments the kernels accept", message)


class CpuReference:
    """The two ops of the compiled CPU reference library at ``library_path``."""

    def __init__(self, library_path: str | Path):
        self.library_path = Path(library_path)
        lib = ctypes.CDLL(str(self.library_path))
        lib.fgsa_cpu_msda_layout.restype = _i32
        lib.fgsa_cpu_msda_layout.argtypes = [_ptr, _ptr, _ptr, _ptr, _i32, _shape, _shape, _shape, _shape, _i32, _i32,
                                             _i32, _i32, _i32, ctypes.c_char_p, _i32]
        lib.fgsa_cpu_attention_layout.restype = _i32
        lib.fgsa_cpu_attention_layout.argtypes = [_ptr, _ptr, _ptr, _ptr, _ptr, _ptr, _i32, _shape, _shape, _shape,
                                                  _shape, _shape, _shape, _i32, _i32, _i32, _i32, _i32,
                                                  ctypes.c_char_p, _i32]
        lib.fgsa_cpu_item_groups.restype = _i32
        lib.fgsa_cpu_item_groups.argtypes = [_i32, _i32, _i32, ctypes.c_int64]
        lib.fgsa_cpu_item_index_bits.restype = _i32
        lib.fgsa_cpu_item_index_bits.argtypes = [_i32, _i32, _i32, _i32, ctypes.c_int64]
        self._lib = lib

    def item_groups(self, head_dim: int, samples: int, vec: int, items: int) -> int:
        """Point groups the item layout picks for `items` items (0: the item layout cannot run these sizes)."""
        return int(self._lib.fgsa_cpu_item_groups(head_dim, samples, vec, items))

    def item_index_bits(self, head_dim: int, samples: int, vec: int, groups: int, items: int) -> int:
        """Index width (32 or 64) the item layout plans for `items` items with tiny tensors, so that only the
        thread count decides (0: the item layout cannot run these sizes)."""
        return int(self._lib.fgsa_cpu_item_index_bits(head_dim, samples, vec, groups, items))

    @staticmethod
    def _float_inputs(dtype: np.dtype | None, **arrays: np.ndarray) -> tuple[np.dtype, dict[str, np.ndarray]]:
        dtype = np.dtype(dtype or next(iter(arrays.values())).dtype)
        if dtype not in _DTYPE_CODES:
            raise InputError("dtype", "float32 or float64", dtype)
        return dtype, {k: np.ascontiguousarray(v, dtype=dtype) for k, v in arrays.items()}

    @staticmethod
    def _layout(layout: str) -> int:
        if layout not in LAYOUTS:
            raise InputError("layout", " or ".join(LAYOUTS), layout)
        return LAYOUTS[layout]

    @staticmethod
    def _output(out: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        if out is None:
            return np.empty(shape, dtype=dtype)  # every element is written by the library
        if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
            raise InputError("out", f"a C-contiguous {dtype} array of shape {shape}",
                             f"{out.dtype} {out.shape} contiguous={out.flags.c_contiguous}")
        return out

    @staticmethod
    def _check_ranks(*named: tuple[str, np.ndarray, int]) -> None:
        for name, arr, rank in named:
            if arr.ndim != rank:
                raise InputError(name, f"rank {rank}", arr.shape)

    def _call(self, fn, spatial_shapes: Sequence[Sequence[int]], pointers: list, shapes: list[np.ndarray],
              dtype: np.dtype, vec: int, groups: int, layout: str, index_bits: int) -> None:
        """Calls a C entry point: (pointers..., dtype code, shapes..., levels, layout arguments, error buffer)."""
        levels, num_levels = _levels(spatial_shapes)
        err = ctypes.create_string_buffer(_ERR_LEN)
        status = fn(*pointers, _DTYPE_CODES[dtype], *(_as_shape(a) for a in shapes), levels, num_levels, vec, groups,
                    self._layout(layout), index_bits, err, _ERR_LEN)
        if status != 0:
            _raise(err.value.decode())

    def msda(
        self,
        value: np.ndarray,
        spatial_shapes: Sequence[Sequence[int]],
        sampling_locations: np.ndarray,
        attention_weights: np.ndarray,
        *,
        vec: int = 1,
        groups: int = 1,
        layout: str = "team",
        index_bits: int = 0,
        dtype: np.dtype | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """value [B, Len_in, M, Dh], sampling_locations [B, Q, M, L, P, 2], attention_weights [B, Q, M, L, P]
        -> [B, Q, M*Dh]."""
        dtype, a = self._float_inputs(dtype, value=value, loc=sampling_locations, weights=attention_weights)
        self._check_ranks(("value", a["value"], 4), ("sampling_locations", a["loc"], 6),
                          ("attention_weights", a["weights"], 5))
        B, _, M, Dh = a["value"].shape
        out = self._output(out, (B, a["loc"].shape[1], M * Dh), dtype)
        inputs = [a["value"], a["loc"], a["weights"]]
        self._call(self._lib.fgsa_cpu_msda_layout, spatial_shapes, [x.ctypes.data for x in inputs + [out]], inputs,
                   dtype, vec, groups, layout, index_bits)
        return out

    def fgsa_attention(
        self,
        value: np.ndarray,
        spatial_shapes: Sequence[Sequence[int]],
        ref_points: np.ndarray,
        links: np.ndarray,
        offsets: np.ndarray,
        logits: np.ndarray,
        *,
        vec: int = 1,
        groups: int = 1,
        layout: str = "team",
        index_bits: int = 0,
        dtype: np.dtype | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """value [B, Len_in, Hs*M, Dh], ref_points [B, K, 2], links [B, K, Hs] (int), offsets
        [B, K, Hs*M, L, P, 2], logits [B, K, Hs*M, L*P] -> [B, K, Hs*M*Dh]."""
        dtype, a = self._float_inputs(dtype, value=value, ref=ref_points, offsets=offsets, logits=logits)
        links32 = np.ascontiguousarray(links)
        if not np.issubdtype(links32.dtype, np.integer):
            raise InputError("links", "an integer array", links32.dtype)
        links32 = links32.astype(np.int32, copy=False)
        self._check_ranks(("value", a["value"], 4), ("ref_points", a["ref"], 3), ("links", links32, 3),
                          ("offsets", a["offsets"], 6), ("logits", a["logits"], 4))
        B, _, HM, Dh = a["value"].shape
        out = self._output(out, (B, a["ref"].shape[1], HM * Dh), dtype)
        inputs = [a["value"], a["ref"], links32, a["offsets"], a["logits"]]
        self._call(self._lib.fgsa_cpu_attention_layout, spatial_shapes, [x.ctypes.data for x in inputs + [out]],
                   inputs, dtype, vec, groups, layout, index_bits)
        return out
