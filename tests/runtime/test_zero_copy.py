"""Inputs are shared, not copied: NumPy arrays, torch CPU tensors (DLPack), __array_interface__ objects."""

import numpy as np
import pytest
import torch

from runtime import Engine, InputError
from runtime.arrays import as_host_array, is_device_array
from runtime.specs import TensorSpec, check_feed


class ArrayInterfaceOnly:
    """An object that exposes memory only through ``__array_interface__`` (like PIL images or Numba arrays)."""

    def __init__(self, arr: np.ndarray):
        self._arr = arr
        self.__array_interface__ = arr.__array_interface__


class FakeCudaArray:
    """What CuPy / torch CUDA tensors expose: a device pointer, shape and type."""

    __cuda_array_interface__ = {"shape": (1, 3, 256, 256), "typestr": "<f4", "data": (0x7F000000, False),
                                "version": 3, "strides": None}


def test_torch_cpu_tensor_is_shared_not_copied():
    t = torch.randn(2, 3, 256, 256)
    arr = as_host_array(t, "query")
    assert np.shares_memory(arr, t.numpy()) and arr.dtype == np.float32 and arr.shape == (2, 3, 256, 256)
    t[0, 0, 0, 0] = 123.0  # a write through the tensor is seen by the array: same memory
    assert arr[0, 0, 0, 0] == 123.0


def test_check_feed_keeps_contiguous_inputs_in_place_and_copies_strided_ones():
    spec = [TensorSpec.make("query", ("batch", 3, 4, 4), np.float32)]
    t = torch.randn(2, 3, 4, 4)
    out, symbols = check_feed(spec, {"query": t})
    assert np.shares_memory(out["query"], t.numpy()) and symbols == {"batch": 2}
    strided = torch.randn(3, 4, 4, 2)[..., 0].unsqueeze(0).expand(2, 3, 4, 4)
    out, _ = check_feed(spec, {"query": strided})
    assert out["query"].flags.c_contiguous
    np.testing.assert_array_equal(out["query"], strided.numpy())


def test_array_interface_objects_are_shared():
    base = np.random.default_rng(0).random((5, 2)).astype(np.float32)
    arr = as_host_array(ArrayInterfaceOnly(base), "x")
    assert np.shares_memory(arr, base)


def test_tensor_requiring_grad_is_refused_with_a_fix():
    with pytest.raises(InputError, match="detach"):
        as_host_array(torch.ones(3, requires_grad=True), "support_points")


def _keypoints(batch: int) -> dict:
    rng = np.random.default_rng(2)
    return {"support_points": rng.random((batch, 1, 70, 2), dtype=np.float32),
            "support_visible": np.ones((batch, 1, 70), bool),
            "support_links": np.tile(np.arange(70, dtype=np.int32)[:, None], (batch, 1, 1, 16))}


def test_device_arrays_are_recognised_and_refused_by_a_cpu_session(micro):
    assert is_device_array(FakeCudaArray()) and not is_device_array(np.ones(2)) and not is_device_array(torch.ones(2))
    with Engine(micro.folder / "support_encoder.onnx") as e:
        assert not e.runners["support_encoder"].accepts_device_arrays
        with pytest.raises(InputError, match="support: expected a host"):
            e.infer({"support": FakeCudaArray(), **_keypoints(1)})


def test_engine_gives_the_same_answer_for_torch_and_numpy_inputs(micro):
    rng = np.random.default_rng(1)
    feed = {"support": rng.standard_normal((2, 1, 3, 256, 256), dtype=np.float32), **_keypoints(2)}
    with Engine(micro.folder) as e:
        a = e.infer(feed, "support_encoder")
        b = e.infer({k: torch.from_numpy(v) for k, v in feed.items()}, "support_encoder")
    assert set(a) == set(b) and len(a) == 4
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_torch_tensor_memory_reaches_onnxruntime_without_a_copy(micro, monkeypatch):
    import onnxruntime as ort

    bound = []
    original = ort.OrtValue.ortvalue_from_numpy

    def spy(arr, *args, **kwargs):
        value = original(arr, *args, **kwargs)
        bound.append((arr, value.data_ptr()))
        return value

    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_numpy", staticmethod(spy))
    t = torch.randn(1, 1, 3, 256, 256)
    with Engine(micro.folder / "support_encoder.onnx") as e:
        e.infer({"support": t, **{k: torch.from_numpy(v) for k, v in _keypoints(1).items()}})
    arr, ptr = next((a, p) for a, p in bound if a.shape == (1, 1, 3, 256, 256))
    assert np.shares_memory(arr, t.numpy()) and ptr == t.data_ptr()


@pytest.mark.parametrize("version", [2, 3])
def test_pycuda_gpuarray_interface_is_a_device_array(version):
    """pycuda.gpuarray.GPUArray's interface has exactly these keys (no strides or stream key at all)."""
    from runtime.specs import device_pointer, device_shape_dtype

    class GPUArray:
        __cuda_array_interface__ = {"shape": (2, 3, 256, 256), "typestr": "<f2", "data": (0x7F0000000100, False),
                                    "version": version}

    arr = GPUArray()
    assert is_device_array(arr)
    assert device_shape_dtype(arr) == ((2, 3, 256, 256), np.dtype(np.float16))
    assert device_pointer(arr) == 0x7F0000000100
