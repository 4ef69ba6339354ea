"""The serving model without Triton: mixed-category batches in one predictor run, support states from disk."""

from __future__ import annotations

import numpy as np
import pytest

TOL_PX = 1e-4  # as in test_triton_server.py: same graphs and preprocessing, another batch composition


@pytest.fixture(scope="module")
def pose(repository):
    from runtime.serving.pose import PoseModel

    model = PoseModel(repository / "fgsa_pose" / "1", threads=2)
    yield model
    model.close()


def test_mixed_categories_run_as_one_batch_with_per_row_support(pose, queries, expected):
    rows = [pose.parse(image, np.asarray(box, np.float32), np.array([cat.encode()], dtype=object))
            for cat, image, box in queries]
    assert len({r.category.name for r in rows}) == 2
    calls = []
    infer = pose.predictor.infer
    pose.predictor.infer = lambda feed, *a, **k: calls.append(len(feed["query"])) or infer(feed, *a, **k)
    try:
        got = pose.run(rows)
    finally:
        del pose.predictor.infer
    assert calls == [len(rows)]  # one predictor execution for the whole mixed batch
    for xy, ref in zip(got, expected):
        np.testing.assert_allclose(xy, ref, rtol=0, atol=TOL_PX)
    # rows really use their own category: swapping the support states moves the points by pixels
    a = next(r for r in rows if r.category is rows[0].category)
    other = next(r for r in rows if r.category is not rows[0].category).category
    moved = pose.run([type(a)(other, a.crop, a.center, a.scale)])[0]
    k = min(len(moved), len(got[0]))
    assert np.abs(moved[:k] - got[0][:k]).max() > 0.5


def test_unknown_category_lists_the_known_ones(pose, queries):
    from runtime.errors import InputError

    with pytest.raises(InputError) as info:
        pose.parse(queries[0][1], None, np.array([b"zebra"], dtype=object))
    assert info.value.field == "CATEGORY"
    for name in pose.categories:
        assert repr(name) in str(info.value)
