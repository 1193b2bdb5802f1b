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
Dataset evaluation around a ``predict(rgb_uint8) -> labels uint8 HxW`` callable.

Keeping the model behind a plain callable lets the same loop score the torch
model, an exported runtime or anything else that maps an image to class ids.
"""

from bisenet_ros.cityscapes import IGNORE_ID
from bisenet_ros.training.metrics import confusion_matrix
import numpy as np


def segmenter_predictor(segmenter):
    """Return ``predict(rgb) -> labels`` running a runtime Segmenter one image at a time."""
    def predict(rgb):
        return segmenter.segment([rgb])[0].labels
    return predict


def evaluate(predict, dataset, num_classes, ignore=IGNORE_ID, progress=None):
    """
    Return the confusion matrix of ``predict`` over every ``(rgb, label)`` of ``dataset``.

    ``dataset`` must yield untransformed uint8 pairs; ``progress`` optionally
    wraps the index iterable (e.g. with tqdm).
    """
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    indices = range(len(dataset))
    if progress is not None:
        indices = progress(indices)
    for i in indices:
        rgb, label = dataset.load(i) if hasattr(dataset, 'load') else dataset[i]
        pred = predict(rgb)
        if pred.shape != label.shape:
            raise ValueError(f'prediction {pred.shape} and label {label.shape} differ in size')
        cm += confusion_matrix(pred, label, num_classes, ignore)
    return cm
