"""Training loop: one step lowers the loss; the CLI writes self-describing checkpoints and resumes exactly."""

import pytest
import torch

from fgsa.checkpoint import read_checkpoint
from fgsa.data.dataset import TrainingPairDataset, collate, forward_inputs
from fgsa.data.layout import open_subset
from fgsa.train.cli import main as train_main
from fgsa.train.loss import fmmp_loss
from fgsa.train.trainer import TrainConfig, Trainer, build_model


def _loss(model, batch) -> float:
    torch.manual_seed(123)  # the same dropout masks for the before / after comparison
    with torch.no_grad():
        pred = model(**forward_inputs(batch))
    return float(fmmp_loss(pred, batch["query_points"], batch["query_visible"], batch["K_c"]).total)


def test_one_optimizer_step_lowers_the_loss_on_a_fixed_batch(tiny_train_set, tmp_path):
    torch.manual_seed(0)
    ann = open_subset(tiny_train_set.root, "train")
    dataset = TrainingPairDataset(ann, num_shots=1, seed=0)
    batch = collate([dataset[0], dataset[1]])
    model = build_model("fmmp-tiny", seed=0).train()
    trainer = Trainer(model, dataset, tmp_path, TrainConfig(batch_size=2, lr=1e-3, warmup_iters=0), progress=False)
    before = _loss(model, batch)
    torch.manual_seed(123)
    total, real, mix = trainer.step(batch)
    after = _loss(model, batch)
    assert total == before and real > 0 and mix > 0
    assert after < before - 1e-3, (before, after)
    assert trainer.state.iteration == 1


def _weights(path):
    return read_checkpoint(path).state_dict


@pytest.mark.slow
def test_cli_checkpoints_and_exact_resume(tiny_train_set, tmp_path, capsys):
    common = ["--config", "fmmp-tiny", "--data", str(tiny_train_set.root), "--batch-size", "2",
              "--warmup-iters", "2", "--lr", "1e-3", "--seed", "1", "--no-progress"]
    # an epoch is 2 batches (2 categories x 2 instances): one uninterrupted epoch, and 1 step + resume for 1 more
    assert train_main(common + ["--out", str(tmp_path / "a"), "--max-iters", "2"]) == 0
    assert train_main(common + ["--out", str(tmp_path / "b"), "--max-iters", "1"]) == 0
    mid = read_checkpoint(tmp_path / "b" / "last.pth")
    assert mid.meta["iteration"] == 1 and mid.meta["batch_in_epoch"] == 1 and mid.meta["epoch"] == 0
    assert not (tmp_path / "b" / "epoch_001.pth").exists()
    assert train_main(common + ["--out", str(tmp_path / "b"), "--max-iters", "2", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    a, b = read_checkpoint(tmp_path / "a" / "last.pth"), read_checkpoint(tmp_path / "b" / "last.pth")
    assert a.config.name == "fmmp-tiny" and a.layout == "fgsa-deploy"
    assert a.meta["iteration"] == b.meta["iteration"] == 2 and a.meta["epoch"] == b.meta["epoch"] == 1
    for key, value in a.state_dict.items():
        assert torch.equal(value, b.state_dict[key]), key
    for key, value in a.meta["optimizer"]["state"][0].items():
        assert torch.equal(value, b.meta["optimizer"]["state"][0][key])
    # the finished epoch wrote its checkpoint: weights + config + meta, no optimizer state
    epoch = read_checkpoint(tmp_path / "b" / "epoch_001.pth")
    assert epoch.meta["epoch"] == 1 and "optimizer" not in epoch.meta
    assert torch.equal(epoch.state_dict["backbone.conv1.weight"], b.state_dict["backbone.conv1.weight"])
    assert (tmp_path / "b" / "log.jsonl").read_text().count("\n") == 2


def test_freeze_bn_puts_only_batchnorm_in_eval_mode():
    from fgsa.model import FMMP
    from fgsa.train.trainer import set_batchnorm_mode

    model = FMMP("fmmp-tiny").train()
    set_batchnorm_mode(model, frozen=True)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert model.predictor.training and model.backbone.conv1.training
