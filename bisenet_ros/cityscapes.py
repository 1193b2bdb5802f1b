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
Cityscapes class table: trainIds, names, official colours, labelId <-> trainId.

The one place these facts live; checkpoints may carry their own names and
palette, which then take precedence (see ``checkpoint.CheckpointInfo``).
"""

import numpy as np

IGNORE_ID = 255

# (trainId, labelId, name, RGB colour) of the 19 evaluated classes.
_CLASSES = (
    (0, 7, 'road', (128, 64, 128)),
    (1, 8, 'sidewalk', (244, 35, 232)),
    (2, 11, 'building', (70, 70, 70)),
    (3, 12, 'wall', (102, 102, 156)),
    (4, 13, 'fence', (190, 153, 153)),
    (5, 17, 'pole', (153, 153, 153)),
    (6, 19, 'traffic light', (250, 170, 30)),
    (7, 20, 'traffic sign', (220, 220, 0)),
    (8, 21, 'vegetation', (107, 142, 35)),
    (9, 22, 'terrain', (152, 251, 152)),
    (10, 23, 'sky', (70, 130, 180)),
    (11, 24, 'person', (220, 20, 60)),
    (12, 25, 'rider', (255, 0, 0)),
    (13, 26, 'car', (0, 0, 142)),
    (14, 27, 'truck', (0, 0, 70)),
    (15, 28, 'bus', (0, 60, 100)),
    (16, 31, 'train', (0, 80, 100)),
    (17, 32, 'motorcycle', (0, 0, 230)),
    (18, 33, 'bicycle', (119, 11, 32)),
)

CLASS_NAMES = tuple(c[2] for c in _CLASSES)
PALETTE = tuple(c[3] for c in _CLASSES)
NUM_CLASSES = len(_CLASSES)


def label_id_to_train_id_lut():
    """Return a (256,) uint8 table mapping Cityscapes labelIds to trainIds (255 = ignore)."""
    lut = np.full(256, IGNORE_ID, dtype=np.uint8)
    for train_id, label_id, _, _ in _CLASSES:
        lut[label_id] = train_id
    return lut


def default_palette(num_classes):
    """
    Return ``num_classes`` RGB colours: Cityscapes' first, then well-spread hues.

    Used when a checkpoint carries no palette of its own.
    """
    colours = list(PALETTE[:num_classes])
    for index in range(len(colours), num_classes):
        # Golden-ratio hue steps keep consecutive extra classes visually distinct.
        hue = (index * 0.618033988749895) % 1.0
        rgb = np.array([hue, hue + 2 / 3, hue + 1 / 3]) % 1.0
        colours.append(tuple(int(v) for v in (np.abs(rgb * 6 - 3) - 1).clip(0, 1) * 205 + 50))
    return tuple(colours)
