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
Joint image/label augmentation on numpy arrays (RGB uint8, label uint8).

Labels are class ids, so every geometric operation on them uses nearest
neighbour: interpolating ids would invent classes on region borders.
"""

from bisenet_ros.checkpoint import NORMALISATION
from bisenet_ros.cityscapes import IGNORE_ID
from bisenet_ros.models import COINCHEUNG
import cv2
import numpy as np
import torch

# Training from scratch follows CoinCheung's recipe and statistics.
MEAN, STD = NORMALISATION[COINCHEUNG]


class Compose:
    """Apply transforms in order to ``(rgb, label)``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, rgb, label):
        for t in self.transforms:
            rgb, label = t(rgb, label)
        return rgb, label


class RandomScale:
    """Resize both by a factor drawn uniformly from ``scales`` (min, max)."""

    def __init__(self, scales=(0.75, 2.0), rng=None):
        self.scales = scales
        self.rng = rng or np.random.default_rng()

    def __call__(self, rgb, label):
        s = self.rng.uniform(*self.scales)
        h, w = label.shape
        size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        return rgb, label


class Resize:
    """Resize both to a fixed ``(width, height)``."""

    def __init__(self, size):
        self.size = tuple(size)

    def __call__(self, rgb, label):
        rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, self.size, interpolation=cv2.INTER_NEAREST)
        return rgb, label


class RandomCrop:
    """
    Crop ``(width, height)``; pad first where the input is smaller.

    The label pad is the ignore id, so padding never teaches a class; the image
    pad is ``mean`` (the normalisation the network is trained with), so it
    normalises to zero.
    """

    def __init__(self, size, ignore=IGNORE_ID, rng=None, mean=MEAN):
        self.size = tuple(size)
        self.ignore = ignore
        self.rng = rng or np.random.default_rng()
        self.fill = tuple(int(round(m * 255)) for m in mean)

    def __call__(self, rgb, label):
        cw, ch = self.size
        h, w = label.shape
        pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
        if pad_h or pad_w:
            rgb = cv2.copyMakeBorder(rgb, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                     value=self.fill)
            label = cv2.copyMakeBorder(label, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                       value=self.ignore)
            h, w = label.shape
        y = int(self.rng.integers(0, h - ch + 1))
        x = int(self.rng.integers(0, w - cw + 1))
        return rgb[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]


class RandomHorizontalFlip:
    """Mirror both with probability ``p``; driving scenes are left/right symmetric."""

    def __init__(self, p=0.5, rng=None):
        self.p = p
        self.rng = rng or np.random.default_rng()

    def __call__(self, rgb, label):
        if self.rng.random() < self.p:
            return rgb[:, ::-1], label[:, ::-1]
        return rgb, label


class ColorJitter:
    """Random brightness, contrast and saturation factors in ``[1 - x, 1 + x]``; image only."""

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4, rng=None):
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.rng = rng or np.random.default_rng()

    def _factor(self, amount):
        return self.rng.uniform(max(0.0, 1.0 - amount), 1.0 + amount)

    def __call__(self, rgb, label):
        img = rgb.astype(np.float32)
        if self.brightness:
            img *= self._factor(self.brightness)
        if self.contrast:
            # Contrast pivots on the mean grey level, as torchvision does.
            grey = (img @ np.float32([0.299, 0.587, 0.114])).mean()
            img = (img - grey) * self._factor(self.contrast) + grey
        if self.saturation:
            grey = (img @ np.float32([0.299, 0.587, 0.114]))[..., None]
            img = (img - grey) * self._factor(self.saturation) + grey
        return np.clip(img, 0, 255).astype(np.uint8), label


class ToTensor:
    """RGB uint8 HxWx3 -> normalised float32 3xHxW; label -> int64 HxW."""

    def __init__(self, mean=MEAN, std=STD):
        self.mean = np.float32(mean) * 255
        self.std = np.float32(std) * 255

    def __call__(self, rgb, label):
        img = (rgb.astype(np.float32) - self.mean) / self.std
        img = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        return img, torch.from_numpy(np.ascontiguousarray(label).astype(np.int64))


def train_transform(crop_size, scales=(0.75, 2.0), jitter=0.4, mean=MEAN, std=STD,
                    rng=None):
    """Return the training pipeline: scale, crop (W, H), flip, jitter, normalise."""
    rng = rng or np.random.default_rng()
    return Compose([
        RandomScale(scales, rng),
        RandomCrop(crop_size, rng=rng, mean=mean),
        RandomHorizontalFlip(0.5, rng),
        ColorJitter(jitter, jitter, jitter, rng),
        ToTensor(mean, std),
    ])
