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

"""Strings a sender chooses (frame_id, encoding, format) are bounded where they count."""

import bisenet_ros.image_msgs as im
import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image


def _raw(frame_id, encoding='rgb8'):
    msg = Image(height=4, width=6, encoding=encoding, step=18, data=bytes(72))
    msg.header.frame_id = frame_id
    return msg


def _png(frame_id, fmt='png'):
    _, data = cv2.imencode('.png', np.zeros((4, 6, 3), np.uint8))
    msg = CompressedImage(format=fmt, data=data.tobytes())
    msg.header.frame_id = frame_id
    return msg


@pytest.mark.parametrize('convert, build', [
    (im.image_to_rgb, _raw), (im.compressed_to_rgb, _png)])
@pytest.mark.parametrize('length', [im.MAX_FRAME_ID + 1, 2 << 20])
def test_a_frame_id_past_the_bound_is_refused_by_kind_with_its_length(convert, build, length):
    with pytest.raises(im.ImageFormatError) as error:
        convert(build('x' * length))
    assert error.value.kind == 'frame_id'
    assert f'frame_id of {length} characters (at most {im.MAX_FRAME_ID}' in str(error.value)
    assert len(str(error.value)) < 200


@pytest.mark.parametrize('convert, build', [
    (im.image_to_rgb, _raw), (im.compressed_to_rgb, _png)])
@pytest.mark.parametrize('frame_id', ['', 'camera_optical', 'f' * im.MAX_FRAME_ID, 'é' * 200])
def test_frame_ids_within_the_bound_are_served(convert, build, frame_id):
    assert convert(build(frame_id)).shape == (4, 6, 3)


@pytest.mark.parametrize('convert, build, field', [
    (im.image_to_rgb, lambda text: _raw('camera', encoding=text), 'encoding'),
    (im.compressed_to_rgb, lambda text: _png('camera', fmt=text + '; compressedDepth'),
     'format'),
    (im.compressed_to_rgb, lambda text: CompressedImage(format=text), 'format')])  # no data
def test_a_long_encoding_or_format_is_shown_cut_with_its_length(convert, build, field):
    with pytest.raises(im.ImageFormatError) as error:
        convert(build('z' * 100000))
    message = str(error.value)
    assert len(message) < 400 and 'characters)' in message and field in message, message


def test_shown_keeps_short_text_whole_and_cuts_long_text():
    assert im.shown('rgb8') == "'rgb8'"
    assert im.shown('a' * 1000) == repr('a' * 64) + '... (1000 characters)'
