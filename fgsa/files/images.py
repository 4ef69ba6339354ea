"""Read an image file as (H, W, 3) uint8 RGB, refusing decompression bombs and damaged files (no torch).

Every image the toolkit reads (``runtime.predict``, the dataset readers, parity, evaluation, calibration)
goes through :func:`read_image_rgb`:

1. the file is read once into memory (at most :data:`MAX_FILE_BYTES`), so what is checked is what is decoded;
2. width and height come from the header (PNG, JPEG, BMP, WebP; other formats are refused) and the image
   is refused when width x height exceeds the pixel limit — a 631-byte JPEG can declare 30000 x 30000
   pixels (2.7 GB once decoded) and OpenCV would decode it in full;
3. a truncated file is refused: a JPEG whose data stops before its end-of-image marker (libjpeg only
   prints "Premature end of JPEG file" and fills the rest with grey), a PNG without its IEND chunk; and a
   corrupt one: the decoder's own messages are captured during decoding (libjpeg's "Corrupt JPEG data",
   libpng's errors) and turned into the error instead of going to stderr. Capturing means redirecting
   file descriptor 2 for the decode, so decodes are serialised by a lock and any other output written to
   stderr meanwhile is written again afterwards;
4. OpenCV decodes with ``IMREAD_COLOR``, as ``mmcv.imread`` in the official pipeline: EXIF orientation is
   applied, an alpha channel is dropped (not blended), greyscale becomes 3 equal channels, 16-bit
   samples are scaled to 8 bits.

Pixel limit: :data:`DEFAULT_MAX_PIXELS`, raised (or lowered) with the ``max_pixels`` argument,
``--max-image-pixels`` of ``runtime.predict`` or the environment variable ``FGSA_MAX_IMAGE_PIXELS``.
Every failure is an :class:`fgsa.errors.InputError` naming the file.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from fgsa.errors import InputError

#: 100 megapixels: above any camera this project has seen data from (a 50 MP photo is 8688 x 5792);
#: decoding costs 3 bytes per pixel twice (BGR + RGB), so 600 MB at the limit.
DEFAULT_MAX_PIXELS = 100_000_000
#: Compressed files above this size are refused before they are read (no real photo comes close).
MAX_FILE_BYTES = 512 * 1024 * 1024
ENV_MAX_PIXELS = "FGSA_MAX_IMAGE_PIXELS"
FORMATS = "PNG, JPEG, BMP or WebP"


def max_pixels_default() -> int:
    """The pixel limit: ``$FGSA_MAX_IMAGE_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get(ENV_MAX_PIXELS)
    if raw is None or raw == "":
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise InputError(ENV_MAX_PIXELS, "a positive whole number of pixels", repr(raw),
                         f"unset it for the default {DEFAULT_MAX_PIXELS}")
    return value


