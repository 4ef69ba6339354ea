"""fgsa.files.images: the header decides before the decoder runs; damaged files are errors naming the file."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from fgsa.errors import InputError
from fgsa.files.images import DEFAULT_MAX_PIXELS, ENV_MAX_PIXELS, image_info, read_image_rgb
from tests.fgsa.files.conftest import jpeg_bomb, photo, png_bomb


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, ext", [(jpeg_bomb, ".jpg"), (png_bomb, ".png")])
@pytest.mark.parametrize("side", [30000, 60000])
def test_bombs_are_refused_from_the_header(tmp_path, make, ext, side):
    path = _write(tmp_path, "bomb" + ext, make(side))
    assert path.stat().st_size < 1000
    with pytest.raises(InputError) as info:
        read_image_rgb(path, "--query")
    msg = str(info.value)
    assert str(path) in msg and f"{side} x {side}" in msg and f"{DEFAULT_MAX_PIXELS:,}" in msg
    assert "--max-image-pixels" in msg and ENV_MAX_PIXELS in msg


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp"])
def test_header_sizes_match_the_decoder(ext):
    img = photo(1, 97, 131)
    data = cv2.imencode(ext, img)[1].tobytes()
    fmt, w, h = image_info(data)
    assert (w, h) == (131, 97), fmt


def test_good_files_decode_like_opencv(tmp_path):
    img = photo(2)
    for ext in (".png", ".jpg"):
        path = tmp_path / ("p" + ext)
        cv2.imwrite(str(path), img)
        np.testing.assert_array_equal(read_image_rgb(path), cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


def test_the_limit_can_be_lowered_and_raised(tmp_path, monkeypatch):
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), photo(3, 100, 100))  # 10 000 pixels
    with pytest.raises(InputError, match="at most 9,999 pixels"):
        read_image_rgb(path, max_pixels=9999)
    assert read_image_rgb(path, max_pixels=10000).shape == (100, 100, 3)
    monkeypatch.setenv(ENV_MAX_PIXELS, "5000")
    with pytest.raises(InputError, match="at most 5,000 pixels"):
        read_image_rgb(path)
    monkeypatch.setenv(ENV_MAX_PIXELS, "lots")
    with pytest.raises(InputError, match=ENV_MAX_PIXELS):
        read_image_rgb(path)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_files_are_refused(tmp_path, ext):
    data = cv2.imencode(ext, photo(4))[1].tobytes()
    path = _write(tmp_path, "half" + ext, data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as info:
        read_image_rgb(path, "--support")
    assert str(info.value).startswith(f"--support {path}")


def test_corrupt_jpeg_data_is_refused_with_the_decoders_words(tmp_path, capfd):
    data = cv2.imencode(".jpg", photo(5))[1].tobytes()
    # junk between the scan's end and the end-of-image marker: the decoder notices, but only warns
    path = _write(tmp_path, "corrupt.jpg", data[:-2] + b"\x55" * 40 + data[-2:])
    with pytest.raises(InputError, match="Corrupt JPEG data"):
        read_image_rgb(path)
    assert capfd.readouterr().err == ""  # the decoder's message went into the error, not to stderr


def test_exif_thumbnail_end_marker_does_not_hide_truncation(tmp_path):
    """An EXIF thumbnail carries its own end-of-image marker before the scan: not the file's end."""
    data = cv2.imencode(".jpg", photo(6))[1].tobytes()
    thumb = cv2.imencode(".jpg", photo(7, 16, 16))[1].tobytes()
    app1 = b"Exif\x00\x00" + thumb
    with_thumb = data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]
    ok = _write(tmp_path, "thumb.jpg", with_thumb)
    assert read_image_rgb(ok).shape == (120, 160, 3)
    cut = _write(tmp_path, "thumb_cut.jpg", with_thumb[: len(with_thumb) - len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_image_rgb(cut)


def _exif_orientation(value: int) -> bytes:
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, value, 0) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    return b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\x00\x00" + tiff


def test_exif_orientation_is_applied_and_alpha_dropped(tmp_path):
    img = photo(8, 60, 100)
    data = cv2.imencode(".png", img)[1].tobytes()
    jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
    rotated = _write(tmp_path, "rot.jpg", jpg[:2] + _exif_orientation(6) + jpg[2:])  # 6: rotate 90 clockwise
    out = read_image_rgb(rotated)
    assert out.shape == (100, 60, 3)
    want = cv2.rotate(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), cv2.ROTATE_90_CLOCKWISE)
    assert np.abs(out.astype(int) - want).mean() < 3  # JPEG at quality 100
    rgba = np.dstack([img, np.full(img.shape[:2], 7, np.uint8)])  # nearly transparent: dropped, not blended
    path = tmp_path / "alpha.png"
    cv2.imwrite(str(path), rgba)
    np.testing.assert_array_equal(read_image_rgb(path), cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    assert data  # the PNG path above used the same picture


@pytest.mark.parametrize("data, match", [
    (b"GIF89a" + b"\x00" * 20, "PNG, JPEG, BMP or WebP"),
    (b"", "PNG, JPEG, BMP or WebP"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "IHDR"),
    (b"\xff\xd8\xff\xc0\x00", "ends inside its headers"),
])
def test_other_and_broken_headers_are_refused(tmp_path, data, match):
    with pytest.raises(InputError, match=match):
        read_image_rgb(_write(tmp_path, "x.img", data))


def test_missing_file_names_the_flag_and_prints_nothing_else(tmp_path, capfd):
    with pytest.raises(InputError, match="--query .*missing.jpg: expected a readable image file"):
        read_image_rgb(tmp_path / "missing.jpg", "--query")
    assert capfd.readouterr().err == ""
