"""`make demo`: the toolkit's main job end to end on the demo model. Grows with every capability.

Today: build the model (the demo checkpoint when present, else the fmmp-tiny preset with seeded random
weights), run one forward pass on generated inputs, and print keypoints and timing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from fgsa.checkpoint import load_model
from fgsa.model import FMMP
from fgsa.model.examples import random_inputs

DEMO_CKPT = Path("demo_out/fmmp-tiny-demo.pth")


def step(title: str) -> None:
    print(f"\n== {title}")


def forward_once(model: FMMP, shots: int) -> None:
    step(f"forward pass: {model.cfg.name}, B=1, S={shots}, K={model.cfg.max_keypoints}")
    inputs = random_inputs(model.cfg, batch=1, shots=shots, seed=0)
    with torch.inference_mode():
        model(**inputs)  # warm-up
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            points = model(**inputs)
            times.append(time.perf_counter() - t0)
    times.sort()
    print(f"output per-layer points {tuple(points.shape)}; median of 5: {times[2] * 1e3:.1f} ms "
          f"on {torch.get_num_threads()} CPU threads")
    size = model.cfg.input_size
    print("first 5 keypoints of the last layer (x, y) in crop pixels:")
    for k, (x, y) in enumerate(points[-1, 0, :5].tolist()):
        print(f"  k={k}: ({x * size:7.2f}, {y * size:7.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ckpt", type=Path, default=DEMO_CKPT)
    parser.add_argument("--shots", type=int, default=1)
    args = parser.parse_args()
    step("model")
    if args.ckpt.is_file():
        model = load_model(args.ckpt)
        print(f"loaded {args.ckpt} ({model.cfg.name})")
    else:
        torch.manual_seed(0)
        model = FMMP("fmmp-tiny").eval()
        print(f"{args.ckpt} not found: fmmp-tiny with seeded random weights")
    params = sum(p.numel() for p in model.parameters())
    print(f"{params:,} parameters")
    forward_once(model, args.shots)


if __name__ == "__main__":
    main()
