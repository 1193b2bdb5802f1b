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
Segmentation datasets whose labels come out as Cityscapes trainIds.

Both readers yield ``(rgb uint8 HxWx3, label uint8 HxW)`` pairs before any
transform, so the same augmentation and evaluation code serves every source.
CamVid's 11 classes are mapped onto the Cityscapes trainIds so that one
19-class network and palette covers both.
"""

from pathlib import Path

from bisenet_ros.cityscapes import CLASS_NAMES, IGNORE_ID, label_id_to_train_id_lut
import cv2
import numpy as np

# CamVid (SegNet version) class index -> Cityscapes trainId; index 11 is Unlabelled.
CAMVID_TO_TRAIN_ID = (10, 2, 5, 0, 1, 8, 7, 4, 13, 11, 12, IGNORE_ID)
CAMVID_CLASS_NAMES = ('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol',
                      'Fence', 'Car', 'Pedestrian', 'Bicyclist')
# The Cityscapes trainIds that CamVid labels at all; metrics are reported over these.
CAMVID_TRAIN_IDS = tuple(sorted(t for t in CAMVID_TO_TRAIN_ID if t != IGNORE_ID))
# Class sets a model can be scored on by name (a CamVid model never saw the others).
CLASS_PRESETS = {'camvid': CAMVID_TRAIN_IDS}
# The classes each reader labels in: both yield Cityscapes trainIds.
DATASET_CLASS_NAMES = {'camvid': CLASS_NAMES, 'cityscapes': CLASS_NAMES}


def camvid_to_train_id_lut():
    """Return a (256,) uint8 table mapping CamVid class indices to trainIds (255 = ignore)."""
    lut = np.full(256, IGNORE_ID, dtype=np.uint8)
    lut[:len(CAMVID_TO_TRAIN_ID)] = CAMVID_TO_TRAIN_ID
    return lut


def read_rgb(path):
    """Read an image file as RGB uint8; raise instead of returning None like OpenCV."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f'cannot read image {path}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_label(path, lut=None):
    """Read a single-channel label PNG as uint8, optionally remapped through ``lut``."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise FileNotFoundError(f'cannot read label {path}')
    if label.ndim != 2:
        raise ValueError(f'label {path} has shape {label.shape}; expected one channel')
    label = label.astype(np.uint8, copy=False)
    return lut[label] if lut is not None else label


class SegmentationDataset:
    """
    A list of (image path, label path) pairs with a label lookup table.

    ``transform(rgb, label) -> anything`` is applied per item; ``cache=True``
    decodes every file once and keeps it in memory, which matters on a small
    CPU where PNG decoding would otherwise compete with training for the cores.
    """

    def __init__(self, pairs, lut=None, transform=None, cache=False):
        self.pairs = list(pairs)
        if not self.pairs:
            raise ValueError('dataset is empty')
        self.lut = lut
        self.transform = transform
        self._cache = [None] * len(self.pairs) if cache else None

    def __len__(self):
        return len(self.pairs)

    def load(self, index):
        """Return the untransformed ``(rgb, label)`` of item ``index``."""
        if self._cache is not None and self._cache[index] is not None:
            return self._cache[index]
        image_path, label_path = self.pairs[index]
        item = read_rgb(image_path), read_label(label_path, self.lut)
        if item[0].shape[:2] != item[1].shape:
            raise ValueError(f'image {image_path} and label {label_path} differ in size')
        if self._cache is not None:
            self._cache[index] = item
        return item

    def __getitem__(self, index):
        rgb, label = self.load(index)
        if self.transform is not None:
            return self.transform(rgb, label)
        return rgb, label


def camvid_pairs(root, split):
    """Read ``<root>/<split>.txt`` (lines ``image label`` relative to root) into path pairs."""
    root = Path(root)
    list_file = root / f'{split}.txt'
    if not list_file.is_file():
        raise FileNotFoundError(f'{list_file} not found: a CamVid root lists the frames of '
                                'each split in <split>.txt (lines "image label")')
    pairs = []
    for line_no, line in enumerate(list_file.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f'{list_file}:{line_no}: expected "image label", got {line!r}')
        pairs.append((root / fields[0], root / fields[1]))
    if not pairs:
        raise ValueError(f'{list_file} lists no frames')
    return pairs


def cityscapes_pairs(root, split):
    """
    Pair ``leftImg8bit/<split>/*/*_leftImg8bit.png`` with their gtFine labels.

    Prefers ``*_labelTrainIds.png`` and falls back to ``*_labelIds.png``; which
    one was chosen (and so whether a remapping lut is needed) is
    :func:`cityscapes_label_kind`.
    """
    root = Path(root)
    images = sorted((root / 'leftImg8bit' / split).glob('*/*_leftImg8bit.png'))
    if not images:
        raise FileNotFoundError(f'no leftImg8bit/{split}/*/*_leftImg8bit.png under {root}')
    kind = cityscapes_label_kind(root, split)
    pairs = []
    for image in images:
        stem = image.name[:-len('_leftImg8bit.png')]
        label = root / 'gtFine' / split / image.parent.name / f'{stem}_gtFine_{kind}.png'
        pairs.append((image, label))
    return pairs


def cityscapes_label_kind(root, split):
    """Return 'labelTrainIds' when those files exist, else 'labelIds' (remapped on read)."""
    gt = Path(root) / 'gtFine' / split
    if next(gt.glob('*/*_gtFine_labelTrainIds.png'), None) is not None:
        return 'labelTrainIds'
    if next(gt.glob('*/*_gtFine_labelIds.png'), None) is not None:
        return 'labelIds'
    raise FileNotFoundError(f'no gtFine labels under {gt}')


def build_dataset(kind, root, split, transform=None, cache=False):
    """Return a :class:`SegmentationDataset` for ``kind`` in ('camvid', 'cityscapes')."""
    if kind == 'camvid':
        return SegmentationDataset(camvid_pairs(root, split), camvid_to_train_id_lut(),
                                   transform, cache)
    if kind == 'cityscapes':
        pairs = cityscapes_pairs(root, split)
        lut = None
        if cityscapes_label_kind(root, split) == 'labelIds':
            lut = label_id_to_train_id_lut()
        return SegmentationDataset(pairs, lut, transform, cache)
    raise ValueError(f"unknown dataset kind {kind!r}; expected 'camvid' or 'cityscapes'")
