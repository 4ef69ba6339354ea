"""The three ONNX forms of the deformable attention (docs/ARCHITECTURE.md, "The op boundary").

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
from fgsa.errors import InputError
from fgsa.ops import reference
from kernels.spec import (ATTENTION_OP, MSDA_OP, TRT_DOMAIN, TRT_MSDA_OP, TRT_MSDA_VERSION, load_plugin_spec,
                          onnx_node_attributes)

FORMS = ("plugin", "trt-builtin", "portable")
GRIDSAMPLE_FORMS = ("portable",)


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


def located_fgsa_attention(value, spatial_shapes, level_start, ref_points, links, offsets, logits):
    """FGSA through ``ops.msda``: locations and softmax as standard ops (the trt-builtin form)."""
    K = ref_points.shape[1]
    HM, L = value.shape[2], len(reference.level_shapes(spatial_shapes))
    locations = portable_locations(spatial_shapes, ref_points, links, offsets)
    weights = torch.softmax(logits, dim=-1).view(-1, K, HM, L, logits.shape[-1] // L)
    return ops.msda(value, spatial_shapes, level_start, locations, weights)


# The standard-op form lays values out for GridSample: one [B, heads, Dh, H, W] map per level, made by a
# 1x1 Conv of the level's raw features. The Deformable-DETR layout [B, Len_in, heads, Dh] would cost a
# Slice and a Transpose of every projected level per module (ONNX Runtime profile: ~4 ms of ~19 ms per
# fmmp-r50 layer), and the level sums below replace a Concat of all levels' samples.

def portable_project_values(features, weight, bias, heads, spatial_shapes):
    """features [B, Len_in, D] -> per level [B, heads, Dh, H, W] (same math as the reference's linear)."""
    shapes = reference.level_shapes(spatial_shapes)
    D, dh = features.shape[-1], weight.shape[0] // heads
    kernel = weight.view(weight.shape[0], D, 1, 1)
    levels = []
    for (h, w), start in zip(shapes, reference.level_starts(shapes)):
        x = features[:, start:start + h * w].transpose(1, 2).reshape(-1, D, h, w)
        levels.append(F.conv2d(x, kernel, bias).view(-1, heads, dh, h, w))
    return tuple(levels)


def portable_fgsa_attention(value, spatial_shapes, level_start, ref_points, links, offsets, logits):
    """FGSA on :func:`portable_project_values`' maps with one GridSample per level.

    GridSample's coordinates are 2 * location - 1 (align_corners=False); with location = ref + offset /
    (W_l, H_l) that is (2 * ref - 1) + offset * (2 / W_l, 2 / H_l). Every level and point is done in one
    multiply by a constant row and one add of the reference points tiled along that row (by an exact 0/1
    MatMul): broadcasts over the last axis of size 2, as in the reference, cost ONNX Runtime ~0.6 ms per
    op for 36k elements."""
    shapes = reference.level_shapes(spatial_shapes)
    K, Hs = links.shape[1:]
    HM, L, P = offsets.shape[2], offsets.shape[3], offsets.shape[4]
    M, dh = HM // Hs, value[0].shape[2]
    dt = _sampling_dtype(value[0], ref_points)
    row = L * P * 2  # (level, point, xy) of one head
    scale = torch.tensor([[2.0 / w, 2.0 / h] for h, w in shapes], dtype=offsets.dtype)
    scale = scale.view(L, 1, 2).expand(L, P, 2).reshape(row)
    tile = torch.eye(2, dtype=ref_points.dtype).repeat(1, L * P)  # [2, row]: x, y, x, y, ...
    refs = torch.matmul(2.0 * gather_by_one_hot(ref_points, links) - 1.0, tile)  # [B, K, Hs, row]
    grid = offsets.reshape(-1, K, Hs, M, row) * scale + refs.view(-1, K, Hs, 1, row)
    grid = grid.view(-1, K, HM, L, P, 2).permute(0, 2, 3, 1, 4, 5)  # [B, HM, L, K, P, 2]
    weights = torch.softmax(logits, dim=-1).view(-1, K, HM, L, P).permute(0, 2, 3, 1, 4)  # [B, HM, L, K, P]
    out = None
    for lvl, (h, w) in enumerate(shapes):
        v = _cast(value[lvl], dt).reshape(-1, dh, h, w)  # [B*HM, Dh, H, W]
        g = _cast(grid[:, :, lvl].reshape(-1, K, P, 2), dt)
        sampled = F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        part = (sampled * _cast(weights[:, :, lvl].reshape(-1, 1, K, P), dt)).sum(-1)  # [B*HM, Dh, K]
        out = part if out is None else out + part
    return _cast(out.view(-1, HM * dh, K).transpose(1, 2).contiguous(), value[0].dtype)  # [B, K, HM*Dh]


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
    "trt-builtin": (trt_msda, located_fgsa_attention),
    "portable": (portable_msda, portable_fgsa_attention),
}
# forms whose fgsa_attention reads another value layout than the reference's
VALUE_LAYOUTS = {"portable": portable_project_values}


@contextlib.contextmanager
def attention_form(form: str, fp32_sampling: bool = True) -> Iterator[None]:
    """Route the model's deformable attention through ``form`` while exporting. ``fp32_sampling`` only
    matters for 16-bit models (see :func:`_sampling_dtype`); fp32 / fp64 models trace no extra node."""
    if form not in IMPLEMENTATIONS:
        raise InputError("--attention", f"one of {', '.join(FORMS)}", form)
    msda, fgsa = IMPLEMENTATIONS[form]
    saved = _SAMPLING["fp32"]
    _SAMPLING["fp32"] = fp32_sampling
    try:
        with ops.use_implementation(msda=msda, fgsa_attention=fgsa, project_values=VALUE_LAYOUTS.get(form)):
            yield
    finally:
        _SAMPLING["fp32"] = saved
