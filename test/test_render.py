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


"""Rendering: the palette mask, the overlay blend, confidence as mono8, only what is wanted."""

from bisenet_ros.render import colorize, confidence_to_mono8, overlay, palette_lut, render_outputs
from helpers import street_like
import numpy as np
import pytest


def test_colour_mask_uses_the_palette_and_overlay_blends():
    lut = palette_lut([(10, 20, 30), (200, 100, 0)])
    labels = np.array([[0, 1], [255, 1]], dtype=np.uint8)
    mask = colorize(labels, lut)
    assert mask[0, 0].tolist() == [10, 20, 30] and mask[1, 0].tolist() == [0, 0, 0]
    blended = overlay(np.full_like(mask, 100), mask, 0.5)
    assert blended[0, 1].tolist() == [150, 100, 50]
    with pytest.raises(ValueError, match='alpha'):
        overlay(mask, mask, 1.5)
    assert confidence_to_mono8(np.array([0.0, 0.5, 1.0])).tolist() == [0, 128, 255]


@pytest.mark.parametrize('wanted', [set(), {'labels'}, {'color'}, {'overlay'},
                                    {'labels', 'color', 'overlay', 'confidence'}])
def test_render_outputs_gives_exactly_the_wanted_outputs(wanted):
    lut = palette_lut([(10, 20, 30), (200, 100, 0)])
    rgb = street_like(6, 5)
    labels = (np.arange(30, dtype=np.uint8).reshape(6, 5) % 2)
    confidence = np.linspace(0, 1, 30, dtype=np.float32).reshape(6, 5)
    produced = render_outputs(rgb, labels, lut, wanted, 0.25, confidence)
    assert set(produced) == wanted
    expected = {'labels': labels, 'color': colorize(labels, lut),
                'overlay': overlay(rgb, colorize(labels, lut), 0.25),
                'confidence': confidence_to_mono8(confidence)}
    for name, array in produced.items():
        assert np.array_equal(array, expected[name]), name
    assert 'confidence' not in render_outputs(rgb, labels, lut, {'confidence'}, 0.5, None)
    with pytest.raises(ValueError, match="unknown outputs \\['depth'\\]"):
        render_outputs(rgb, labels, lut, {'depth'})