def _jpeg_info(data: bytes) -> tuple[int, int, int]:
    """(width, height, offset of the first scan's data) from the JPEG marker segments."""
    pos, n = 2, len(data)
    size = None
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ValueError(f"no JPEG marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker == 0xD9:
            raise ValueError("end of image before any scan")
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > n:
            raise ValueError(f"a marker segment at byte {pos} runs past the end of the file")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn: precision, height, width
            if length < 7:
                raise ValueError("a frame header shorter than 7 bytes")
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            size = (width, height)
        if marker == 0xDA:  # start of scan: the entropy-coded data follows the header
            if size is None:
                raise ValueError("a scan before the frame header")
            return size[0], size[1], pos + 2 + length
        pos += 2 + length
    raise ValueError("the file ends inside its headers")


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ValueError("no IHDR header chunk")
    return struct.unpack(">II", data[16:24])


def _bmp_size(data: bytes) -> tuple[int, int]:
    if len(data) < 26:
        raise ValueError("a header shorter than 26 bytes")
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise ValueError(f"an unknown WebP chunk {chunk!r}")


def image_info(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from an image file's header bytes; ValueError when it is not one we read."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ("PNG",) + tuple(_png_size(data))
    if data.startswith(b"\xff\xd8"):
        w, h, _ = _jpeg_info(data)
        return "JPEG", w, h
    if data.startswith(b"BM"):
        return ("BMP",) + tuple(_bmp_size(data))
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return ("WebP",) + tuple(_webp_size(data))
    raise ValueError(f"not a {FORMATS} file (starts with {data[:8]!r})")


def _check_complete(fmt: str, data: bytes) -> None:
    """Refuse files whose data stops early where the decoder itself would only warn (JPEG)."""
    if fmt == "JPEG":
        _, _, scan = _jpeg_info(data)
        # Entropy-coded data escapes every 0xFF byte, so an end-of-image marker after the first scan can
        # only be the real one (an EXIF thumbnail's own marker sits before the scan).
        if data.rfind(b"\xff\xd9", scan) < 0:
            raise ValueError("the JPEG data ends before its end-of-image marker (truncated file)")
    elif fmt == "PNG" and data.rfind(b"IEND", len(data) - 64) < 0:
        raise ValueError("the PNG has no IEND chunk at its end (truncated file)")


#: decoder messages that mean the pixels are wrong (others, e.g. libpng's iCCP warnings, are passed on)
#: (libjpeg's and libpng's hard errors already make OpenCV return None; these are the ones it only prints)
_FATAL_MESSAGES = ("Corrupt JPEG data", "Premature end of JPEG", "libpng error")
_STDERR_LOCK = threading.Lock()


def _decode_watching_stderr(data: bytes):
    """(BGR image or None, the decoder's stderr text): OpenCV reports libjpeg/libpng warnings only there."""
    import cv2

    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with tempfile.TemporaryFile() as tmp:
                os.dup2(tmp.fileno(), 2)
                try:
                    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                finally:
                    os.dup2(saved, 2)
                tmp.seek(0)
                text = tmp.read().decode("utf-8", "replace")
        finally:
            os.close(saved)
    return img, text


def read_image_rgb(path: str | Path, field: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of the image file ``path``; :class:`InputError` (``field``: the CLI flag or
    file it came from) when it is missing, too large, of another format, truncated or undecodable."""
    path = Path(path)
    where = f"{field} {path}" if str(path) not in field else field
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            # read what fstat promised (read(n) allocates n bytes up front), then check the file did not grow
            data = fh.read(min(size, MAX_FILE_BYTES)) if size <= MAX_FILE_BYTES else b""
            grew = size > MAX_FILE_BYTES or bool(fh.read(1))
    except OSError as exc:
        raise InputError(where, "a readable image file", exc.strerror or type(exc).__name__,
                         "check the path") from None
    if grew:
        raise InputError(where, f"an image file of at most {MAX_FILE_BYTES >> 20} MiB", f"{size:,} bytes")
    return decode_image_rgb(data, where, max_pixels)


def decode_image_rgb(data: bytes, where: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file's bytes (steps 2-4 of the module docstring: the same checks as
    :func:`read_image_rgb`, for bytes that come from a request instead of a file); :class:`InputError`
    naming ``where`` otherwise."""
    import cv2

    limit = max_pixels_default() if max_pixels is None else int(max_pixels)
    if len(data) > MAX_FILE_BYTES:
        raise InputError(where, f"an image file of at most {MAX_FILE_BYTES >> 20} MiB", f"{len(data):,} bytes")
    try:
        fmt, width, height = image_info(data)
    except ValueError as exc:
        raise InputError(where, f"a {FORMATS} image", str(exc) if data else "no bytes at all",
                         "convert it to PNG or JPEG") from None
    if width <= 0 or height <= 0:
        raise InputError(where, "an image of at least 1 x 1 pixels", f"{width} x {height} in its header")
    if width * height > limit:
        raise InputError(where, f"at most {limit:,} pixels", f"{width} x {height} = {width * height:,} in its "
                         f"{fmt} header", f"shrink the image, or raise the limit with --max-image-pixels or "
                         f"{ENV_MAX_PIXELS} if you trust the file")
    try:
        _check_complete(fmt, data)
    except ValueError as exc:
        raise InputError(where, f"a complete {fmt} file", str(exc), "re-export or re-download it") from None
    try:
        img, messages = _decode_watching_stderr(data)
    except cv2.error as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "a decoder error"
        raise InputError(where, f"a decodable {fmt} image", msg, "re-export or re-download it") from None
    fatal = [line.strip() for line in messages.splitlines() if any(m in line for m in _FATAL_MESSAGES)]
    if fatal or img is None or img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        said = f" ({'; '.join(fatal)[:200]})" if fatal else ""
        raise InputError(where, f"an undamaged {fmt} image", f"corrupt data{said}", "re-export or re-download it")
    if messages.strip():
        sys.stderr.write(messages)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _encoded_length(data: bytes) -> int | None:
    """Where the image file in ``data`` ends, from its own structure; None when that cannot be told."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        end = data.rfind(b"IEND")
        return end + 8 if end >= 0 else None  # the IEND chunk's type, then its 4-byte CRC
    if data.startswith(b"\xff\xd8"):
        end = data.rfind(b"\xff\xd9")
        return end + 2 if end >= 0 else None
    if data.startswith(b"BM") and len(data) >= 6:
        return struct.unpack("<I", data[2:6])[0]
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return struct.unpack("<I", data[4:8])[0] + 8
    return None


def strip_zero_padding(data: bytes) -> bytes:
    """``data`` without the zero bytes after the end of the image file it holds: the rows of a batch of
    encoded images are one dense [B, N] tensor, so shorter files are zero-padded to the longest. Anything
    else after the file's end is kept (the completeness checks then judge it)."""
    end = _encoded_length(data)
    if end is None or end >= len(data) or end < 8 or data[end:].strip(b"\0"):
        return data
    return data[:end]
