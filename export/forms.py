"""The three ONNX forms of the deformable attention (ARCHITECTURE.md, "The op boundary").

Each form is a pair of implementations for ``fgsa.ops.msda`` / ``fgsa.ops.fgsa_attention`` that computes
the reference math in eager mode and, under the TorchScript ONNX exporter, writes:

- ``plugin``: our TensorRT plugin nodes (``FGSA_MSDA``, ``FGSA_Attention``; names, domain, version and
  namespace read from ``kernels/plugin/fgsa_plugins.json``, the spec the C++ creators implement);
- ``trt-builtin``: TensorRT's ``MultiscaleDeformableAttnPlugin_TRT`` (plugin_version "2", int32
  spatial_shapes / level_start_index inputs); the FGSA location and softmax arithmetic become standard ops;
- ``portable``: standard ops only (GridSample, opset >= 16).

The portable pieces avoid int64 and Gather: links pick reference points through a one-hot MatMul, which
is exact (one 1.0, zeros elsewhere) and keeps index tensors int32 for TensorRT.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F

from fgsa import ops
from fgsa.ops import reference
from kernels.spec import ATTENTION_OP, MSDA_OP, load_plugin_spec, onnx_node_attributes

FORMS = ("plugin", "trt-builtin", "portable")
GRIDSAMPLE_FORMS = ("portable",)
TRT_MSDA_OP = "MultiscaleDeformableAttnPlugin_TRT"
TRT_MSDA_VERSION = "2"
TRT_DOMAIN = "trt.plugins"


def _flat_shapes(spatial_shapes) -> tuple[int, ...]:
    return tuple(v for hw in reference.level_shapes(spatial_shapes) for v in hw)


def _pairs(flat: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _set_type(g_out, like, sizes):
    """Give a custom node's output a type so ONNX shape inference can continue past it."""
    g_out.setType(like.type().with_sizes(sizes))
    return g_out


def _size(v, i):
    sizes = v.type().varyingSizes()
    return sizes[i] if sizes is not None else None


# ---- mixed precision (FP16 graphs, export/precision.py) ---------------------------------------------
# FP16 graphs feed the deformable attention float16 values and float32 coordinates. The plugin widens
# everything to float32 and rounds only its output to the value's type; the eager stand-ins below do the
# same. The standard-op forms sample in float32 when ``fp32_sampling`` is on (the policy's "attention").
_SAMPLING = {"fp32": True}


def _cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return x if x.dtype == dtype else x.to(dtype)


def _plugin_math_dtype(value: torch.Tensor, coord: torch.Tensor) -> torch.dtype:
    """The plugin kernels' arithmetic type: float32, or float64 for the float64 reference model."""
    return torch.promote_types(torch.promote_types(value.dtype, coord.dtype), torch.float32)


def _sampling_dtype(value: torch.Tensor, coord: torch.Tensor) -> torch.dtype:
    """dtype of GridSample / TensorRT's MSDA: the wider of value and coordinates, or the value's when
    FP32 sampling is off (then 16-bit everywhere)."""
    return torch.promote_types(value.dtype, coord.dtype) if _SAMPLING["fp32"] else value.dtype


# ---- portable pieces (also used by trt-builtin) -------------------------------------------------------

def gather_by_one_hot(ref_points: torch.Tensor, links: torch.Tensor) -> torch.Tensor:
    """ref_points [B, K, 2], links [B, K, Hs] int -> [B, K, Hs, 2] = ref_points[b, links[b, k, h]]."""
    K, Hs = links.shape[1:]
    keys = torch.arange(K, dtype=links.dtype, device=links.device)
    one_hot = (links[..., None] == keys).to(ref_points.dtype)  # [B, K, Hs, K]
    return torch.matmul(one_hot.view(-1, K * Hs, K), ref_points).view(-1, K, Hs, 2)


