"""One fused FGSA call with concatenated side-head weights equals the official per-side-head structure."""

import torch
import torch.nn.functional as F

from fgsa import ops
from fgsa.model.deform_attn import StructuralDeformAttn

SHAPES = ((2, 2), (4, 4), (8, 8))


def per_side_head(mod: StructuralDeformAttn, query, ref, values, links):
    """The authors' StructrualDeformAttnW.forward, literally: Hs separate Deformable-DETR attentions."""
    N, K, D = query.shape
    M, L, P = mod.n_heads, mod.n_levels, mod.n_points
    norm = torch.tensor([[w, h] for h, w in SHAPES], dtype=query.dtype)
    outs = []
    for h, att in enumerate(mod.attn_layers):
        side_ref = torch.stack([ref[b][links[b, :, h].long()] for b in range(N)])
        v = att.value_proj(values).view(N, -1, M, D // M)
        off = att.sampling_offsets(query).view(N, K, M, L, P, 2)
        w = torch.softmax(att.attention_weights(query).view(N, K, M, L * P), -1).view(N, K, M, L, P)
        locs = side_ref[:, :, None, None, None, :] + off / norm[None, None, None, :, None, :]
        outs.append(att.output_proj(ops.msda(v, SHAPES, None, locs, w)))
    return outs[0] + mod.projector(torch.cat(outs[1:], -1))


def test_fused_equals_official_structure():
    torch.manual_seed(0)
    mod = StructuralDeformAttn(side_heads=8, d_model=16, n_levels=3, n_heads=2, n_points=3).double()
    with torch.no_grad():
        for p in mod.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    N, K = 2, 7
    query = torch.randn(N, K, 16, dtype=torch.float64)
    ref = torch.rand(N, K, 2, dtype=torch.float64) * 1.2 - 0.1
    values = torch.randn(N, 84, 16, dtype=torch.float64)
    links = torch.randint(0, K, (N, K, 16), dtype=torch.int64)
    got = mod(query, ref, mod.project_values(values, SHAPES), links, SHAPES)
    want = per_side_head(mod, query, ref, values, links)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
