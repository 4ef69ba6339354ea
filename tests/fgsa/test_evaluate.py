"""fgsa.evaluate: the copy-support baseline, and the CLI end to end on a tiny generated set."""

import json

import numpy as np
import pytest
import torch

from fgsa.checkpoint import save_checkpoint
from fgsa.data.dataset import EpisodeDataset
from fgsa.data.layout import open_subset
from fgsa.data.synthetic import SyntheticConfig, generate
from fgsa.metrics.pck import PCKAccumulator
from fgsa.evaluate import BASELINE, MODEL, copy_support_points, evaluate, main, markdown_pck_table
from fgsa.model import FMMP

TINY = SyntheticConfig(seed=11, train_categories=1, val_categories=1, test_categories=2, instances_per_category=4)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic_eval"), TINY)


def test_copy_support_averages_the_annotated_shots():
    points = torch.tensor([[[[0.1, 0.2], [0.5, 0.5]], [[0.3, 0.4], [0.9, 0.9]], [[0.5, 0.0], [0.7, 0.1]]]])
    flags = torch.tensor([[[2, 0], [1, 0], [0, 0]]])  # keypoint 1: annotated in no shot -> mean of all shots
    out = copy_support_points(points, flags)
    torch.testing.assert_close(out, torch.tensor([[[0.2, 0.3], [0.7, 0.5]]]))


def test_copy_baseline_is_perfect_when_the_query_is_its_support(bench):
    ann = open_subset(bench.root, "test")
    pairs = [(i, i) for cid in ann.class_ids for i in ann.instances_by_category[cid]]
    result = evaluate(None, EpisodeDataset(ann, pairs), batch_size=4, progress=False)[BASELINE].result()
    assert result.num_images == len(pairs)
    assert result.pck.tolist() == [1.0, 1.0, 1.0, 1.0] and result.mpck == 1.0