def portable_locations(spatial_shapes, ref_points, links, offsets) -> torch.Tensor:
    shapes = reference.level_shapes(spatial_shapes)
    K, Hs = links.shape[1:]
    HM = offsets.shape[2]
    refs = gather_by_one_hot(ref_points, links).view(-1, K, Hs, 1, 1, 1, 2)
    norm = torch.tensor([[w, h] for h, w in shapes], dtype=offsets.dtype)
    off = offsets.view(-1, K, Hs, HM // Hs, len(shapes), offsets.shape[4], 2) / norm.view(len(shapes), 1, 2)
    return (refs + off).view(offsets.shape)


def portable_fgsa_attention(value, spatial_shapes, level_start, ref_points, links, offsets, logits):
    K = ref_points.shape[1]
    HM, L = value.shape[2], len(reference.level_shapes(spatial_shapes))
    locations = portable_locations(spatial_shapes, ref_points, links, offsets)
    weights = torch.softmax(logits, dim=-1).view(-1, K, HM, L, logits.shape[-1] // L)
    return ops.msda(value, spatial_shapes, level_start, locations, weights)


# ---- plugin form -----------------------------------------------------------------------------------

class _PluginMsda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, value, locations, weights, flat_shapes):
        dt = _plugin_math_dtype(value, locations)
        out = reference.msda(_cast(value, dt), _pairs(flat_shapes), None, _cast(locations, dt), _cast(weights, dt))
        return _cast(out, value.dtype)

    @staticmethod
    def symbolic(g, value, locations, weights, flat_shapes):
        attrs = onnx_node_attributes(MSDA_OP, _pairs(flat_shapes))
        out = g.op(f"{load_plugin_spec()['onnx_domain']}::{MSDA_OP}", value, locations, weights,
                   plugin_version_s=attrs["plugin_version"], plugin_namespace_s=attrs["plugin_namespace"],
                   spatial_shapes_i=attrs["spatial_shapes"])
        m, dh = _size(value, 2), _size(value, 3)
        return _set_type(out, value, [_size(locations, 0), _size(locations, 1),
                                      m * dh if m is not None and dh is not None else None])


class _PluginFgsa(torch.autograd.Function):
    @staticmethod
    def forward(ctx, value, ref_points, links, offsets, logits, flat_shapes):
        dt = _plugin_math_dtype(value, ref_points)
        out = reference.fgsa_attention(_cast(value, dt), _pairs(flat_shapes), None, _cast(ref_points, dt), links,
                                       _cast(offsets, dt), _cast(logits, dt))
        return _cast(out, value.dtype)

    @staticmethod
    def symbolic(g, value, ref_points, links, offsets, logits, flat_shapes):
        attrs = onnx_node_attributes(ATTENTION_OP, _pairs(flat_shapes))
        out = g.op(f"{load_plugin_spec()['onnx_domain']}::{ATTENTION_OP}", value, ref_points, links, offsets,
                   logits, plugin_version_s=attrs["plugin_version"], plugin_namespace_s=attrs["plugin_namespace"],
                   spatial_shapes_i=attrs["spatial_shapes"])
        hm, dh = _size(value, 2), _size(value, 3)
        return _set_type(out, value, [_size(ref_points, 0), _size(ref_points, 1),
                                      hm * dh if hm is not None and dh is not None else None])


def plugin_msda(value, spatial_shapes, level_start, locations, weights):
    # coordinate inputs share one type (the plugin's type rule): the locations'
    return _PluginMsda.apply(value, locations, _cast(weights, locations.dtype), _flat_shapes(spatial_shapes))


def plugin_fgsa_attention(value, spatial_shapes, level_start, ref_points, links, offsets, logits):
    # the plugin takes int32 links: the graph input is int32 already, the cast is a no-op then
    offsets, logits = _cast(offsets, ref_points.dtype), _cast(logits, ref_points.dtype)
    return _PluginFgsa.apply(value, ref_points, links.to(torch.int32), offsets, logits, _flat_shapes(spatial_shapes))


# ---- TensorRT built-in form ------------------------------------------------------------------------

class _TrtMsda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, value, shapes_i32, starts_i32, locations, weights):
        out = reference.msda(value, shapes_i32.tolist(), None, locations, weights)
        return out.view(value.shape[0], locations.shape[1], value.shape[2], value.shape[3])

    @staticmethod
    def symbolic(g, value, shapes_i32, starts_i32, locations, weights):
        out = g.op(f"{TRT_DOMAIN}::{TRT_MSDA_OP}", value, shapes_i32, starts_i32, locations, weights,
                   plugin_version_s=TRT_MSDA_VERSION, plugin_namespace_s="")
        return _set_type(out, value, [_size(value, 0), _size(locations, 1), _size(value, 2), _size(value, 3)])


def trt_msda(value, spatial_shapes, level_start, locations, weights):
    shapes = reference.level_shapes(spatial_shapes)
    shapes_i32 = torch.tensor(shapes, dtype=torch.int32)
    starts_i32 = torch.tensor(reference.level_starts(shapes), dtype=torch.int32)
    dt = _sampling_dtype(value, locations)  # TensorRT's op takes one type for all float inputs
    out = _TrtMsda.apply(_cast(value, dt), shapes_i32, starts_i32, _cast(locations, dt), _cast(weights, dt))
    return _cast(out.flatten(2), value.dtype)  # [B, Q, M*Dh]


def portable_msda(value, spatial_shapes, level_start, locations, weights):
    """The reference (GridSample) with mixed-precision inputs sampled in :func:`_sampling_dtype`."""
    dt = _sampling_dtype(value, locations)
    out = reference.msda(_cast(value, dt), spatial_shapes, level_start, _cast(locations, dt), _cast(weights, dt))
    return _cast(out, value.dtype)


# ---- selection -------------------------------------------------------------------------------------

IMPLEMENTATIONS = {
    "plugin": (plugin_msda, plugin_fgsa_attention),
    "trt-builtin": (trt_msda, portable_fgsa_attention),
    "portable": (portable_msda, portable_fgsa_attention),
}


@contextlib.contextmanager
def attention_form(form: str, fp32_sampling: bool = True) -> Iterator[None]:
    """Route the model's deformable attention through ``form`` while exporting. ``fp32_sampling`` only
    matters for 16-bit models (see :func:`_sampling_dtype`); fp32 / fp64 models trace no extra node."""
    from fgsa.errors import InputError

    if form not in IMPLEMENTATIONS:
        raise InputError("--attention", f"one of {', '.join(FORMS)}", form)
    msda, fgsa = IMPLEMENTATIONS[form]
    saved = _SAMPLING["fp32"]
    _SAMPLING["fp32"] = fp32_sampling
    try:
        with ops.use_implementation(msda=msda, fgsa_attention=fgsa):
            yield
    finally:
        _SAMPLING["fp32"] = saved
