# Copyright 2026 The bisenet_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.


"""sensor_msgs/CompressedImage to RGB: formats as image_transport writes them, sizes, damage."""

import bisenet_ros.image_msgs as im
from bisenet_ros.image_sizes import claimed_size
import cv2
from helpers import claiming
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage

RED = (200, 30, 10)


def _random_pixels(channels):
    shape = (6, 8) if channels == 1 else (6, 8, channels)
    return np.random.default_rng(1234).integers(0, 256, shape, dtype=np.uint8)


def _refusal(msg):
    """Return the message of the ImageFormatError that decoding ``msg`` raises."""
    with pytest.raises(im.ImageFormatError) as info:
        im.compressed_to_rgb(msg)
    return str(info.value)


def _compressed(fmt, data):
    msg = CompressedImage()
    msg.format = fmt
    msg.data = bytes(data)
    return msg


def _encode(ext, bgr_or_gray):
    ok, buf = cv2.imencode(ext, bgr_or_gray)
    assert ok
    return buf.tobytes()


def _blocky_rgb():
    """Return flat 16x16 colour blocks: aligned to JPEG's 4:2:0 macroblocks."""
    colours = np.array([RED, (20, 180, 40), (30, 60, 220), (240, 240, 240)], np.uint8)
    return np.kron(colours.reshape(2, 2, 3), np.ones((16, 16, 1), np.uint8))


def _assert_close_to_blocks(out, rgb):
    """Compare block interiors: decoders blur chroma across block edges."""
    assert out.shape == rgb.shape and out.dtype == np.uint8
    inner = np.s_[:, 4:12, :, 4:12]
    diff = out.reshape(2, 16, 2, 16, 3)[inner].astype(int) - rgb.reshape(2, 16, 2, 16, 3)[inner]
    assert np.abs(diff).max() <= 8


# --- compressed images ---------------------------------------------------

def test_compressed_jpeg_decodes_to_rgb():
    """Decode a JPEG published by image_transport to RGB."""
    rgb = _blocky_rgb()
    data = _encode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = im.compressed_to_rgb(_compressed('rgb8; jpeg compressed bgr8', data))
    _assert_close_to_blocks(out, rgb)


def test_compressed_png_decodes_to_exact_rgb():
    """Decode a PNG losslessly to RGB."""
    rgb = _blocky_rgb()
    data = _encode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = im.compressed_to_rgb(_compressed('bgr8; png compressed bgr8', data))
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize('fmt, ext', [('jpeg', '.jpg'), ('png', '.png')])
def test_legacy_bare_format_payload_is_treated_as_bgr(fmt, ext):
    """Treat a bare codec name as an OpenCV BGR payload."""
    rgb = _blocky_rgb()
    data = _encode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    _assert_close_to_blocks(im.compressed_to_rgb(_compressed(fmt, data)), rgb)


def test_colour_format_without_compressed_bgr_has_rgb_payload():
    """Keep channels when the format says the payload is not BGR."""
    # image_transport leaves such payloads in the raw encoding's RGB order.
    rgb = _blocky_rgb()
    out = im.compressed_to_rgb(_compressed('rgb8; png compressed rgb8', _encode('.png', rgb)))
    np.testing.assert_array_equal(out, rgb)


def test_compressed_grayscale_png_expands_to_three_channels():
    """Expand grayscale PNG to RGB."""
    gray = _random_pixels(1)
    out = im.compressed_to_rgb(_compressed('mono8; png compressed ', _encode('.png', gray)))
    np.testing.assert_array_equal(out, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))


def test_compressed_png_with_alpha_drops_the_alpha_channel():
    """Drop alpha from a 4-channel PNG."""
    bgra = _random_pixels(4)
    out = im.compressed_to_rgb(_compressed('bgra8; png compressed bgr8', _encode('.png', bgra)))
    np.testing.assert_array_equal(out, cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB))


