"""``python -m runtime.parity``: the PyTorch model vs an engine on episodes of an MP-100-format data set.

    python -m runtime.parity --ckpt model.pth (--engine out/onnx | --onnx model.onnx) --data DIR \\
        [--subset test] [--episodes 2] [--queries 3] [--tolerance 1e-4] [--out out/parity]
    python -m runtime.parity --ckpt model.pth --triton 127.0.0.1:8000 --repository triton_repo --data DIR
        # a running server's answers vs PyTorch (runtime.served_parity)

Per episode (S supports + Q queries of one held-out category, drawn like the official test episodes):

1. **raw tensors**: the same preprocessed feed (``fgsa.data.dataset.EpisodeDataset``) through both runners,
   error statistics per output (points in normalised crop units; the support state with split graphs);
2. **images in, keypoints out**: ``Engine.set_support`` + ``Engine.predict`` on the raw images (the
   runtime's own preprocessing) vs the PyTorch points decoded with ``fgsa.preprocess.decode_points``:
   error in original image pixels;
3. **PCK** of both (``fgsa.metrics``, the official protocol) against the annotations.

Verdict PASS when the points' max abs error on both paths is <= ``--tolerance`` (normalised crop units;
1e-4 = the FP32 noise floor, use a looser value for FP16/INT8 plans) and the mPCKs differ by at most
``--pck-tolerance``. Writes ``parity.md``, ``parity.json`` and ``parity.png`` (both predictions drawn on
one query image). Exit status 0 on PASS, 1 on FAIL, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fgsa.cli import add_data, error, md_table, report_main
from fgsa.data.episodes import episode_pairs, sample_episodes
from fgsa.data.layout import open_subset
from fgsa.data.mp100 import load_image_rgb
from fgsa.errors import InputError, as_flag
from fgsa.metrics.pck import PCKAccumulator
from fgsa.preprocess import decode_points
from runtime.compare import StatsAccumulator
from runtime.draw import draw_pose, enlarge, grid, legend, save_png
from runtime.engine import Engine
from runtime.report import host_info
from runtime.served_parity import SERVED_TOLERANCE_PX, run_served, served_markdown

FORWARD = ("query", "support", "support_points", "support_visible", "support_links")
TORCH_COLOR, ENGINE_COLOR, GT_COLOR = (60, 220, 60), (255, 0, 255), (255, 255, 255)
PICTURES = 4  # episodes drawn in parity.png


def infer_batched(engine: Engine, feed: dict[str, np.ndarray], graph: str | None = None) -> dict[str, np.ndarray]:
    """``engine.infer`` over a batch of any size: pieces that fit the graphs' batch range, padded if needed."""
    n = next(iter(feed.values())).shape[0]
    parts = []
    for start, stop, size in engine.batch_chunks(n):
        piece = {k: v[start:stop] for k, v in feed.items()}
        if size > stop - start:
            piece = {k: np.concatenate([v, np.repeat(v[-1:], size - (stop - start), axis=0)]) for k, v in piece.items()}
        out = engine.infer(piece, graph)
        parts.append({k: (v[:, : stop - start] if k == "points_per_layer" else v[: stop - start]) for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts], axis=1 if k == "points_per_layer" else 0) for k in parts[0]}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.parity", description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True, type=Path, help="the checkpoint the engine was exported from")
    p.add_argument("--config", default=None, help="model config for checkpoints without one")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--engine", type=Path, help="export folder, .onnx or .plan (backend auto)")
    g.add_argument("--onnx", type=Path, help="an ONNX graph or export folder, run with ONNX Runtime")
    g.add_argument("--triton", metavar="HOST:PORT", help="a running Triton server serving --repository")
    p.add_argument("--repository", type=Path, help="with --triton: the model repository the server serves")
    p.add_argument("--protocol", default="http", choices=("http", "grpc"), help="with --triton")
    p.add_argument("--served-tolerance-px", type=float, default=SERVED_TOLERANCE_PX,
                   help="with --triton: max served vs in-process difference in image pixels")
    add_data(p)
    p.add_argument("--subset", "--split", dest="split", default="test", choices=("train", "val", "test"),
                   help="held-out subset of the data folder (--split is the old name)")
    p.add_argument("--mp100-split", type=int, default=1)
    p.add_argument("--episodes", type=int, default=2, help="episodes per category")
    p.add_argument("--queries", type=int, default=3, help="queries per episode")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs point error, normalised crop units")
    p.add_argument("--pck-tolerance", type=float, default=0.01, help="max |mPCK difference| (fraction)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for both runners")
    p.add_argument("--plugin-library", type=Path, default=None,
                   help="libfgsa_trt_plugin.so for TensorRT plans (default: $FGSA_PLUGIN_LIBRARY, else build/; "
                        "never the plan's sidecar)")
    p.add_argument("--ort-library", type=Path, default=None,
                   help="libfgsa_ort_ops.so for plugin-form graphs on ONNX Runtime (default: $FGSA_ORT_LIBRARY, build/)")
    p.add_argument("--out", type=Path, default=Path("out/parity"))
    return p


