"""fgsa.evaluate: the copy-support baseline, and the CLI end to end on a tiny generated set."""

import json

import pytest
import torch

from fgsa.checkpoint import save_checkpoint
from fgsa.data.dataset import EpisodeDataset
from fgsa.data.layout import open_subset
from fgsa.data.synthetic import SyntheticConfig, generate
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
    import numpy as np

    r = compute_pck(np.zeros((1, 2, 2)), np.array([[[0.0, 0.0], [30.0, 0.0]]]), np.ones((1, 2), bool), [100.0])
    table = markdown_pck_table({"a": r}).splitlines()
    assert table[0] == "|  | PCK@0.05 | PCK@0.1 | PCK@0.15 | PCK@0.2 | mPCK | images |"
    assert table[2] == "| a | 50.00 | 50.00 | 50.00 | 50.00 | 50.00 | 1 |"
