"""runtime.annotations: support annotation files (small JSON) that JSON allows but the reader would bend."""

import json

import pytest

from fgsa.errors import InputError
from runtime.annotations import read_support_annotation

SMALL = {"keypoints": [[10, 10, 2], [20, 30, 2], [40, 20, 1]], "skeleton": [[0, 1], [1, 2]]}


@pytest.mark.parametrize("skeleton", [[[0, float("inf")]], [[float("-inf"), 1]], [[0, 1.5]]])
def test_non_integer_skeleton_entries_are_one_error(tmp_path, skeleton):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({**SMALL, "skeleton": skeleton}))  # json writes Infinity, Python reads it back
    with pytest.raises(InputError, match="skeleton: expected \\[\\[a, b\\], ...\\] integer pairs"):
        read_support_annotation(path)


def test_the_good_file_reads(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SMALL))
    ann = read_support_annotation(path)
    assert ann.skeleton.tolist() == [[0, 1], [1, 2]] and ann.keypoints.shape == (3, 3)