def run(args: argparse.Namespace) -> dict:
    import torch  # the PyTorch side of the comparison: the runtime itself stays torch-free

    from fgsa.checkpoint import load_model
    from fgsa.data.dataset import EpisodeDataset, collate
    from runtime.reference import TorchRunner

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_model(args.ckpt, args.config)
    path, backend = (args.onnx, "onnxruntime") if args.onnx else (args.engine, "auto")
    try:
        engine = Engine(path, backend, threads=args.threads, plugin_library=args.plugin_library,
                        ort_library=args.ort_library)
    except InputError as exc:
        raise as_flag(exc, {"path": "--onnx" if args.onnx else "--engine", "threads": "--threads"}) from None
    ann = open_subset(args.data, args.split, args.mp100_split, args.image_root)
    episodes = sample_episodes(ann.instances_by_category, ann.class_ids, args.episodes, engine.shots,
                               args.queries, args.seed)
    dataset = EpisodeDataset(ann, episode_pairs(episodes))
    torch_full = TorchRunner(model, "full").activate()
    torch_encoder = TorchRunner(model, "support_encoder", attention=engine.metadata.get("attention")).activate()

    raw = StatsAccumulator()
    pix_err, norm_err = [], []
    pck = {"pytorch": PCKAccumulator(), "engine": PCKAccumulator()}
    pictures: list = []
    index = 0
    for ep in episodes:
        items = [dataset[index + q] for q in range(len(ep.query_ids))]
        index += len(ep.query_ids)
        batch = collate(items)
        feed = {k: batch[k].numpy() for k in FORWARD}
        want = torch_full.infer(feed)
        got = infer_batched(engine, feed, "full" if "full" in engine.graphs else None)
        raw.add(got, want)
        if "support_encoder" in engine.graphs:
            first = {k: v[:1] for k, v in feed.items() if k != "query"}
            raw.add(engine.infer(first, "support_encoder"), torch_encoder.infer(first))

        # images in, keypoints out: the runtime's own preprocessing on the raw annotations
        cat = ann.category_of(ep.query_ids[0])
        sup = [ann.instance(i) for i in ep.support_ids]
        kps = np.stack([np.concatenate([s.keypoints, s.visibility[:, None]], 1).astype(np.float64) for s in sup])
        engine.set_support([load_image_rgb(s.image_path) for s in sup], kps, None, cat.skeleton, [s.bbox for s in sup])
        queries = [ann.instance(i) for i in ep.query_ids]
        images = [load_image_rgb(q.image_path) for q in queries]
        got_px = engine.predict(images, [q.bbox for q in queries])
        k_c = got_px.shape[1]
        centers, scales = batch["query_center"].numpy(), batch["query_scale"].numpy()
        want_px = decode_points(want["points"], centers, scales)[:, :k_c]
        dist = np.linalg.norm(got_px.astype(np.float64) - want_px, axis=-1)  # (Q, K_c) image pixels
        pix_err.append(dist.reshape(-1))
        # the same error in normalised crop units: image px / crop side in image px (scale * 200)
        norm_err.append((np.abs(got_px.astype(np.float64) - want_px) / (scales[:, None, :].astype(np.float64) * 200.0)).reshape(-1))
        for b, q in enumerate(queries):
            k = q.num_keypoints
            flags = batch["support_flags"][b, :, :k].numpy()
            for name, pred in (("pytorch", want_px[b]), ("engine", got_px[b])):
                pck[name].add(pred, q.keypoints[:k].astype(np.float64), q.visibility, flags, q.clean_bbox, q.category_id)
        if len(pictures) < PICTURES and cat.name not in {p[4].name for p in pictures}:  # a query per category
            pictures.append((images[0], want_px[0], got_px[0], queries[0], cat))

    pix = np.concatenate(pix_err)
    norm = np.concatenate(norm_err)
    stats = raw.result()
    pck_res = {name: acc.result() for name, acc in pck.items()}
    d_mpck = abs(pck_res["pytorch"].mpck - pck_res["engine"].mpck)
    points_stats = [s for s in stats if s.output in ("points", "points_per_layer")]
    checks = {
        "raw points max abs <= tolerance": all(s.max_abs <= args.tolerance for s in points_stats),
        "images->keypoints max abs (normalised) <= tolerance": bool(np.isfinite(norm).all() and norm.max() <= args.tolerance),
        "mPCK difference within pck tolerance": d_mpck <= args.pck_tolerance,
    }
    verdict = "PASS" if all(checks.values()) else "FAIL"
    png = None
    if pictures:
        tiles = []
        for img, torch_px, engine_px, q, cat in pictures:
            canvas, f = enlarge(img, 320)
            canvas = draw_pose(canvas, q.keypoints[:, :2] * f, cat.skeleton, color=GT_COLOR, thickness=0.6,
                               mask=q.visibility > 0)
            canvas = draw_pose(canvas, torch_px * f, cat.skeleton, color=TORCH_COLOR)
            canvas = draw_pose(canvas, engine_px * f, cat.skeleton, color=ENGINE_COLOR, marker="cross")
            tiles.append(legend(canvas, [(cat.name, (255, 255, 255))]))
        canvas = legend(grid(tiles, min(len(tiles), 2)), [
            ("ground truth", GT_COLOR), ("pytorch (dots)", TORCH_COLOR),
            (f"engine, {engine.backend} (crosses): a cross on its dot = the two agree", ENGINE_COLOR)])
        png = save_png(args.out / "parity.png", canvas)
    result = {
        "verdict": verdict, "checks": checks, "tolerance": args.tolerance, "pck_tolerance": args.pck_tolerance,
        "checkpoint": str(args.ckpt), "engine": str(path), "backend": engine.backend, "graphs": engine.graphs,
        "data": str(args.data), "split": args.split, "episodes_per_category": args.episodes,
        "queries": args.queries, "shots": engine.shots, "categories": list(ann.class_ids),
        "query_images": len(pck["engine"]),
        "raw_outputs": [s.to_dict() for s in stats],
        "images_to_keypoints": {"max_px": float(pix.max()), "mean_px": float(pix.mean()),
                                "p99_px": float(np.percentile(pix, 99)), "max_abs_normalised": float(norm.max())},
        "pck": {name: r.as_dict() for name, r in pck_res.items()}, "mpck_difference": d_mpck,
        "png": None if png is None else str(png), "seconds": round(time.perf_counter() - t0, 2), "host": host_info(),
    }
    engine.close()
    return result


