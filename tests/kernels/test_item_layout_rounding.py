"""fgsa/item_layout.h softmax_combine is exactly commutative on the GPU: the xor butterfly has lane j compute
combine(own, partner) and its partner combine(partner, own), and the lanes agree bit for bit only if both
orders round alike. nvcc contracts a*b + c*d into one FMA (one product unrounded), so the test compiles the
function to PTX (nvcc, nothing runs) and checks that the sum adds two separately rounded products."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from kernels.torch_ext import INCLUDE_DIR

KERNEL = r"""
#include "fgsa/item_layout.h"
extern "C" __global__ void combine(const fgsa::SoftmaxStats<float>* in, fgsa::SoftmaxStats<float>* out) {
    out[0] = fgsa::softmax_combine(in[0], in[1]);
}
"""


@pytest.fixture(scope="module")
def ptx(tmp_path_factory):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not on PATH")
    folder = tmp_path_factory.mktemp("ptx")
    (folder / "combine.cu").write_text(KERNEL)
    subprocess.run([nvcc, "-ptx", "-arch=sm_80", "-std=c++17", "-I", str(INCLUDE_DIR), str(folder / "combine.cu"),
                    "-o", str(folder / "combine.ptx")], check=True, capture_output=True, timeout=300)
    return (folder / "combine.ptx").read_text()


def test_the_sum_of_exp_adds_two_rounded_products(ptx):
    rounded = set(re.findall(r"mul\.rn\.f32\s+(%f\d+),", ptx))  # __fmul_rn: never contracted into an FMA
    adds = re.findall(r"add(?:\.rn)?\.f32\s+%f\d+,\s*(%f\d+),\s*(%f\d+);", ptx)
    assert len(rounded) == 2, ptx
    assert any({a, b} == rounded for a, b in adds), "no add of the two rounded products: " + "; ".join(map(str, adds))