def test_cli_runs_end_to_end_and_writes_json(bench, tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny.pth", FMMP("fmmp-tiny"))
    out = tmp_path / "pck.json"
    code = main(["--ckpt", str(ckpt), "--data", str(bench.root), "--split", "test", "--episodes", "1",
                 "--queries", "2", "--batch-size", "3", "--no-progress", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert f"| {MODEL} |" in text and f"| {BASELINE} |" in text and "PCK@0.05" in text
    payload = json.loads(out.read_text())
    assert payload["images"] == 2 * 2  # 2 categories x 1 episode x 2 queries
    for name in (MODEL, BASELINE):
        values = payload["results"][name]
        assert set(values) == {"PCK@0.05", "PCK@0.1", "PCK@0.15", "PCK@0.2", "mPCK"}
        assert all(0.0 <= v <= 1.0 for v in values.values())
        assert values["PCK@0.05"] <= values["PCK@0.1"] <= values["PCK@0.15"] <= values["PCK@0.2"]


def test_cli_reports_a_missing_checkpoint_clearly(bench, capsys):
    assert main(["--ckpt", "/nonexistent.pth", "--data", str(bench.root), "--no-progress"]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err


def test_markdown_table_rows():
    from fgsa.metrics import compute_pck

    r = compute_pck(np.zeros((1, 2, 2)), np.array([[[0.0, 0.0], [30.0, 0.0]]]), np.ones((1, 2), bool), [100.0])
    table = markdown_pck_table({"a": r}).splitlines()
    assert table[0] == "|  | PCK@0.05 | PCK@0.1 | PCK@0.15 | PCK@0.2 | mPCK | images |"
    assert table[2] == "| a | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 1 |"


def _official_decode(points, center, scale, size=256):
    """decode_output + mmpose transform_preds (use_udp=False), written from the authors' code: float32
    center/scale, float64 arithmetic, the result stored float32."""
    coords = np.asarray(points) * np.array([size, size])
    s = np.asarray(scale, np.float32) * 200.0
    c = np.asarray(center, np.float32)
    out = np.ones_like(coords)
    out[:, 0] = coords[:, 0] * (s[0] / size) + c[0] - s[0] * 0.5
    out[:, 1] = coords[:, 1] * (s[1] / size) + c[1] - s[1] * 0.5
    return out.astype(np.float32)


def _tie_pixel(g: float, norm: float, thr: float):
    """A float64 x (right of g) whose float32 value is the first float32 at or past the threshold (a miss),
    while x itself, scored in float64, is a hit; None where no such x exists."""
    def d32(v):
        return np.float32(abs(float(v) - g) / norm)
    x = np.float32(g + thr * norm)
    while d32(x) < np.float32(thr):
        x = np.nextafter(x, np.float32(np.inf))
    while d32(np.nextafter(x, np.float32(-np.inf))) >= np.float32(thr):
        x = np.nextafter(x, np.float32(-np.inf))
    below = float(np.nextafter(x, np.float32(-np.inf)))
    for frac in (0.1, 0.2, 0.3, 0.4):
        x64 = float(x) - frac * (float(x) - below)
        if np.float32(x64) == x and d32(x64) < np.float32(thr):
            return x64
    return None


class PointsModel(torch.nn.Module):
    """Stand-in for FMMP: returns fixed float64 normalised points for the one batch it is called with."""

    def __init__(self, points: torch.Tensor):
        super().__init__()
        self.register_buffer("points", points)

    def forward(self, query, *args, **kwargs):
        return [self.points[: query.shape[0]]]


def test_the_decode_rounds_to_float32_and_flips_verdicts_as_the_official_path(bench):
    from fgsa.data.dataset import collate
    from fgsa.metrics.pck import bbox_normalizer

    ann = open_subset(bench.root, "test")
    pairs = [(ids[0], q) for cid in ann.class_ids for ids in [ann.instances_by_category[cid]] for q in ids[1:]]
    ds = EpisodeDataset(ann, pairs)
    batch = collate([ds[i] for i in range(len(ds))])
    centers, scales = batch["query_center"].numpy(), batch["query_scale"].numpy()
    pixels = batch["query_keypoints"].numpy().copy()  # at the truth: a hit, except the ties placed below
    flips = 0
    for b in range(len(ds)):
        norm = bbox_normalizer(batch["query_bbox"][b].numpy())
        for k in range(int(batch["num_keypoints"][b])):
            x = _tie_pixel(float(pixels[b, k, 0]), norm, 0.1)
            if x is not None:
                pixels[b, k, 0], flips = x, flips + 1
    assert flips >= 10
    # normalised points that decode (float64) to those pixels
    s_px = (scales * np.float32(200.0)).astype(np.float64)
    half = (scales * np.float32(200.0)).astype(np.float64) * 0.5
    points = (pixels - centers[:, None].astype(np.float64) + half[:, None]) / s_px[:, None]
    result = evaluate(PointsModel(torch.from_numpy(points)), ds, batch_size=len(ds), progress=False)[MODEL].result()

    def score(decoded):
        acc = PCKAccumulator()
        for b in range(len(ds)):
            k = int(batch["num_keypoints"][b])
            acc.add(decoded[b], batch["query_keypoints"][b, :k].numpy(), batch["query_flags"][b, :k].numpy(),
                    batch["support_flags"][b, :, :k].numpy(), batch["query_bbox"][b].numpy())
        return acc.result()

    official = np.stack([_official_decode(points[b], centers[b], scales[b]) for b in range(len(ds))])
    np.testing.assert_array_equal(result.per_image, score(official).per_image)
    # the float64 pixels, unrounded, would have counted the ties at 0.1: the rounding flips verdicts
    unrounded = score(pixels)
    assert unrounded.pck[1] > result.pck[1] + 0.1
    np.testing.assert_array_equal(unrounded.pck[[0, 2, 3]], result.pck[[0, 2, 3]])
