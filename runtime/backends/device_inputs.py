"""Device inputs of the TensorRT runner (CuPy, torch CUDA tensors, Numba, pycuda GPUArrays): ordered after
the work that produces them, then bound by address, or copied on the device where TensorRT cannot take the
address.

Ordering, in this order of preference:
  1. DLPack (``__dlpack__(stream=ours)``): the producer itself makes our stream wait for its current stream
     (torch: an event recorded on ``torch.cuda.current_stream()``); this is the only protocol through which
     torch names the stream it wrote on, since its ``__cuda_array_interface__`` is version 2 without one.
  2. ``__cuda_array_interface__["stream"]``: an event recorded there is waited for on our stream.
  3. An interface of version 2 without a stream (pycuda, older Numba): the legacy default stream, where such
     producers queue their work. Version 3 without a stream (or None) means the data is ready.

Binding: TensorRT takes only 256-byte aligned I/O addresses, and ``set_tensor_address`` returns False for one
it refuses, keeping the address it had (the runner's own buffer): a view with an offset (``x[1:]``) would then
compute on whatever the runner's buffer last held. Such an input is copied device-to-device into the runner's
buffer on our stream instead (counted in the runner's ``stats["device_input_copies"]``).
"""

from __future__ import annotations

from typing import Any

IO_ALIGNMENT = 256  # bytes; TensorRT's requirement for every I/O tensor address
CUDA_STREAM_LEGACY = 1  # cudaStreamLegacy: the legacy default stream (torch's and pycuda's default stream)


def order_after_producer(cuda, arr: Any, stream, stream_handle: int, event) -> str:
    """Make ``stream`` wait for the work that produces ``arr``; returns how ("dlpack", "stream <s>" or
    "ready"). ``cuda`` is the runner's cuda-python wrapper, ``event`` an event it may record."""
    dlpack = getattr(arr, "__dlpack__", None)
    if dlpack is not None:
        try:
            dlpack(stream=stream_handle)  # the capsule is dropped: only the ordering is wanted
            return "dlpack"
        except TypeError:  # a producer that predates the stream argument: fall through to the interface
            pass
    cai = getattr(arr, "__cuda_array_interface__", None)
    if cai is None:
        return "ready"
    producer = cai.get("stream", None if cai.get("version", 0) >= 3 else CUDA_STREAM_LEGACY)
    if producer is None or int(producer) == stream_handle:
        return "ready"
    producer = int(producer) or CUDA_STREAM_LEGACY  # 0 means the legacy default stream too
    rt = cuda.rt
    cuda(rt.cudaEventRecord(event, producer), "cudaEventRecord (producer stream)")
    cuda(rt.cudaStreamWaitEvent(stream, event, 0), "cudaStreamWaitEvent")
    return f"stream {producer}"


def bind_or_copy(cuda, context, name: str, ptr: int, own: int, nbytes: int, stream) -> bool:
    """Bind input ``name`` to the caller's device memory at ``ptr`` (True), or, where TensorRT cannot take
    that address, copy ``nbytes`` from it into the runner's buffer ``own`` on ``stream`` (False). Either way
    the context reads this call's data."""
    if ptr % IO_ALIGNMENT == 0 and context.set_tensor_address(name, ptr):
        return True
    bind_own(context, name, own)
    if nbytes:
        rt = cuda.rt
        cuda(rt.cudaMemcpyAsync(own, ptr, nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream),
             f"cudaMemcpyAsync D2D (input '{name}')")
    return False


def bind_own(context, name: str, ptr: int) -> None:
    """Bind ``name`` to one of the runner's own buffers (cudaMalloc memory, 256-byte aligned); a refusal
    would leave the context on an address that is not this call's, so it is an error."""
    from runtime.errors import EngineError

    if not context.set_tensor_address(name, ptr):
        raise EngineError(f"TensorRT refused the runner's own device buffer 0x{ptr:x} for tensor '{name}'",
                          "this is a bug in the runner or a TensorRT that needs a larger alignment; report it "
                          "with the TensorRT log above")
