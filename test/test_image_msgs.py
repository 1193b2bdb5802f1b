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

"""sensor_msgs/Image to RGB (every encoding, every rejection) and arrays back to Image."""

import array as array_module
import subprocess
import sys
from types import SimpleNamespace

import bisenet_ros.image_msgs as im
import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

H, W = 6, 8
RED = (200, 30, 10)
PAD = 0xAB  # Distinctive filler so a padding leak shows up in the pixels.

# encoding -> (channels, cv2 code from the raw channels to RGB or None).
RAW_8BIT = {
    'rgb8': (3, None),
    'bgr8': (3, cv2.COLOR_BGR2RGB),
    'rgba8': (4, cv2.COLOR_RGBA2RGB),
    'bgra8': (4, cv2.COLOR_BGRA2RGB),
    'mono8': (1, cv2.COLOR_GRAY2RGB),
}
RAW_16BIT = {
    'rgb16': (3, None),
    'bgr16': (3, cv2.COLOR_BGR2RGB),
    'rgba16': (4, cv2.COLOR_RGBA2RGB),
    'bgra16': (4, cv2.COLOR_BGRA2RGB),
    'mono16': (1, cv2.COLOR_GRAY2RGB),
}
YUV = {
    'yuv422': cv2.COLOR_YUV2RGB_UYVY,
    'uyvy': cv2.COLOR_YUV2RGB_UYVY,
    'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2,
    'yuyv': cv2.COLOR_YUV2RGB_YUY2,
}


def _rng():
    return np.random.default_rng(1234)


def _make_image(encoding, pixels, is_bigendian=0, step=None):
    """Build a real Image whose rows are ``pixels`` rows, padded to ``step``."""
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).view(np.uint8).reshape(height, -1)
    step = rows.shape[1] if step is None else step
    padded = np.full((height, step), PAD, dtype=np.uint8)
    padded[:, :rows.shape[1]] = rows
    msg = Image()
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = is_bigendian
    msg.step = step
    msg.data = padded.tobytes()
    return msg


def _random_raw(channels, dtype=np.uint8):
    shape = (H, W) if channels == 1 else (H, W, channels)
    return _rng().integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def _to_rgb_reference(raw, code):
    return raw.copy() if code is None else cv2.cvtColor(raw, code)


def _mosaic(rgb, pattern):
    """Sample an RGB image through a Bayer filter named like ROS ('rggb')."""
    out = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    channel = {'r': 0, 'g': 1, 'b': 2}
    for index, colour in enumerate(pattern):
        dy, dx = divmod(index, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, channel[colour]]
    return out


def _error_message(msg, convert=im.image_to_rgb):
    with pytest.raises(im.ImageFormatError) as info:
        convert(msg)
    return str(info.value)


def _assert_light_grey(rgb):
    assert np.all(rgb == rgb[..., :1]), rgb[0, 0]
    assert rgb.min() > 200, rgb[0, 0]


# --- supported encodings -------------------------------------------------

def test_supported_encodings_is_a_tuple_listing_every_advertised_encoding():
    """List exactly the raw, 16-bit, packed YUV and Bayer encodings handled."""
    assert isinstance(im.SUPPORTED_ENCODINGS, tuple)
    expected = set(RAW_8BIT) | set(RAW_16BIT) | set(YUV) | {
        'bayer_{}{}'.format(p, bits)
        for p in ('rggb', 'bggr', 'gbrg', 'grbg') for bits in (8, 16)}
    assert set(im.SUPPORTED_ENCODINGS) == expected


@pytest.mark.parametrize('encoding', sorted(RAW_8BIT))
def test_8bit_encoding_matches_cvtcolor_reference(encoding):
    """Convert 8-bit encodings like cv2.cvtColor."""
    channels, code = RAW_8BIT[encoding]
    raw = _random_raw(channels)
    rgb = im.image_to_rgb(_make_image(encoding, raw))
    assert rgb.dtype == np.uint8 and rgb.shape == (H, W, 3)
    np.testing.assert_array_equal(rgb, _to_rgb_reference(raw, code))


