"""fgsa.preprocess is shared with the torch-free runtime: importing and running it must not import torch."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

SCRIPT = """
import sys
import numpy as np
import fgsa.preprocess as pp
assert 'torch' not in sys.modules, 'import fgsa.preprocess imported torch'
img = np.zeros((64, 80, 3), np.uint8)
kp = np.array([[10, 10, 2], [30, 40, 2], [50, 20, 0]], float)
out = pp.prepare_instance(img, [5, 5, 50, 45], kp, [[0, 1], [1, 2]])
pp.mixup_padding(out['points'][:3], out['visible'][:3], [[0, 1], [1, 2]], draws=0)
pp.decode_points(out['points'][None], out['center'][None], out['scale'][None])
assert 'torch' not in sys.modules, 'running fgsa.preprocess imported torch'
print('ok')
"""


def test_preprocess_never_imports_torch():
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