@pytest.mark.parametrize('fmt, expected', [
    ('jpeg', im.CompressedFormat('', 'jpeg', True)),
    (' PNG ', im.CompressedFormat('', 'png', True)),
    ('', im.CompressedFormat('', '', True)),
    ('rgb8; jpeg compressed bgr8', im.CompressedFormat('rgb8', 'jpeg', True)),
    ('bgr8; png compressed bgr8', im.CompressedFormat('bgr8', 'png', True)),
    ('rgb8; jpeg compressed rgb8', im.CompressedFormat('rgb8', 'jpeg', False)),
    ('bgra8; png compressed', im.CompressedFormat('bgra8', 'png', False)),
    ('mono8; jpeg compressed ', im.CompressedFormat('mono8', 'jpeg', True)),
    ('bayer_rggb8; png compressed ', im.CompressedFormat('bayer_rggb8', 'png', True)),
])
def test_compressed_format_is_parsed_like_image_transport(fmt, expected):
    """Split encoding, codec and channel order as image_transport does."""
    assert im.parse_compressed_format(fmt) == expected


@pytest.mark.parametrize('fmt', [
    '16UC1; compressedDepth png', '32FC1; compressedDepth', '16UC1; compressedDepth rvl'])
def test_compressed_depth_formats_are_rejected(fmt):
    """Reject compressedDepth, naming the format."""
    msg = _compressed(fmt, _encode('.png', np.zeros((6, 8), np.uint8)))
    text = _refusal(msg)
    assert 'compressedDepth' in text and repr(fmt) in text


def test_corrupt_compressed_data_is_rejected():
    """Reject bytes that are not an image."""
    msg = _compressed('jpeg', _random_pixels(1).reshape(-1))
    assert _refusal(msg).startswith('corrupt compressed data')


def test_truncated_png_is_rejected_as_corrupt():
    """Reject a PNG cut in half."""
    data = _encode('.png', _blocky_rgb())
    msg = _compressed('png', data[:len(data) // 2])
    assert _refusal(msg).startswith('corrupt compressed data')


def test_empty_compressed_data_is_rejected_as_corrupt():
    """Reject an empty payload."""
    text = _refusal(_compressed('jpeg', b''))
    assert text.startswith('corrupt compressed data') and 'empty' in text


@pytest.mark.parametrize('codec', ['jpg', 'png'])
@pytest.mark.parametrize('width, height, limit, refused', [
    (16000, 16000, None, True), (30000, 30000, None, True), (7680, 4320, None, False),
    (7681, 4320, None, True), (640, 480, 640 * 480, False), (640, 481, 640 * 480, True)])
def test_the_header_size_is_checked_before_decoding(codec, width, height, limit, refused):
    data = claiming(f'.{codec}', width, height)
    assert claimed_size(data) == ({'jpg': 'jpeg'}.get(codec, codec), width, height)
    msg = CompressedImage(format=codec, data=data)
    kwargs = {} if limit is None else {'max_pixels': limit}
    if refused:
        with pytest.raises(im.ImageFormatError) as err:
            im.compressed_to_rgb(msg, **kwargs)
        assert err.value.kind == 'absurd_size'
        return
    # Within the limit the decoder may run: libjpeg fills the missing rows, PNG's
    # checksum fails. Either way the size it reaches is the one the header claimed.
    try:
        assert im.compressed_to_rgb(msg, **kwargs).shape == (height, width, 3)
    except im.ImageFormatError as exc:
        assert exc.kind == 'corrupt_compressed'


@pytest.mark.parametrize('ext, name', [('.bmp', 'bmp'), ('.webp', 'webp'), ('.tiff', 'tiff'),
                                       ('.ppm', 'pnm'), ('.pgm', 'pnm')])
def test_other_codecs_are_named_and_refused(ext, name):
    ok, data = cv2.imencode(ext, np.zeros((8, 8, 3 if ext != '.pgm' else 1), np.uint8))
    assert ok
    with pytest.raises(im.ImageFormatError, match=f'compressed {name} images are not accepted'):
        im.compressed_to_rgb(CompressedImage(format=ext[1:], data=data.tobytes()))


@pytest.mark.parametrize('data', [b'\xff\xd8\xff\xd9', b'\xff\xd8\xff\xda\x00\x02',
                                  b'\x89PNG\r\n\x1a\n\x00\x00', b'\xff\xd8', b'hello world'])
def test_damaged_headers_are_corrupt(data):
    with pytest.raises(im.ImageFormatError) as err:
        im.compressed_to_rgb(CompressedImage(format='jpeg', data=data))
    assert err.value.kind == 'corrupt_compressed'
