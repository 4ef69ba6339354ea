"""Real episodes for Polygraphy: ``polygraphy run ... --data-loader-script runtime/polygraphy_data.py:load_data``.

Polygraphy calls ``load_data()`` without arguments, so the arguments come through one environment
variable, :data:`ENV`, written like command-line flags::

    FGSA_POLYGRAPHY_DATA="--data DIR [--subset test] [--pairs 4] [--shots 1] [--seed 1] [--onnx GRAPH]"

It yields one feed dict per (supports..., query) pair of ``--subset`` (categories round-robin, episodes
drawn like the official test episodes), each with batch 1 and the graph I/O dtypes, preprocessed exactly as
``runtime.Engine`` preprocesses (``runtime.preprocessing``: supports through ``fgsa.preprocess.
prepare_instance``, queries through the same crop and normalisation). ``--onnx`` keeps only that graph's
inputs (``model.onnx`` takes all five, ``support_encoder.onnx`` all but ``query``); the predictor of a split
export reads the support state, which this loader does not compute: give it ``model.onnx``.

Torch-free (NumPy, OpenCV, pycocotools; ``onnx`` only with ``--onnx``). Bad arguments print one
``error: ...`` line naming the flag and exit 2, as every CLI of the toolkit does.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Iterator

import numpy as np

from fgsa.cli import add_data, error, renamed
from fgsa.data.episodes import sample_episodes
from fgsa.data.layout import open_subset
from fgsa.data.mp100 import load_image_rgb
from fgsa.errors import FgsaError, InputError
from runtime.preprocessing import prepare_queries, prepare_support

ENV = "FGSA_POLYGRAPHY_DATA"
FULL_INPUTS = ("query", "support", "support_points", "support_visible", "support_links")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{ENV}=", add_help=False, exit_on_error=False)
    add_data(p, required=False)
    p.add_argument("--subset", default="test", choices=("train", "val", "test"))
    p.add_argument("--pairs", dest="episodes", type=int, default=4, help="(supports, query) pairs to yield")
    renamed(p, "--episodes", "--pairs", "(support, query) pairs to yield")
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mp100-split", type=int, default=1)
    p.add_argument("--onnx", default=None, help="yield only this graph's inputs")
    return p


def parse(text: str | None) -> argparse.Namespace:
    """The loader's arguments from the text of :data:`ENV` (InputError naming the variable when wrong)."""
    if not text or not text.strip():
        raise InputError(ENV, "'--data DIR [--pairs N] [--subset test] [--shots S] [--onnx GRAPH]'", "nothing",
                         f"export {ENV}=\"--data DIR\" before polygraphy run")
    try:
        args, extra = _parser().parse_known_args(shlex.split(text))
    except (argparse.ArgumentError, ValueError) as exc:
        raise InputError(ENV, "'--data DIR [--pairs N] [--subset test] [--shots S] [--onnx GRAPH]'",
                         repr(text), str(exc)) from None
    if extra:
        raise InputError(ENV, "only --data, --image-root, --subset, --pairs, --shots, --seed, --mp100-split, "
                         "--onnx",
                         " ".join(extra))
    if args.data is None:
        raise InputError(f"{ENV} --data", "the MP-100 / COCO folder to draw episodes from", "nothing",
                         f"export {ENV}=\"--data DIR\"")
    if args.episodes < 1:
        raise InputError(f"{ENV} --pairs", "at least 1", args.episodes)
    return args


def graph_inputs(path: str) -> list[str]:
    """Input names of an ONNX graph (without loading its weights), checked against what the loader makes."""
    import onnx

    if not os.path.isfile(path):
        raise InputError(f"{ENV} --onnx", "an ONNX graph written by python -m export.onnx", f"{path} (not found)")
    names = [i.name for i in onnx.load(path, load_external_data=False).graph.input]
    unknown = [n for n in names if n not in FULL_INPUTS]
    if unknown:
        raise InputError(f"{ENV} --onnx", f"a graph whose inputs are among {', '.join(FULL_INPUTS)}",
                         f"{path} also reads {', '.join(unknown[:3])}",
                         "the predictor reads the support state: give the loader (and polygraphy) model.onnx")
    return names


def episode_feeds(data: str, subset: str = "test", pairs: int = 4, shots: int = 1, seed: int = 1,
                  split: int = 1, inputs: tuple[str, ...] | list[str] = FULL_INPUTS,
                  image_root: str | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Up to ``pairs`` feed dicts of real (supports..., query) pairs, preprocessed as ``runtime.Engine`` does."""
    try:
        ann = open_subset(data, subset, split, image_root)
    except InputError as exc:  # name the variable the user set, not a CLI flag
        raise InputError(f"{ENV} {exc.field}", exc.expected, exc.got, exc.fix) from None
    if not ann.class_ids:
        raise InputError(f"{ENV} --data", f"a '{subset}' subset with at least one category", f"none in {data}")
    per_category = max(1, -(-pairs // len(ann.class_ids)))
    episodes = sample_episodes(ann.instances_by_category, ann.class_ids, per_category, shots, 1, seed)
    by_cat: dict[int, list] = {}
    for ep in episodes:
        by_cat.setdefault(ep.category_id, []).append(ep)
    # round-robin over categories so that a few pairs still cover them all (as calibration.episodes does)
    order = [eps[r] for r in range(per_category) for eps in by_cat.values() if r < len(eps)][:pairs]
    for ep in order:
        sup = [ann.instance(i) for i in ep.support_ids]
        query = ann.instance(ep.query_ids[0])
        kps = np.stack([np.concatenate([s.keypoints, s.visibility[:, None]], 1) for s in sup]).astype(np.float64)
        support = prepare_support([load_image_rgb(s.image_path) for s in sup], kps, None,
                                  ann.category_of(query.ann_id).skeleton, [s.bbox for s in sup], shots)
        crops, _, _ = prepare_queries([load_image_rgb(query.image_path)], [query.bbox])
        feed = {"query": crops.astype(np.float32), "support": support.support, "support_points": support.points,
                "support_visible": support.visible, "support_links": support.links}
        yield {k: np.ascontiguousarray(feed[k]) for k in inputs}


def load_data() -> Iterator[dict[str, np.ndarray]]:
    """Polygraphy's entry point: the feeds :data:`ENV` asks for (see the module docstring)."""
    try:
        args = parse(os.environ.get(ENV))
        inputs = graph_inputs(args.onnx) if args.onnx else FULL_INPUTS
        feeds = list(episode_feeds(args.data, args.subset, args.episodes, args.shots, args.seed, args.mp100_split,
                                   inputs, args.image_root))
    except FgsaError as exc:
        sys.exit(error(exc))
    yield from feeds