def to_markdown(r: dict) -> str:
    rows = [[s["output"], "x".join(map(str, s["shape"])), f"{s['max_abs']:.3g}", f"{s['mean_abs']:.3g}",
             f"{s['p99_abs']:.3g}", f"{s['rms']:.3g}", f"{s['max_rel']:.3g}"] for s in r["raw_outputs"]]
    pck_rows = [[name] + [f"{100 * v:.2f}" for v in vals.values()] for name, vals in r["pck"].items()]
    heads = list(next(iter(r["pck"].values())).keys())
    img = r["images_to_keypoints"]
    lines = [
        f"# Parity: PyTorch vs {r['backend']} — **{r['verdict']}**", "",
        f"checkpoint `{r['checkpoint']}`, engine `{r['engine']}` (graphs: {', '.join(r['graphs'])}), data "
        f"`{r['data']}` ({r['split']}: {len(r['categories'])} categories x {r['episodes_per_category']} episodes x "
        f"{r['queries']} queries, S={r['shots']}: {r['query_images']} query images)", "",
        "## Raw tensors (same preprocessed feed)", "",
        md_table(["output", "shape", "max abs", "mean abs", "p99 abs", "rms", "max rel"], rows), "",
        "Points in normalised crop units (x256 = crop pixels).", "",
        "## Images in, keypoints out (Engine.set_support + predict vs PyTorch decoded)", "",
        f"max {img['max_px']:.3g} px, mean {img['mean_px']:.3g} px, p99 {img['p99_px']:.3g} px in original image "
        f"pixels; max {img['max_abs_normalised']:.3g} in normalised crop units", "",
        "## PCK (percent)", "", md_table([""] + heads, pck_rows), "",
        f"mPCK difference = {100 * r['mpck_difference']:.3f} points", "",
        "## Verdict", "",
        md_table(["check", "ok"], [[k, "yes" if v else "NO"] for k, v in r["checks"].items()]), "",
        f"tolerance {r['tolerance']:g} (normalised), PCK tolerance {r['pck_tolerance']:g}; "
        f"{r['seconds']} s; picture: `{r['png']}`",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status = lambda r: 0 if r["verdict"] == "PASS" else 1  # noqa: E731
    if args.triton:
        if args.repository is None:
            return error("--repository: expected the model repository the server at --triton serves, got "
                         "nothing; pass --repository REPO")
        if args.out == Path("out/parity"):
            args.out = Path("out/parity-served")
        return report_main("parity", run_served, served_markdown, args, status=status)
    return report_main("parity", run, to_markdown, args, files=lambda r: [r["png"]], status=status)


if __name__ == "__main__":
    sys.exit(main())
