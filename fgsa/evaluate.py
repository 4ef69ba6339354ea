"""``python -m fgsa.evaluate``: PCK of a checkpoint on held-out categories, next to the copy-support baseline.

    python -m fgsa.evaluate --ckpt PATH --data DIR|FILE.json [--image-root DIR] [--split test] [--mp100-split 1]
        [--episodes 200] [--queries 15] [--shots 1] [--seed 1] [--batch-size 8] [--device cpu] [--out results.json]

Protocol (docs/FMMP_MODEL.md §6, :mod:`fgsa.metrics.pck`): episodes drawn as the official test set draws
them (``--episodes`` per category, ``--queries`` queries each, seed 1; defaults are the official 200 x 15),
the model's last layer decoded to original image pixels for every batch row
(:func:`fgsa.preprocess.decode_points`), PCK@0.05/0.1/0.15/0.2 per query image with the raw-flag mask
(query and every support visible) and max(w, h) of the query's clean box, then the mean over images; mPCK
is the mean of the four.

Copy-support baseline: predict, for each keypoint, where it sits in the support crop, mapped into the
query image through the query's crop (the support's normalised crop coordinates decoded with the query's
center and scale); with S > 1 shots, the mean over the shots whose raw flag marks the keypoint visible.
It is what a model that ignores the query image would score, so a trained model must beat it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader

from fgsa.data.dataset import EpisodeDataset, collate, forward_inputs
from fgsa.cli import add_data, check_threads, command, warn
from fgsa.data.episodes import OFFICIAL_TEST_QUERIES, fit_queries, repeated_pairs
from fgsa.errors import InputError
from fgsa.files.outputs import write_files
from fgsa.metrics.pck import PCKAccumulator, PCKResult
from fgsa.model import FMMP
from fgsa.preprocess import decode_points

MODEL = "model"
BASELINE = "copy-support baseline"


def copy_support_points(support_points: torch.Tensor, support_flags: torch.Tensor) -> torch.Tensor:
    """[B, S, K, 2] normalised support points, [B, S, K] raw flags -> [B, K, 2]: per keypoint the mean over
    the shots that annotate it (flag > 0); over all shots where none does (such points are not scored)."""
    w = (support_flags > 0).to(support_points.dtype)
    none = w.sum(1, keepdim=True) == 0
    w = torch.where(none, torch.ones_like(w), w)
    return (support_points * w[..., None]).sum(1) / w.sum(1)[..., None]


def _score(acc: PCKAccumulator, pixels: np.ndarray, batch: Mapping[str, torch.Tensor]) -> None:
    for b in range(pixels.shape[0]):
        k = int(batch["num_keypoints"][b])
        acc.add(pixels[b], batch["query_keypoints"][b, :k].numpy(), batch["query_flags"][b, :k].numpy(),
                batch["support_flags"][b, :, :k].numpy(), batch["query_bbox"][b].numpy(),
                int(batch["category_id"][b]))


def decode_batch(points: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> np.ndarray:
    """[B, K, 2] normalised query-crop points -> [B, K, 2] float32 original query-image pixels (the official
    decode's float32 ``all_preds``: step 1 of :mod:`fgsa.metrics.pck`)."""
    return decode_points(points.detach().cpu().double().numpy(), batch["query_center"].numpy(),
                         batch["query_scale"].numpy())


@torch.inference_mode()
def evaluate(model: FMMP | None, dataset: EpisodeDataset, batch_size: int = 8, device: str = "cpu",
             workers: int = 0, progress: bool = True) -> dict[str, PCKAccumulator]:
    """Run every pair of ``dataset``; returns {MODEL: acc, BASELINE: acc} (just the baseline when
    ``model`` is None). ``acc.result()`` is the protocol PCK, ``acc.per_category()`` the breakdown."""
    from tqdm import tqdm

    accs = {BASELINE: PCKAccumulator()}
    if model is not None:
        accs = {MODEL: PCKAccumulator(), **accs}
        model = model.to(device).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=workers)
    for batch in tqdm(loader, desc="evaluate", disable=None if progress else True, dynamic_ncols=True):
        if model is not None:
            pred = model(**forward_inputs(batch, device))[-1]  # the last layer ('major')
            _score(accs[MODEL], decode_batch(pred, batch), batch)
        copy = copy_support_points(batch["support_points"].double(), batch["support_flags"])
        _score(accs[BASELINE], decode_batch(copy, batch), batch)
    return accs


