"""The reference deformable attention against an independent loop implementation of the spec (§2.3).

The loop implements the CUDA kernel's rule literally (pixel = loc * W - 0.5, four corners, zero outside),
so agreement also shows that grid_sample with align_corners=False is the right primitive.
"""

import numpy as np
import pytest
import torch

from fgsa import ops

SHAPES = [(2, 3), (4, 5)]


def bilinear_loop(v: np.ndarray, x: float, y: float) -> np.ndarray:
    """v [H, W, C]; (x, y) normalised. The kernel's rule, in float64."""
    H, W, _ = v.shape
    px, py = x * W - 0.5, y * H - 0.5
    x0, y0 = int(np.floor(px)), int(np.floor(py))
    out = np.zeros(v.shape[-1])
    for xi in (x0, x0 + 1):
        for yi in (y0, y0 + 1):
            if 0 <= xi < W and 0 <= yi < H:
                out += (1 - abs(px - xi)) * (1 - abs(py - yi)) * v[yi, xi]
    return out


def msda_loop(value, shapes, locs, weights):
    B, _, M, Dh = value.shape
    _, Q, _, L, P, _ = locs.shape
    starts = np.cumsum([0] + [h * w for h, w in shapes])
    out = np.zeros((B, Q, M, Dh))
    for b in range(B):
        for q in range(Q):
            for m in range(M):
                for l, (h, w) in enumerate(shapes):
                    v = value[b, starts[l]:starts[l + 1], m].reshape(h, w, Dh)
                    for p in range(P):
                        x, y = locs[b, q, m, l, p]
                        out[b, q, m] += weights[b, q, m, l, p] * bilinear_loop(v, x, y)
    return out.reshape(B, Q, M * Dh)


def border_points(shapes):
    """x and y values on and around every border of every level, plus far outside."""
    vals = [0.0, 1.0, -2.0, 3.0]
    for h, w in shapes:
        for n in (h, w):
            vals += [-1.0 / n, -0.5 / n, -0.5 / n + 1e-3, 0.5 / n, 1 - 0.5 / n, 1 + 0.5 / n, 1 + 1.0 / n, 1 - 1e-3]
    return sorted(set(vals))


def test_msda_matches_loop_at_every_border():
    g = torch.Generator().manual_seed(0)
    vals = border_points(SHAPES)
    grid = torch.tensor([(x, y) for x in vals for y in vals[::3]], dtype=torch.float64)
    Q, M, Dh, L, P = grid.shape[0], 2, 3, len(SHAPES), 2
    value = torch.randn(1, sum(h * w for h, w in SHAPES), M, Dh, generator=g, dtype=torch.float64)
    locs = grid[None, :, None, None, None, :].expand(1, Q, M, L, P, 2).clone()
    locs[..., 1, :] += torch.rand(1, Q, M, L, 2, generator=g, dtype=torch.float64) * 0.2 - 0.1
    weights = torch.rand(1, Q, M, L, P, generator=g, dtype=torch.float64)
    got = ops.msda(value, SHAPES, None, locs, weights).numpy()
    want = msda_loop(value.numpy(), SHAPES, locs.numpy(), weights.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_msda_far_outside_is_zero():
    value = torch.randn(2, 26, 2, 4, dtype=torch.float64)
    locs = torch.tensor([-5.0, 7.0], dtype=torch.float64).expand(2, 3, 2, 2, 2, 2)
    out = ops.msda(value, SHAPES, None, locs, torch.ones(2, 3, 2, 2, 2, dtype=torch.float64))
    assert torch.count_nonzero(out) == 0


def fgsa_loop(value, shapes, ref, links, offsets, logits, Hs):
    """The official structure: one deformable attention per side head, reference gathered per batch row."""
    B, K, _ = ref.shape
    HM, L = offsets.shape[2], len(shapes)
    M = HM // Hs
    norm = torch.tensor([[w, h] for h, w in shapes], dtype=ref.dtype)
    outs = []
    for h in range(Hs):
        side_ref = torch.stack([ref[b][links[b, :, h].long()] for b in range(B)])  # [B, K, 2]
        off = offsets[:, :, h * M:(h + 1) * M]
        locs = side_ref[:, :, None, None, None, :] + off / norm[None, None, None, :, None, :]
        w = torch.softmax(logits[:, :, h * M:(h + 1) * M], -1).view(B, K, M, L, -1)
        v = value[:, :, h * M:(h + 1) * M]
        outs.append(torch.from_numpy(msda_loop(v.numpy(), shapes, locs.numpy(), w.numpy())))
    return torch.cat(outs, -1)


@pytest.mark.parametrize("seed", [0, 1])
def test_fgsa_attention_equals_per_side_head_attention(seed):
    g = torch.Generator().manual_seed(seed)
    B, K, Hs, M, Dh, L, P = 2, 6, 3, 2, 4, len(SHAPES), 2
    dt = torch.float64
    value = torch.randn(B, 26, Hs * M, Dh, generator=g, dtype=dt)
    ref = torch.rand(B, K, 2, generator=g, dtype=dt) * 1.2 - 0.1
    ref[:, -1] = 0.0  # an invisible keypoint's raw (0, 0), reachable through links
    links = torch.randint(0, K, (B, K, Hs), generator=g, dtype=torch.int32)
    offsets = torch.randn(B, K, Hs * M, L, P, 2, generator=g, dtype=dt) * 2
    logits = torch.randn(B, K, Hs * M, L * P, generator=g, dtype=dt)
    got = ops.fgsa_attention(value, SHAPES, None, ref, links, offsets, logits)
    want = fgsa_loop(value, SHAPES, ref, links, offsets, logits, Hs)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
