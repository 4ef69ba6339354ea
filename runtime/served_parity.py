"""``python -m runtime.parity --triton URL --repository REPO``: a running Triton server's keypoints vs PyTorch's.

    python -m runtime.parity --ckpt model.pth --triton 127.0.0.1:8000 --repository triton_repo --data DIR \\
        [--subset test] [--queries 6] [--protocol http|grpc] [--out out/parity-served]

What users serve is certified here, not a stand-in for it. The supports are the repository's own (its
``support/spec.json``, written by ``python -m runtime.triton``); the queries are the instances of every data
set category whose name the repository serves (its support shots left out). Each query goes to the server as
its file's bytes (the server decodes and crops it in its own environment) and, in this process, through
``runtime.Engine`` on the repository's graphs and through the PyTorch model (the same crops fed to both),
so three differences are measured in original image pixels:

- **served vs PyTorch**: what a client gets against the checkpoint; PASS needs its maximum, in normalised
  crop units, within ``--tolerance`` (as ``runtime.parity``'s engine check), and the mPCKs within
  ``--pck-tolerance``;
- **served vs in-process**: the same graphs in two environments (the serving one: numpy < 2); only float32
  noise may separate them: PASS needs at most ``--served-tolerance-px`` (0.05 px);
- **in-process vs PyTorch**: the engine's own parity, for reference.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from fgsa.data.layout import open_subset
from fgsa.data.mp100 import load_image_rgb
from fgsa.errors import InputError
from fgsa.metrics.pck import PCKAccumulator
from fgsa.preprocess import decode_points
from runtime.engine import Engine
from runtime.errors import EngineError
from runtime.preprocessing import prepare_queries
from runtime.report import host_info

SERVED_TOLERANCE_PX = 0.05


def repository_spec(repo: Path) -> list[dict]:
    """The support set a repository was written from (absolute paths)."""
    path = repo / "fgsa_pose" / "1" / "support" / "spec.json"
    try:
        return json.loads(path.read_text())["categories"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError("--repository", "a model repository written by python -m runtime.triton (with "
                         "fgsa_pose/1/support/spec.json)", f"{path}: {exc}", "re-write it with python -m "
                         "runtime.triton") from None


def run_served(args: argparse.Namespace) -> dict:
    import torch  # the PyTorch side; the server and the Engine stay torch-free

    from fgsa.checkpoint import load_model
    from runtime.reference import TorchRunner
    from runtime.serving.client import PoseClient
    from runtime.serving.repository import compute_categories

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    spec = {c["name"]: c for c in repository_spec(args.repository)}
    model = load_model(args.ckpt, args.config)
    torch_full = TorchRunner(model, "full").activate()
    ann = open_subset(args.data, args.split, args.mp100_split, args.image_root)
    served_cats = [cid for cid in ann.class_ids if ann.categories[cid].name in spec]
    if not served_cats:
        raise InputError("--data", f"categories named as the repository's ({', '.join(sorted(spec))})",
                         f"{args.data} ({args.split}): " + ", ".join(ann.categories[c].name for c in ann.class_ids),
                         "pass the data set the repository's support set came from")
    diffs = {"served_vs_pytorch": [], "served_vs_in_process": [], "in_process_vs_pytorch": []}
    normalised = []
    pck = {"pytorch": PCKAccumulator(), "served": PCKAccumulator()}
    with Engine(args.repository / "fgsa_pose" / "1" / "engine", threads=args.threads) as engine, \
            PoseClient(args.triton, args.protocol) as client:
        for cid in served_cats:
            cat = ann.categories[cid]
            (category,) = compute_categories(engine, [spec[cat.name]])
            support = category.support
            shots = {Path(s["image"]).resolve() for s in spec[cat.name]["shots"]}
            flags = support_flags(spec[cat.name])
            queries = [ann.instance(i) for i in ann.instances_by_category[cid]
                       if Path(ann.instance(i).image_path).resolve() not in shots][: args.queries]
            for q in queries:
                xy_served = _served(client, args, Path(q.image_path), cat.name, q.bbox)
                image = load_image_rgb(q.image_path)
                xy_engine = engine.predict(image, q.bbox)[0]
                crops, centers, scales = prepare_queries(image, np.asarray(q.bbox)[None], engine.input_size)
                # copies: the tiled support arrays are read-only views, which torch warns about
                feed = {"query": crops, **{k: np.array(v) for k, v in support.batch(1, False).items()}}
                points = torch_full.infer(feed)["points"]
                xy_torch = decode_points(points, centers, scales, engine.input_size)[0, : support.k_c]
                got = {"served": xy_served.astype(np.float64), "engine": xy_engine.astype(np.float64),
                       "pytorch": xy_torch.astype(np.float64)}
                for key, (a, b) in {"served_vs_pytorch": ("served", "pytorch"),
                                    "served_vs_in_process": ("served", "engine"),
                                    "in_process_vs_pytorch": ("engine", "pytorch")}.items():
                    diffs[key].append(np.linalg.norm(got[a] - got[b], axis=-1))
                normalised.append(np.abs(got["served"] - got["pytorch"]) / (scales[0].astype(np.float64) * 200.0))
                k = q.num_keypoints
                for name in pck:
                    pck[name].add(got[name][:k], q.keypoints[:k], q.visibility, flags[:, :k], q.clean_bbox, cid)
    if not diffs["served_vs_pytorch"]:
        raise InputError("--data", "query instances besides the support shots", "none",
                         "use a data set with more instances of the served categories")
    stats = {key: _stats(np.concatenate([d.reshape(-1) for d in v])) for key, v in diffs.items()}
    norm_max = float(np.concatenate([n.reshape(-1) for n in normalised]).max())
    pck_res = {name: acc.result() for name, acc in pck.items()}
    d_mpck = abs(pck_res["pytorch"].mpck - pck_res["served"].mpck)
    checks = {
        "served vs PyTorch max abs (normalised) <= tolerance": norm_max <= args.tolerance,
        f"served vs in-process max <= {args.served_tolerance_px:g} px":
            stats["served_vs_in_process"]["max_px"] <= args.served_tolerance_px,
        "mPCK difference within pck tolerance": d_mpck <= args.pck_tolerance,
    }
    return {
        "verdict": "PASS" if all(checks.values()) else "FAIL", "checks": checks, "server": args.triton,
        "protocol": args.protocol, "repository": str(args.repository), "checkpoint": str(args.ckpt),
        "data": str(args.data), "split": args.split, "categories": [ann.categories[c].name for c in served_cats],
        "query_images": len(pck["served"]), "tolerance": args.tolerance, "pck_tolerance": args.pck_tolerance,
        "served_tolerance_px": args.served_tolerance_px, "differences_px": stats,
        "served_vs_pytorch_max_normalised": norm_max, "pck": {n: r.as_dict() for n, r in pck_res.items()},
        "mpck_difference": d_mpck, "seconds": round(time.perf_counter() - t0, 2), "host": host_info(),
    }


def _served(client, args: argparse.Namespace, image: Path, category: str, box) -> np.ndarray:
    """The server's keypoints for one query file; a server that does not answer is an EngineError."""
    try:
        return client.predict(image.read_bytes(), category, box)[0]
    except Exception as exc:  # noqa: BLE001 (tritonclient raises its own and the transport's errors)
        message = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
        raise EngineError(f"the server at --triton {args.triton} ({args.protocol}) did not answer the query "
                          f"{image} ({category}): {str(message).splitlines()[0] if message else type(exc).__name__}",
                          "start it with python -m runtime.serve --repository REPO; check --triton and "
                          "--protocol") from None


