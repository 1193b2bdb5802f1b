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

import contextlib

from bisenet_ros.cityscapes import IGNORE_ID
from bisenet_ros.training.metrics import confusion_matrix
import cv2
import numpy as np
import torch
import torch.nn.functional as F


class TorchPredictor:
    """
    Predict with a torch segmentation model, single scale.

    The image is resized to ``input_size`` (W, H), normalised with ``mean``/``std``
    (RGB on 0..1), and the logits are upsampled bilinearly to the original size
    before the argmax, so that the labels keep the input's resolution.
    """

    def __init__(self, model, input_size, mean, std, device='cpu', autocast_dtype=None):
        self.model = model
        self.input_size = tuple(int(v) for v in input_size)
        self.mean = np.float32(mean) * 255
        self.std = np.float32(std) * 255
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @torch.no_grad()
    def __call__(self, rgb):
        """Return the uint8 label map (H, W) of an RGB uint8 (H, W, 3) image."""
        h, w = rgb.shape[:2]
        resized = cv2.resize(rgb, self.input_size, interpolation=cv2.INTER_LINEAR)
        x = (resized.astype(np.float32) - self.mean) / self.std
        x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(self.device)
        was_training = self.model.training
        self.model.eval()
        try:
            with self._autocast():
                logits = self.model(x)
        finally:
            self.model.train(was_training)
        logits = F.interpolate(logits.float(), size=(h, w), mode='bilinear',
                               align_corners=False)
        return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()


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
