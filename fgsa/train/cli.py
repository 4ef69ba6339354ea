"""``python -m fgsa.train``: train FMMP with the official recipe on MP-100 or the synthetic benchmark.

    python -m fgsa.train --config fmmp-tiny --data DIR --out OUT [--mp100-split 1] [--epochs 200]
        [--batch-size 16] [--lr 1e-4] [--warmup-iters 1000] [--lr-steps 160 180] [--shots 1] [--seed 0]
        [--device cpu|cuda] [--resume [CKPT]] [--init CKPT] [--backbone-weights RESNET.pth]
        [--max-iters N] [--max-minutes M] [--freeze-bn] [--no-augment] [--workers 0] [--threads N]

``--config``: a preset (fmmp-tiny, fmmp-r50) or a JSON file of ModelConfig fields. ``--data``: a folder
as :mod:`fgsa.data.layout` describes (``python -m fgsa.data.synthetic --out DIR`` writes one); the
'train' subset is used (``--split`` picks the official MP-100 split). ``--resume`` without a path
continues from OUT/last.pth. Defaults are the official s1 recipe (docs/FMMP_MODEL.md §5); short CPU runs
want fewer ``--warmup-iters``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fgsa.cli import add_data, command
from fgsa.errors import InputError
from fgsa.model import get_config
from fgsa.model.config import PRESETS


def load_config_arg(value: str):
    """A preset name or a JSON file of ModelConfig fields."""
    if value in PRESETS:
        return get_config(value)
    path = Path(value)
    if path.suffix == ".json" and path.is_file():
        return get_config(json.loads(path.read_text()))
    raise InputError("--config", f"a preset {sorted(PRESETS)} or a .json file of model config fields", value)


def build_parser() -> argparse.ArgumentParser:
    from fgsa.train.trainer import TrainConfig

    d = TrainConfig()
    ap = argparse.ArgumentParser(prog="python -m fgsa.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="fmmp-tiny | fmmp-r50 | path.json")
    add_data(ap)
    ap.add_argument("--out", required=True, type=Path, help="output folder for checkpoints and log.jsonl")
    ap.add_argument("--mp100-split", "--split", dest="split", type=int, default=1,
                    help="official MP-100 split 1..5 (ignored with splits.json; --split is the old name)")
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--warmup-iters", type=int, default=d.warmup_iters)
    ap.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio)
    ap.add_argument("--lr-steps", type=int, nargs="*", default=list(d.lr_steps), help="epochs of x0.1 decay")
    ap.add_argument("--lr-gamma", type=float, default=d.lr_gamma)
    ap.add_argument("--mix-weight", type=float, default=d.mix_weight)
    ap.add_argument("--shots", type=int, default=d.shots)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--no-augment", action="store_true", help="no random scale/rotation")
    ap.add_argument("--freeze-bn", action="store_true",
                    help="BatchNorm in eval mode (running stats) while training; official: batch statistics")
    ap.add_argument("--device", default=d.device, help="cpu | cuda | cuda:N")
    ap.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--resume", nargs="?", const="auto", default=None,
                    help="continue from CKPT (default OUT/last.pth): weights, optimizer, RNG, position")
    ap.add_argument("--init", type=Path, default=None, help="start from these FMMP weights (fine-tuning)")
    ap.add_argument("--backbone-weights", type=Path, default=None,
                    help="torchvision-format ResNet state_dict for the backbone (official: ImageNet)")
    ap.add_argument("--max-iters", type=int, default=None, help="stop after this many optimizer steps in total")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop after this much wall time")
    ap.add_argument("--save-interval", type=int, default=d.save_interval, help="epochs between epoch_NNN.pth")
    ap.add_argument("--keypoint-count", choices=("annotation", "skeleton"), default="annotation",
                    help="K_c rule (skeleton = the official max-index+1, see fgsa.preprocess)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


@command(one_line=False)
def main(argv: list[str] | None = None) -> int:
    from fgsa.data.dataset import TrainingPairDataset
    from fgsa.data.layout import open_subset
    from fgsa.train.trainer import LAST, TrainConfig, Trainer, build_model

    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_cfg = load_config_arg(args.config)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      warmup_iters=args.warmup_iters, warmup_ratio=args.warmup_ratio,
                      lr_steps=tuple(args.lr_steps), lr_gamma=args.lr_gamma, mix_weight=args.mix_weight,
                      shots=args.shots, seed=args.seed, augment=not args.no_augment,
                      freeze_bn=args.freeze_bn, workers=args.workers, device=args.device,
                      max_iters=args.max_iters, max_minutes=args.max_minutes, save_interval=args.save_interval)
    ann = open_subset(args.data, "train", args.split, args.image_root)
    dataset = TrainingPairDataset(ann, cfg.shots, cfg.seed, augment=cfg.augment,
                                  keypoint_count=args.keypoint_count)
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg, cfg.seed, args.init, args.backbone_weights)
    trainer = Trainer(model, dataset, args.out, cfg, progress=not args.no_progress,
                      data_desc=f"{args.data} train ({len(ann.class_ids)} categories)")
    if args.resume is not None:
        path = args.out / LAST if args.resume == "auto" else Path(args.resume)
        trainer.resume(path)
        print(f"resumed from {path}: epoch {trainer.state.epoch}, batch {trainer.state.batch_in_epoch}, "
              f"iteration {trainer.state.iteration}")
    print(f"training {model_cfg.name} ({sum(p.numel() for p in model.parameters()):,} parameters) on "
          f"{len(ann.class_ids)} categories, {len(dataset)} pairs per epoch, batch {cfg.batch_size}, "
          f"device {cfg.device}")
    t0 = time.perf_counter()
    result = trainer.run()
    last = result.history[-1]["loss"] if result.history else float("nan")
    why = "budget reached" if result.stopped_by_budget else "done"
    print(f"{why}: epoch {result.state.epoch}/{cfg.epochs}, iteration {result.state.iteration}, "
          f"last mean loss {last:.4f}, {time.perf_counter() - t0:.0f} s; checkpoint {result.last_checkpoint}")
    return 0
