"""Forward contract, dtype genericity, batch independence and the reproduced quirks."""

import math

import pytest
import torch

from fgsa.errors import InputError
from fgsa.model import FMMP, SupportState
from fgsa.model.examples import random_inputs
from fgsa.model.positional import encode_keypoint_order, encode_points


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    m = FMMP("fmmp-tiny").eval()
    with torch.no_grad():  # non-trivial attention: random offsets and logits instead of zero init
        for p in m.predictor.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


def test_output_contract(tiny):
    inputs = random_inputs(tiny.cfg, batch=2, shots=3, seed=1)
    with torch.no_grad():
        out = tiny(**inputs)
    assert out.shape == (3, 2, 70, 2) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and ((out > 0) & (out < 1)).all()


def test_float64_runs_and_agrees_with_float32(tiny):
    inputs = random_inputs(tiny.cfg, batch=1, shots=2, seed=2)
    with torch.no_grad():
        out32 = tiny(**inputs)
        m64 = FMMP(tiny.cfg).double().eval()
        m64.load_state_dict(tiny.state_dict())
        out64 = m64(**{k: v.double() if v.is_floating_point() else v for k, v in inputs.items()})
    assert out64.dtype == torch.float64
    assert (out64 - out32.double()).abs().max() < 1e-4  # fp32 noise floor (spec §9)


def test_batch_rows_are_independent(tiny):
    inputs = random_inputs(tiny.cfg, batch=3, shots=2, seed=3)
    with torch.no_grad():
        full = tiny(**inputs)
        for b in range(3):
            row = tiny(**{k: v[b:b + 1] for k, v in inputs.items()})
            torch.testing.assert_close(row, full[:, b:b + 1], rtol=1e-5, atol=1e-5)


def test_split_equals_full(tiny):
    inputs = random_inputs(tiny.cfg, batch=2, shots=2, seed=4)
    with torch.no_grad():
        full = tiny(**inputs)
        keypoints = [inputs[k] for k in ("support_points", "support_visible", "support_links")]
        state = tiny.encode_support(inputs["support"], *keypoints)
        split = tiny.predict(inputs["query"], state, *keypoints)
    # the same operations in the same order: bit-identical, not just close
    torch.testing.assert_close(split, full, rtol=0, atol=0)
    names = state.names()
    assert names == ["support_embed", "support_pos"] + [f"support_values_{i}" for i in range(1, tiny.cfg.n_layers)]
    rebuilt = SupportState.from_named(names[::-1], [t for _, t in state.named()][::-1])
    with torch.no_grad():
        torch.testing.assert_close(tiny.predict(inputs["query"], rebuilt, *keypoints), full, rtol=0, atol=0)


def test_predict_rejects_a_state_of_another_batch(tiny):
    inputs = random_inputs(tiny.cfg, batch=2, shots=1, seed=6)
    keypoints = [inputs[k] for k in ("support_points", "support_visible", "support_links")]
    with torch.no_grad():
        state = tiny.encode_support(inputs["support"], *keypoints)
        with pytest.raises(InputError, match="query: expected the support state's batch size"):
            tiny.predict(inputs["query"][:1], state, *keypoints)
        with pytest.raises(InputError, match="state: expected the SupportState"):
            tiny.predict(inputs["query"], {"support_embed": state.embed}, *keypoints)


def test_query_decoder_uses_last_shot_links(tiny):
    """Quirk Q2: every decoder layer samples with the LAST support shot's link table, support layers with
    their own shot's."""
    inputs = random_inputs(tiny.cfg, batch=2, shots=3, seed=5)
    seen = {"dec": [], "sup": []}
    hooks = [layer.deform_attn.register_forward_pre_hook(lambda m, a, key=key: seen[key].append(a[3].clone()))
             for key, layers in (("dec", tiny.predictor.decoder_layers), ("sup", tiny.predictor.support_layers))
             for layer in layers]
    try:
        with torch.no_grad():
            tiny(**inputs)
    finally:
        for h in hooks:
            h.remove()
    links = inputs["support_links"]
    assert len(seen["dec"]) == 3 and all(torch.equal(x, links[:, -1]) for x in seen["dec"])
    assert all(torch.equal(x, links.reshape(6, 70, -1)) for x in seen["sup"])


def test_invisible_everywhere_starts_from_zero_embedding(tiny):
    """Quirk Q7: a keypoint invisible in every shot averages to E = 0 (clamp 0.1), it is not masked out."""
    inputs = random_inputs(tiny.cfg, batch=1, shots=2, seed=6)
    inputs["support_visible"][:, :, 5] = False
    with torch.no_grad():
        out = tiny(**inputs)
    assert torch.isfinite(out).all()


def test_keypoint_order_encoding_normal_case():
    K, d = 70, 64
    x = torch.rand(2, K) * 1.9 - 0.95  # all inside (-1, 1): pure index encoding
    got = encode_keypoint_order(x, d)
    j = torch.arange(d // 4, dtype=torch.float64)  # frequencies of one half
    t = 10000 ** (2 * j / (d // 2))
    def enc(a):
        a = torch.as_tensor(a, dtype=torch.float64)[..., None] / t
        return torch.stack((a.sin(), a.cos()), -1).flatten(-2)
    k = torch.arange(1, K + 1, dtype=torch.float64)
    want_y = enc(torch.full((K,), 2 * math.pi / (1 + 1e-6)))
    want_x = enc(2 * math.pi * k / (K + 1e-6))
    want = torch.cat((want_y, want_x), -1)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got[0].double(), want, rtol=0, atol=2e-5)
    torch.testing.assert_close(got[1], got[0])


def test_keypoint_order_quirk_for_points_outside():
    """Quirk Q1: an x >= 1 in shot 0 turns n = 1 - trunc(x) to 0 and shifts the cumulative index."""
    x = torch.zeros(1, 5)
    x[0, 2] = 1.3
    got = encode_keypoint_order(x, 8)
    base = encode_keypoint_order(torch.zeros(1, 5), 8)
    # keypoint 2 has y-angle 0 (n = 0): sin terms 0, cos terms 1
    torch.testing.assert_close(got[0, 2, :4], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert not torch.allclose(got[0, 4], base[0, 4])  # normaliser changed: cumsum ends at 4, not 5


def test_point_encoding_layout():
    pts = torch.tensor([[[0.25, 0.75]]], dtype=torch.float64)
    enc = encode_points(pts, 8)
    # y half first: sin(2*pi*0.75), cos(2*pi*0.75) at frequency 1
    torch.testing.assert_close(enc[0, 0, :2], torch.tensor([math.sin(1.5 * math.pi), math.cos(1.5 * math.pi)],
                                                         dtype=torch.float64))
    torch.testing.assert_close(enc[0, 0, 4:6], torch.tensor([math.sin(0.5 * math.pi), math.cos(0.5 * math.pi)],
                                                           dtype=torch.float64))
