"""The training loop of the official recipe: episodes -> FMMP -> per-layer L1 -> Adam with warmup + step decay.

Outputs in ``out_dir``:
- ``epoch_NNN.pth`` every ``save_interval`` epochs: weights + embedded config + meta (no optimizer state);
- ``last.pth``: the same plus the training state needed to resume exactly (Adam state, torch RNG state,
  epoch, position inside the epoch, global iteration), written at every epoch end and when a budget
  (``max_iters`` / ``max_minutes``) stops the run;
- ``log.jsonl``: one JSON line per epoch (or budget stop): mean losses, lr, seconds.

Everything in a checkpoint is tensors and plain containers, so ``torch.load(weights_only=True)`` (and
:func:`fgsa.checkpoint.read_checkpoint`) reads it. On CPU the run is deterministic for a given seed, torch
version and thread count: dropout draws come from the torch generator seeded here (its state is saved and
restored on resume) and every data item from its own NumPy generator (see ``fgsa.data.dataset``).
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, Subset

from fgsa.checkpoint import read_checkpoint, save_checkpoint
from fgsa.data.dataset import TrainingPairDataset, collate, forward_inputs
from fgsa.errors import CheckpointError, InputError
from fgsa.model import FMMP
from fgsa.train.init import load_backbone_weights, official_init
from fgsa.train.loss import MIX_WEIGHT, fmmp_loss
from fgsa.train.schedule import StepWarmupSchedule

LAST = "last.pth"
#: TrainConfig fields that define the recipe (a resume that changes them gets a warning; budgets may change).
RECIPE_FIELDS = ("batch_size", "lr", "warmup_iters", "warmup_ratio", "lr_steps", "lr_gamma", "mix_weight",
                 "shots", "seed", "augment", "freeze_bn")


@dataclass
class TrainConfig:
    """Recipe and run settings; the defaults are the official s1 recipe (spec §5)."""

    epochs: int = 200
    batch_size: int = 16
    lr: float = 1e-4
    warmup_iters: int = 1000
    warmup_ratio: float = 0.001
    lr_steps: tuple[int, ...] = (160, 180)
    lr_gamma: float = 0.1
    mix_weight: float = MIX_WEIGHT
    shots: int = 1
    seed: int = 0
    augment: bool = True
    freeze_bn: bool = False       # True: BatchNorm uses running statistics (eval mode) while training
    workers: int = 0
    device: str = "cpu"
    max_iters: int | None = None  # stop after this many optimizer steps in total (deterministic budget)
    max_minutes: float | None = None  # stop after this much wall time (not deterministic)
    save_interval: int = 1

    def schedule(self) -> StepWarmupSchedule:
        return StepWarmupSchedule(self.lr, tuple(self.lr_steps), self.lr_gamma, self.warmup_iters, self.warmup_ratio)

    def check(self) -> None:
        for name in ("epochs", "batch_size", "shots", "save_interval"):
            if int(getattr(self, name)) < 1:
                raise InputError(name, "a positive integer", getattr(self, name))
        if not self.lr > 0:
            raise InputError("lr", "a positive learning rate", self.lr)
        if self.warmup_iters < 0 or self.workers < 0:
            raise InputError("warmup_iters / workers", ">= 0", (self.warmup_iters, self.workers))


@dataclass
class TrainState:
    epoch: int = 0            # epochs completed
    batch_in_epoch: int = 0   # batches done in the current (incomplete) epoch
    iteration: int = 0        # optimizer steps done in total


@dataclass
class TrainResult:
    state: TrainState
    last_checkpoint: Path
    history: list[dict] = field(default_factory=list)
    stopped_by_budget: bool = False


def set_batchnorm_mode(model: torch.nn.Module, frozen: bool) -> None:
    """After ``model.train()``: put BatchNorm layers in eval mode (running statistics) when ``frozen``."""
    if frozen:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def _plain(value: Any) -> Any:
    """Config values as weights_only-loadable plain data (paths -> str, tuples -> lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class Trainer:
    """Holds model, optimizer, data and state; :meth:`run` trains until done or a budget is spent."""

    def __init__(self, model: FMMP, dataset: TrainingPairDataset, out_dir: str | Path, cfg: TrainConfig,
                 progress: bool = True, data_desc: str = ""):
        cfg.check()
        if dataset.num_shots != cfg.shots:
            raise InputError("shots", f"the dataset's number of shots ({dataset.num_shots})", cfg.shots)
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        self.model = model.to(self.device)
        self.dataset = dataset
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.data_desc = data_desc
        self.schedule = cfg.schedule()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.state = TrainState()

    # -- checkpoints ---------------------------------------------------------------------------------

    def _meta(self, full: bool, loss: float | None) -> dict:
        meta = {"kind": "fmmp-training", "epoch": self.state.epoch, "batch_in_epoch": self.state.batch_in_epoch,
                "iteration": self.state.iteration, "loss": loss, "data": self.data_desc,
                "train_config": _plain(dataclasses.asdict(self.cfg))}
        if full:
            meta["optimizer"] = self.optimizer.state_dict()
            meta["torch_rng_state"] = torch.get_rng_state()
            if self.device.type == "cuda":
                meta["cuda_rng_state"] = torch.cuda.get_rng_state(self.device)
        return meta

    def save(self, name: str, full: bool, loss: float | None) -> Path:
        return save_checkpoint(self.out_dir / name, self.model, self._meta(full, loss))

    def resume(self, path: str | Path) -> None:
        """Restore weights, optimizer, RNG and position from a ``last.pth`` written by this trainer."""
        ckpt = read_checkpoint(path)
        if ckpt.config != self.model.cfg:
            raise CheckpointError(f"{path}: trained with config '{ckpt.config.name}', this run uses "
                                  f"'{self.model.cfg.name}'; pass the same --config or start a new --out")
        meta = ckpt.meta
        if "optimizer" not in meta or "torch_rng_state" not in meta:
            raise CheckpointError(f"{path}: no training state (optimizer, RNG) in its meta; resume from the "
                                  f"{LAST} of a training run, or start from its weights with --init")
        self.model.load_state_dict(ckpt.state_dict, strict=True)
        self.optimizer.load_state_dict(meta["optimizer"])
        torch.set_rng_state(meta["torch_rng_state"])
        if self.device.type == "cuda" and "cuda_rng_state" in meta:
            torch.cuda.set_rng_state(meta["cuda_rng_state"], self.device)
        stored = meta.get("train_config") or {}
        now = _plain(dataclasses.asdict(self.cfg))
        changed = [k for k in RECIPE_FIELDS if k in stored and stored[k] != now[k]]
        if changed:
            warnings.warn(f"resuming {path} with a different recipe: " + ", ".join(
                f"{k} {stored[k]} -> {now[k]}" for k in changed), stacklevel=2)
        self.state = TrainState(int(meta["epoch"]), int(meta["batch_in_epoch"]), int(meta["iteration"]))

    # -- loop ----------------------------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        self.dataset.set_epoch(self.state.epoch)
        start = self.state.batch_in_epoch * self.cfg.batch_size
        data = self.dataset if start == 0 else Subset(self.dataset, range(start, len(self.dataset)))
        # a private generator: creating the loader must not consume the global torch RNG (dropout's), or a
        # resumed run would draw different dropout masks than an uninterrupted one
        return DataLoader(data, batch_size=self.cfg.batch_size, shuffle=False, collate_fn=collate,
                          num_workers=self.cfg.workers, pin_memory=self.device.type == "cuda",
                          generator=torch.Generator().manual_seed(self.cfg.seed))

    def step(self, batch: dict[str, torch.Tensor]) -> tuple[float, float, float]:
        """One optimizer step on a batch -> (total, real, mix) losses before the step."""
        lr = self.schedule.apply(self.optimizer, self.state.iteration, self.state.epoch)
        dev = self.device
        pred = self.model(**forward_inputs(batch, dev))
        terms = fmmp_loss(pred, batch["query_points"].to(dev), batch["query_visible"].to(dev),
                          batch["K_c"].to(dev), self.cfg.mix_weight)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        self.state.iteration += 1
        self.last_lr = lr
        return float(terms.total.detach()), float(terms.real.detach()), float(terms.mix.detach())

    def _budget_spent(self, t0: float) -> bool:
        cfg = self.cfg
        if cfg.max_iters is not None and self.state.iteration >= cfg.max_iters:
            return True
        return cfg.max_minutes is not None and (time.perf_counter() - t0) / 60.0 >= cfg.max_minutes

    def run(self, on_epoch: Callable[[dict], None] | None = None) -> TrainResult:
        from tqdm import tqdm

        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.out_dir / "log.jsonl"
        history: list[dict] = []
        t0 = time.perf_counter()
        stopped = self._budget_spent(t0)
        while self.state.epoch < cfg.epochs and not stopped:
            self.model.train()
            set_batchnorm_mode(self.model, cfg.freeze_bn)
            loader = self._loader()
            n_batches = -(-len(self.dataset) // cfg.batch_size)
            sums, count, t_epoch = [0.0, 0.0, 0.0], 0, time.perf_counter()
            bar = tqdm(total=n_batches, initial=self.state.batch_in_epoch, disable=None if self.progress else True,
                       desc=f"epoch {self.state.epoch + 1}/{cfg.epochs}", dynamic_ncols=True, leave=True)
            for batch in loader:
                losses = self.step(batch)
                self.state.batch_in_epoch += 1
                sums = [s + v for s, v in zip(sums, losses)]
                count += 1
                bar.update(1)
                bar.set_postfix(loss=f"{losses[0]:.4f}", avg=f"{sums[0] / count:.4f}", lr=f"{self.last_lr:.2e}")
                if self._budget_spent(t0):
                    stopped = self.state.batch_in_epoch < n_batches
                    break
            bar.close()
            if self.state.batch_in_epoch >= n_batches:
                self.state.epoch += 1
                self.state.batch_in_epoch = 0
            record = {"epoch": self.state.epoch, "batch_in_epoch": self.state.batch_in_epoch,
                      "iteration": self.state.iteration, "batches": count,
                      "loss": sums[0] / max(count, 1), "loss_real": sums[1] / max(count, 1),
                      "loss_mix": sums[2] / max(count, 1), "lr": getattr(self, "last_lr", None),
                      "seconds": time.perf_counter() - t_epoch}
            history.append(record)
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            if on_epoch is not None:
                on_epoch(record)
            if self.state.batch_in_epoch == 0 and self.state.epoch % cfg.save_interval == 0:
                self.save(f"epoch_{self.state.epoch:03d}.pth", full=False, loss=record["loss"])
            self.save(LAST, full=True, loss=record["loss"])
            stopped = stopped or self._budget_spent(t0)
        last = self.out_dir / LAST
        if not last.is_file():  # nothing to do (already complete): still leave a last.pth behind
            self.save(LAST, full=True, loss=None)
        return TrainResult(self.state, last, history, stopped_by_budget=self.state.epoch < cfg.epochs)


def build_model(config, seed: int, init: str | Path | None = None,
                backbone_weights: str | Path | None = None) -> FMMP:
    """A model to train: official init from ``seed``, then optional ImageNet backbone or full FMMP weights."""
    model = official_init(FMMP(config), seed=seed)
    if backbone_weights is not None:
        load_backbone_weights(model, backbone_weights)
    if init is not None:
        ckpt = read_checkpoint(init, model.cfg)
        model.load_state_dict(ckpt.state_dict, strict=True)
    return model