@pytest.mark.parametrize('encoding', sorted(RAW_16BIT))
def test_16bit_little_endian_encoding_keeps_the_high_byte(encoding):
    """Scale little-endian 16-bit samples to 8 bits by value >> 8."""
    channels, code = RAW_16BIT[encoding]
    raw = _random_raw(channels, np.uint16).astype('<u2')
    rgb = im.image_to_rgb(_make_image(encoding, raw, is_bigendian=0))
    expected = _to_rgb_reference((raw >> 8).astype(np.uint8), code)
    np.testing.assert_array_equal(rgb, expected)


@pytest.mark.parametrize('encoding', sorted(RAW_16BIT))
def test_16bit_big_endian_encoding_is_honoured(encoding):
    """Read 16-bit samples big-endian when is_bigendian."""
    channels, code = RAW_16BIT[encoding]
    raw = _random_raw(channels, np.uint16)
    msg = _make_image(encoding, raw.astype('>u2'), is_bigendian=1)
    expected = _to_rgb_reference((raw >> 8).astype(np.uint8), code)
    np.testing.assert_array_equal(im.image_to_rgb(msg), expected)


def test_16bit_scaling_maps_full_scale_to_255_and_exact_multiples_of_257():
    """Map 257 * k to k, so 65535 becomes 255."""
    raw = np.array([[0, 257, 257 * 128, 65535]], dtype='<u2')
    rgb = im.image_to_rgb(_make_image('mono16', raw))
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 1, 128, 255])


@pytest.mark.parametrize('encoding', sorted(YUV))
def test_packed_yuv422_matches_cvtcolor_reference(encoding):
    """Convert packed 4:2:2 like cv2.cvtColor."""
    raw = _random_raw(2)
    np.testing.assert_array_equal(
        im.image_to_rgb(_make_image(encoding, raw)), cv2.cvtColor(raw, YUV[encoding]))


def test_yuv422_is_read_as_uyvy_byte_order():
    """Read yuv422 as U Y V Y."""
    # U Y V Y with bright luma and neutral chroma is light grey; swapping the
    # byte order would read luma as chroma and give a saturated magenta.
    raw = np.tile(np.array([128, 220], np.uint8), (H, W, 1))
    _assert_light_grey(im.image_to_rgb(_make_image('yuv422', raw)))


def test_yuv422_yuy2_is_read_as_yuyv_byte_order():
    """Read yuv422_yuy2 as Y U Y V."""
    raw = np.tile(np.array([220, 128], np.uint8), (H, W, 1))
    _assert_light_grey(im.image_to_rgb(_make_image('yuv422_yuy2', raw)))


@pytest.mark.parametrize('bits', [8, 16])
@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer_pattern_demosaics_back_to_the_original_colour(pattern, bits):
    """Demosaic each ROS Bayer pattern with the matching OpenCV code."""
    rgb = np.empty((8, 8, 3), np.uint8)
    rgb[:] = RED
    if bits == 8:
        raw = _mosaic(rgb, pattern)
    else:
        raw = _mosaic(rgb.astype(np.uint16) * 257, pattern).astype('<u2')
    out = im.image_to_rgb(_make_image('bayer_{}{}'.format(pattern, bits), raw))
    centre = out[2:-2, 2:-2].reshape(-1, 3).astype(int)
    assert np.all(np.abs(centre - RED) <= 2), (pattern, centre[0])


@pytest.mark.parametrize('encoding, pixels', [
    ('rgb8', _random_raw(3)),
    ('bgra8', _random_raw(4)),
    ('mono8', _random_raw(1)),
    ('rgb16', _random_raw(3, np.uint16).astype('<u2')),
    ('yuv422', _random_raw(2)),
    ('bayer_grbg8', _random_raw(1)),
])
def test_padded_step_ignores_the_padding_bytes(encoding, pixels):
    """Skip row padding when step exceeds a row."""
    tight = im.image_to_rgb(_make_image(encoding, pixels))
    row_bytes = pixels.nbytes // H
    padded = im.image_to_rgb(_make_image(encoding, pixels, step=row_bytes + 13))
    np.testing.assert_array_equal(padded, tight)


def test_rgb8_without_padding_is_returned_without_copying():
    """Return tightly packed rgb8 as a view of the message data."""
    msg = _make_image('rgb8', _random_raw(3))
    assert np.shares_memory(im.image_to_rgb(msg), np.frombuffer(msg.data, np.uint8))


