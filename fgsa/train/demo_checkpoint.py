"""The ``make demo`` model: fmmp-tiny trained on the synthetic benchmark, stored in float16 (< 8 MB).

    python -m fgsa.train.demo_checkpoint --out demo_out/fmmp-tiny-demo.pth [--data demo_out/synthetic]
        [--work demo_out/demo_train] [--iters N] [--threads 1] [--eval-episodes 10] [--eval-queries 5]

1. generates the default synthetic benchmark (``fgsa.data.synthetic``, seed 0) into ``--data`` if missing;
2. trains fmmp-tiny with :data:`DEMO_RECIPE` (the official loss, mixup padding and augmentation, Adam with
   warmup and step decay; a higher rate and fewer warmup iterations than the official 200-epoch recipe, as
   the budget is about a thousand steps) for a fixed number of iterations, so the result is deterministic
   for a given torch version and thread count; ``--work`` keeps ``last.pth``, and an interrupted run
   continues from it;
3. writes the weights in float16 with the config embedded (``load_model`` copies them into float32
   parameters; the file is what gets evaluated);
4. evaluates that file on the held-out test categories next to the copy-support baseline.

The repository ships the result as ``fgsa/assets/fmmp-tiny-demo.pth``; this script is how it was made
(defaults, ``--threads 1``: 1,125 steps in 74 min on one shared CPU core, final epoch loss 0.528; mPCK 71.4
vs 40.9 for the copy-support baseline on 10 x 5 episodes of the 20 test categories). The model code
changed after that run (fef40c2, batched side-head GEMM: same math, other rounding), so a rerun gives
close but not bit-identical weights.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

from fgsa.checkpoint import file_sha256, load_model, save_checkpoint
from fgsa.model import FMMP

#: Where the repository keeps the trained demo checkpoint.
SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "fmmp-tiny-demo.pth"

#: The demo recipe (fgsa.train.trainer.TrainConfig fields).
DEMO_RECIPE = dict(batch_size=8, lr=1e-3, warmup_iters=100, warmup_ratio=0.001, lr_steps=(4,), lr_gamma=0.1,
                   epochs=5, seed=0, shots=1, augment=True, freeze_bn=False)
DEMO_ITERS = 5 * 225  # 5 epochs of the default benchmark's 1,800 training pairs at batch 8


def save_half_checkpoint(model: FMMP, path: str | Path, meta: dict | None = None) -> Path:
    """Our checkpoint layout with every floating-point tensor stored as float16 (half the size)."""
    half = copy.deepcopy(model).cpu().half()  # integer buffers (num_batches_tracked) stay int64
    return save_checkpoint(path, half, {**(meta or {}), "stored_dtype": "float16"})


def ensure_benchmark(data: Path) -> Path:
    from fgsa.data.synthetic import ANN_NAME, SyntheticConfig, generate

    if not (data / "annotations" / ANN_NAME).is_file():
        print(f"generating the synthetic benchmark into {data} ...", flush=True)
        out = generate(data, SyntheticConfig())
        print(f"  {out.num_images} images in {out.seconds:.0f} s", flush=True)
    return data


def main(argv: list[str] | None = None) -> int:
    from fgsa.data.dataset import EpisodeDataset, TrainingPairDataset
    from fgsa.data.layout import open_subset
    from fgsa.evaluate import evaluate, markdown_pck_table
    from fgsa.train.trainer import LAST, TrainConfig, Trainer, build_model

    ap = argparse.ArgumentParser(prog="python -m fgsa.train.demo_checkpoint", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("demo_out/fmmp-tiny-demo.pth"))
    ap.add_argument("--data", type=Path, default=Path("demo_out/synthetic"))
    ap.add_argument("--work", type=Path, default=Path("demo_out/demo_train"), help="training folder (resumable)")
    ap.add_argument("--iters", type=int, default=DEMO_ITERS, help="optimizer steps (the deterministic budget)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads; the shipped file was made with 1 (more is faster, not bit-identical)")
    ap.add_argument("--eval-episodes", type=int, default=10, help="test episodes per category (0: skip)")
    ap.add_argument("--eval-queries", type=int, default=5)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    data = ensure_benchmark(args.data)
    cfg = TrainConfig(**DEMO_RECIPE, max_iters=args.iters)
    ann = open_subset(data, "train")
    dataset = TrainingPairDataset(ann, cfg.shots, cfg.seed, augment=cfg.augment)
    torch.manual_seed(cfg.seed)
    trainer = Trainer(build_model("fmmp-tiny", cfg.seed), dataset, args.work, cfg, progress=not args.no_progress,
                      data_desc=f"synthetic benchmark (seed 0) train, {len(ann.class_ids)} categories")
    if (args.work / LAST).is_file():
        trainer.resume(args.work / LAST)
        print(f"continuing {args.work / LAST} from iteration {trainer.state.iteration}", flush=True)
    t0 = time.perf_counter()
    result = trainer.run()
    minutes = (time.perf_counter() - t0) / 60
    if result.state.iteration < args.iters:
        print(f"stopped at iteration {result.state.iteration} of {args.iters}", file=sys.stderr)
        return 1
    losses = [h["loss"] for h in result.history]
    meta = {"kind": "fmmp-tiny demo", "recipe": {k: list(v) if isinstance(v, tuple) else v
                                                 for k, v in DEMO_RECIPE.items()},
            "iterations": result.state.iteration, "final_epoch_loss": losses[-1] if losses else None,
            "data": "python -m fgsa.data.synthetic (seed 0, defaults)", "threads": args.threads}
    out = save_half_checkpoint(trainer.model, args.out, meta)
    print(f"trained {result.state.iteration} iterations in {minutes:.1f} min this run; wrote {out} "
          f"({out.stat().st_size / 2**20:.2f} MiB, sha256 {file_sha256(out)[:16]})", flush=True)

    if args.eval_episodes > 0:
        model = load_model(out)
        test = open_subset(data, "test")
        episodes = EpisodeDataset.from_episodes(test, args.eval_episodes, args.eval_queries, 1)
        accs = evaluate(model, episodes, batch_size=8, progress=not args.no_progress)
        results = {name: acc.result() for name, acc in accs.items()}
        print(f"\nheld-out synthetic test categories ({len(test.class_ids)}), {len(episodes)} query images:\n")
        print(markdown_pck_table(results))
        report = out.with_suffix(".eval.json")
        report.write_text(json.dumps({n: r.as_dict() for n, r in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