def below_baseline(model: PCKResult, baseline: PCKResult) -> str | None:
    """One warning line when the model scores below copying the support keypoints (it then ignores the query
    image, or was trained on other data: the demo checkpoint on real photos), else None."""
    if model.mpck >= baseline.mpck:
        return None
    return (f"the model scores below the copy-support baseline (mPCK {100 * model.mpck:.1f} vs "
            f"{100 * baseline.mpck:.1f}): it does not fit this data (the demo checkpoint knows only the synthetic "
            "shapes; README.md says how to use the authors' trained checkpoint)")


def markdown_pck_table(results: Mapping[str, PCKResult]) -> str:
    """One Markdown row per named result: PCK@t (percent), mPCK, number of query images."""
    first = next(iter(results.values()))
    heads = ["", *(f"PCK@{t:g}" for t in first.thresholds), "mPCK", "images"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|"]
    for name, r in results.items():
        vals = [f"{100 * v:.2f}" for v in r.pck] + [f"{100 * r.mpck:.2f}", str(r.num_images)]
        lines.append("| " + " | ".join([name, *vals]) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m fgsa.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", type=Path, help="checkpoint (ours, official mmcv, or a bare state_dict)")
    ap.add_argument("--config", default=None, help="model config for checkpoints without one (default fmmp-r50)")
    add_data(ap)
    ap.add_argument("--subset", "--split", dest="split", default="test", choices=("train", "val", "test"),
                    help="subset to evaluate (--split is the old name)")
    ap.add_argument("--mp100-split", type=int, default=1, help="official MP-100 split 1..5 (ignored with splits.json)")
    ap.add_argument("--episodes", type=int, default=200, help="episodes per category (official 200)")
    ap.add_argument("--queries", type=int, default=None,
                    help="queries per episode (official 15; default 15, capped to what the smallest category has)")
    ap.add_argument("--shots", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1, help="episode seed (official 1)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--keypoint-count", choices=("annotation", "skeleton"), default="annotation")
    ap.add_argument("--per-category", action="store_true", help="also print PCK per category")
    ap.add_argument("--baseline-only", action="store_true", help="only the copy-support baseline (no --ckpt)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--no-progress", action="store_true")
    return ap


@command
def main(argv: list[str] | None = None) -> int:
    from fgsa.checkpoint import load_model
    from fgsa.data.layout import open_subset

    args = build_parser().parse_args(argv)
    if args.ckpt is None and not args.baseline_only:
        raise InputError("--ckpt is required (or --baseline-only)")
    check_threads(args.threads, "leave it out for torch's default")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = None if args.baseline_only else load_model(args.ckpt, args.config)
    ann = open_subset(args.data, args.split, args.mp100_split, args.image_root)
    pools = {c: ann.instances_by_category[c] for c in ann.class_ids}
    args.queries, capped = fit_queries(pools, {c: ann.categories[c].name for c in ann.class_ids}, args.shots,
                                       args.queries, OFFICIAL_TEST_QUERIES)
    if capped:
        warn(capped)
    dataset = EpisodeDataset.from_episodes(ann, args.episodes, args.queries, args.shots, args.seed,
                                           keypoint_count=args.keypoint_count)
    repeats = repeated_pairs(dataset.pairs)
    if repeats:
        warn(repeats)
    t0 = time.perf_counter()
    accs = evaluate(model, dataset, args.batch_size, args.device, args.workers, not args.no_progress)
    seconds = time.perf_counter() - t0
    results = {name: acc.result() for name, acc in accs.items()}
    what = "copy-support baseline" if model is None else f"{args.ckpt} ({model.cfg.name})"
    print(f"\n{what} on {args.data} '{args.split}': {len(ann.class_ids)} categories, {args.episodes} episodes x "
          f"{args.queries} queries, {args.shots} shot(s), {len(dataset)} query images, {seconds:.0f} s\n")
    print(markdown_pck_table(results))
    worse = MODEL in results and below_baseline(results[MODEL], results[BASELINE])
    if worse:
        warn(worse)
    if args.per_category:
        for name, acc in accs.items():
            print(f"\n{name}, per category:\n")
            print(markdown_pck_table({f"category {c} ({ann.categories[c].name})": r
                                      for c, r in acc.per_category().items()}))
    if args.out is not None:
        payload = {"checkpoint": None if args.ckpt is None else str(args.ckpt), "data": str(args.data),
                   "split": args.split, "episodes": args.episodes, "queries": args.queries, "shots": args.shots,
                   "seed": args.seed, "categories": list(ann.class_ids), "images": len(dataset),
                   "results": {n: r.as_dict() for n, r in results.items()},
                   "per_category": {n: {str(c): r.as_dict() for c, r in acc.per_category().items()}
                                    for n, acc in accs.items()}}
        write_files({args.out: ("--out", json.dumps(payload, indent=1).encode())})
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