def test_duck_typed_message_with_bytes_data_is_accepted():
    """Accept any object with Image attributes and bytes data."""
    raw = _random_raw(3)
    msg = SimpleNamespace(height=H, width=W, encoding='bgr8', is_bigendian=0,
                          step=W * 3, data=raw.tobytes(), header=None)
    np.testing.assert_array_equal(im.image_to_rgb(msg), raw[..., ::-1])


def test_module_does_not_import_rclpy():
    """Keep the module importable without rclpy."""
    code = ('import sys, bisenet_ros.image_msgs; '
            "sys.exit('rclpy' in sys.modules)")
    assert subprocess.run([sys.executable, '-c', code]).returncode == 0


# --- rejections ----------------------------------------------------------

@pytest.mark.parametrize('encoding', ['16UC1', '32FC1', '8UC3', '64FC1'])
def test_depth_and_float_encodings_are_rejected_naming_the_encoding(encoding):
    """Reject depth/float encodings, naming them and the supported list."""
    msg = _make_image(encoding, _random_raw(1))
    text = _error_message(msg)
    assert repr(encoding) in text
    assert 'depth/float' in text
    assert 'rgb8' in text and 'bayer_rggb8' in text


@pytest.mark.parametrize('encoding', ['nv12', 'RGB8', ''])
def test_unknown_encoding_is_rejected_listing_supported_encodings(encoding):
    """Reject unknown encodings (case-sensitive, like ROS) with the supported list."""
    text = _error_message(_make_image(encoding, _random_raw(1)))
    assert 'unsupported encoding {!r}'.format(encoding) in text
    assert ', '.join(im.SUPPORTED_ENCODINGS) in text


def test_unsupported_encoding_error_is_a_value_error():
    """Raise a ValueError subclass."""
    with pytest.raises(ValueError):
        im.image_to_rgb(_make_image('32FC1', _random_raw(1)))


@pytest.mark.parametrize('width, height', [(0, 4), (4, 0), (0, 0)])
def test_zero_width_or_height_is_rejected(width, height):
    """Reject images with no pixels."""
    msg = Image(width=width, height=height, encoding='rgb8', step=width * 3)
    assert 'zero-sized image: width={} height={}'.format(width, height) in _error_message(msg)


@pytest.mark.parametrize('width, height', [(16385, 1), (1, 16385)])
def test_absurd_size_is_rejected_before_looking_at_data(width, height):
    """Reject sides over 16384 from the header alone."""
    msg = Image(width=width, height=height, encoding='mono8', step=width)
    text = _error_message(msg)
    assert 'absurd size' in text
    assert 'width={} height={}'.format(width, height) in text


def test_step_smaller_than_a_row_is_rejected():
    """Reject a step shorter than width * pixel size."""
    msg = _make_image('rgb8', _random_raw(3))
    msg.step = W * 3 - 1
    text = _error_message(msg)
    assert 'step {} is smaller than one row'.format(W * 3 - 1) in text
    assert 'width {} * 3 bytes per pixel = {}'.format(W, W * 3) in text


def test_step_too_small_for_16bit_counts_two_bytes_per_channel():
    """Count two bytes per channel for 16-bit encodings."""
    msg = _make_image('rgb16', _random_raw(3, np.uint16))
    msg.step = W * 3
    assert '6 bytes per pixel' in _error_message(msg)


def test_data_shorter_than_step_times_height_is_rejected():
    """Reject truncated data."""
    msg = _make_image('mono8', _random_raw(1))
    msg.data = bytes(H * W - 1)
    text = _error_message(msg)
    assert 'data is shorter than step * height' in text
    assert 'got {} bytes, expected {} * {} = {}'.format(H * W - 1, W, H, H * W) in text


def test_data_longer_than_step_times_height_is_rejected():
    """Reject trailing data rather than guess at the layout."""
    msg = _make_image('mono8', _random_raw(1))
    msg.data = bytes(H * W + 1)
    text = _error_message(msg)
    assert 'data is longer than step * height' in text
    assert 'got {} bytes'.format(H * W + 1) in text


def test_yuv422_with_odd_width_is_rejected():
    """Reject packed 4:2:2 with an unpaired pixel."""
    msg = Image(width=3, height=2, encoding='yuv422', step=6, data=bytes(12))
    assert 'yuv422 needs an even width' in _error_message(msg)
    assert 'width=3' in _error_message(msg)