def support_flags(spec_cat: dict) -> np.ndarray:
    """(S, K) annotation flags v of a category's support shots (the PCK mask needs them)."""
    from runtime.annotations import read_support_annotation

    return np.stack([read_support_annotation(s["annotation"], s.get("ann_id"), s["image"]).keypoints[:, 2]
                     for s in spec_cat["shots"]])


def _stats(d: np.ndarray) -> dict:
    return {"max_px": float(d.max()), "mean_px": float(d.mean()), "p99_px": float(np.percentile(d, 99)),
            "keypoints": int(d.size)}


def served_markdown(r: dict) -> str:
    from fgsa.cli import md_table

    rows = [[k.replace("_", " "), f"{v['max_px']:.3g}", f"{v['mean_px']:.3g}", f"{v['p99_px']:.3g}",
             str(v["keypoints"])] for k, v in r["differences_px"].items()]
    heads = list(next(iter(r["pck"].values())).keys())
    pck_rows = [[name] + [f"{100 * v:.2f}" for v in vals.values()] for name, vals in r["pck"].items()]
    return "\n".join([
        f"# Served parity: Triton at {r['server']} ({r['protocol']}) vs PyTorch — **{r['verdict']}**", "",
        f"repository `{r['repository']}`, checkpoint `{r['checkpoint']}`, data `{r['data']}` ({r['split']}: "
        f"categories {', '.join(r['categories'])}; {r['query_images']} query images sent as their files' bytes)", "",
        "## Keypoint differences (original image pixels)", "",
        md_table(["", "max px", "mean px", "p99 px", "keypoints"], rows), "",
        f"served vs PyTorch: max {r['served_vs_pytorch_max_normalised']:.3g} in normalised crop units", "",
        "## PCK (percent)", "", md_table([""] + heads, pck_rows), "",
        "## Verdict", "", md_table(["check", "ok"], [[k, "yes" if v else "NO"] for k, v in r["checks"].items()]),
        "", f"{r['seconds']} s",
    ])
