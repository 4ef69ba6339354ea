"""The official loss on hand-computed cases: real vs mixup weighting, the 0.1 clamp, the sum over layers."""

import pytest
import torch

from fgsa.errors import InputError
from fgsa.train.loss import fmmp_loss

# 2 layers, 2 queries, 3 keypoints; layer 0 predicts (0, 0) everywhere, layer 1 (0.1, 0)
PRED = torch.stack([torch.zeros(2, 3, 2), torch.tensor([0.1, 0.0], dtype=torch.float64).expand(2, 3, 2)]).double()
TARGET = torch.tensor([[[0.5, 0.5], [0.2, 0.0], [0.0, 0.4]],
                       [[1.0, 0.0], [0.0, 0.0], [0.3, 0.3]]], dtype=torch.float64)
VISIBLE = torch.tensor([[True, True, True], [True, False, True]])
# L1 per layer: layer 0 -> [[1.0, 0.2, 0.4], [1.0, 0.0, 0.6]]; layer 1 -> [[0.9, 0.1, 0.5], [0.9, 0.1, 0.5]]


def test_real_and_mix_terms_by_hand():
    terms = fmmp_loss(PRED, TARGET, VISIBLE, torch.tensor([2, 1]))
    # real: row 0 keypoints {0, 1}: (1.0+0.2)/2 + (0.9+0.1)/2 = 1.1; row 1 keypoint {0}: 1.0 + 0.9 = 1.9
    assert float(terms.real) == pytest.approx((1.1 + 1.9) / 2, abs=1e-12)
    # mix: row 0 keypoint {2}: 0.4 + 0.5 = 0.9; row 1 keypoint {2} (keypoint 1 is invisible): 0.6 + 0.5 = 1.1
    assert float(terms.mix) == pytest.approx((0.9 + 1.1) / 2, abs=1e-12)
    assert float(terms.total) == pytest.approx(1.5 + 0.5 * 1.0, abs=1e-12)
    assert float(fmmp_loss(PRED, TARGET, VISIBLE, torch.tensor([2, 1]), mix_weight=2.0).total) == pytest.approx(3.5)


def test_a_query_without_mix_points_adds_zero_through_the_clamp():
    terms = fmmp_loss(PRED, TARGET, VISIBLE, torch.tensor([3, 1]))  # row 0: every keypoint is real
    assert float(terms.mix) == pytest.approx((0.0 + 1.1) / 2, abs=1e-12)  # row 0 counts, as 0 / 0.1
    assert float(terms.real) == pytest.approx(((1.6 / 3 + 1.5 / 3) + 1.9) / 2, abs=1e-12)
    nothing_visible = fmmp_loss(PRED, TARGET, torch.zeros(2, 3, dtype=torch.bool), torch.tensor([2, 1]))
    assert float(nothing_visible.total) == 0.0


def test_layers_are_summed_not_averaged():
    one = fmmp_loss(PRED[1:], TARGET, VISIBLE, torch.tensor([2, 1])).total
    three = fmmp_loss(PRED[1:].expand(3, -1, -1, -1), TARGET, VISIBLE, torch.tensor([2, 1])).total
    assert float(three) == pytest.approx(3 * float(one), abs=1e-12)


def test_gradient_flows_only_into_the_predictions():
    pred = PRED.clone().requires_grad_(True)
    fmmp_loss(pred, TARGET, VISIBLE, torch.tensor([2, 1])).total.backward()
    assert pred.grad[:, 1, 1].abs().sum() == 0  # invisible keypoint: no gradient
    assert pred.grad[:, 0].abs().sum() > 0


def test_shape_errors_name_the_arguments():
    with pytest.raises(InputError, match="pred"):
        fmmp_loss(PRED[0], TARGET, VISIBLE, torch.tensor([2, 1]))
    with pytest.raises(InputError, match="k_c"):
        fmmp_loss(PRED, TARGET, VISIBLE, torch.tensor([2]))
