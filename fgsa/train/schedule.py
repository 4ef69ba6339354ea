"""Learning rate of the official recipe (spec §5.5): mmcv step decay by epoch with linear warmup by iteration.

    lr(it, ep) = base * gamma ** #{s in steps: ep >= s}              (StepLrUpdaterHook, ep 0-based)
    during it < warmup_iters:  lr *= 1 - (1 - it / warmup_iters) * (1 - warmup_ratio)   (mmcv 'linear')

Official: base 1e-4, steps (160, 180), gamma 0.1, 1000 warmup iterations from 0.001 * base. The rate is a
pure function of (iteration, epoch), so resuming needs only those two numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StepWarmupSchedule:
    base_lr: float = 1e-4
    steps: tuple[int, ...] = (160, 180)
    gamma: float = 0.1
    warmup_iters: int = 1000
    warmup_ratio: float = 0.001

    def lr(self, iteration: int, epoch: int) -> float:
        """Rate for the update made at global ``iteration`` (0-based) during ``epoch`` (0-based)."""
        lr = self.base_lr * self.gamma ** sum(epoch >= s for s in self.steps)
        if iteration < self.warmup_iters:
            lr *= 1.0 - (1.0 - iteration / self.warmup_iters) * (1.0 - self.warmup_ratio)
        return lr

    def apply(self, optimizer: torch.optim.Optimizer, iteration: int, epoch: int) -> float:
        lr = self.lr(iteration, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr
