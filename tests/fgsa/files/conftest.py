"""Crafted image files shared by the fgsa.files and runtime CLI tests."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int) -> bytes:
    """A PNG declaring side x side RGB pixels, with a few kB of zeros as data (what a bomb looks like)."""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + png_chunk(b"tEXt", b"c\x00" + b"x" * 500) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 4000, 9))
            + png_chunk(b"IEND", b""))


def jpeg_bomb(side: int) -> bytes:
    """An 8x8 grey JPEG whose frame header is patched to declare side x side pixels (~630 bytes)."""
    data = bytearray(cv2.imencode(".jpg", np.full((8, 8, 3), 128, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 50])[1])
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def photo(seed: int = 0, h: int = 120, w: int = 160) -> np.ndarray:
    """A smooth random RGB picture (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8, w // 8, 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