# --- im.fill_image ------------------------------------------------------------

@pytest.mark.parametrize('encoding, channels', [
    ('mono8', 1), ('rgb8', 3), ('bgr8', 3), ('rgba8', 4), ('bgra8', 4)])
def test_fill_image_round_trips_through_image_to_rgb(encoding, channels):
    """Give back the array when the filled message is converted again."""
    array = _random_raw(channels)
    msg = im.fill_image(Image(), array, encoding, Header(frame_id='cam'))
    code = RAW_8BIT[encoding][1]
    np.testing.assert_array_equal(im.image_to_rgb(msg), _to_rgb_reference(array, code))


def test_fill_image_sets_every_field_and_keeps_the_header_object():
    """Set all fields and assign the very header object given."""
    header = Header(frame_id='camera_optical')
    msg = Image()
    array = _random_raw(3)
    assert im.fill_image(msg, array, 'rgb8', header) is msg
    assert msg.header is header
    assert (msg.height, msg.width, msg.encoding) == (H, W, 'rgb8')
    assert (msg.is_bigendian, msg.step) == (0, W * 3)
    assert bytes(msg.data) == array.tobytes()


def test_new_image_messages_keep_an_assigned_buffer_without_another_copy():
    """Keep the array.array fill_image makes (a plain Image copies it byte by byte)."""
    buffer = array_module.array('B', bytes(range(256)))
    fast, plain = im.new_image(Image), Image()
    fast.data = plain.data = buffer
    assert fast.data is buffer and plain.data is not buffer
    array = _random_raw(3)[:, ::-1]
    msg = im.fill_image(im.new_image(Image), array, 'rgb8', Header())
    np.testing.assert_array_equal(im.image_to_rgb(msg), array)


@pytest.mark.parametrize('shape, encoding', [((H, W), 'mono8'), ((H, W, 3), 'rgb8')])
def test_fill_image_infers_encoding_from_shape(shape, encoding):
    """Infer mono8 or rgb8 when encoding is None."""
    msg = im.fill_image(Image(), np.zeros(shape, np.uint8), None, Header())
    assert msg.encoding == encoding


def test_fill_image_accepts_non_contiguous_arrays():
    """Serialise strided arrays in C order."""
    array = _random_raw(3)[:, ::-1]
    msg = im.fill_image(Image(), array, 'rgb8', Header())
    np.testing.assert_array_equal(im.image_to_rgb(msg), array)


@pytest.mark.parametrize('array, encoding', [
    (np.zeros((H, W), np.uint16), 'mono8'),
    (np.zeros((H, W, 3), np.float32), 'rgb8'),
    (np.zeros((H, W, 3), np.uint8), 'mono8'),
    (np.zeros((H, W), np.uint8), 'rgb8'),
    (np.zeros((H, W, 4), np.uint8), 'rgb8'),
    (np.zeros((H, W, 4), np.uint8), None),
    (np.zeros((H, W, 3), np.uint8), '32FC1'),
    (np.zeros((0, W), np.uint8), 'mono8'),
    (np.zeros(W, np.uint8), None),
])
def test_fill_image_rejects_mismatched_dtype_shape_or_encoding(array, encoding):
    """Raise ValueError for wrong dtype, shape, encoding or empty arrays."""
    with pytest.raises(ValueError):
        im.fill_image(Image(), array, encoding, Header())


@pytest.mark.parametrize('change, kind', [
    ({'encoding': '32FC1'}, 'unsupported_encoding'),
    ({'width': 0}, 'zero_size'),
    ({'width': 20000}, 'absurd_size'),
    ({'step': 1}, 'bad_step'),
    ({'data': bytes(5)}, 'data_size'),
])
def test_each_rejection_carries_its_kind_for_diagnostics(change, kind):
    """Tag every error with a kind the node counts in /diagnostics."""
    msg = _make_image('rgb8', _random_raw(3))
    for field, value in change.items():
        setattr(msg, field, value)
    with pytest.raises(im.ImageFormatError) as err:
        im.image_to_rgb(msg)
    assert err.value.kind == kind
    corrupt = CompressedImage(format='jpeg', data=b'not a jpeg')
    with pytest.raises(im.ImageFormatError) as err:
        im.compressed_to_rgb(corrupt)
    assert err.value.kind == 'corrupt_compressed'
