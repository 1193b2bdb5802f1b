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
Online hard example mining cross-entropy, as used to train BiSeNet.

Following CoinCheung/BiSeNet: a pixel is "hard" when its loss exceeds
``-log(0.7)`` (the model gives the true class less than 70 %); the loss is the
mean over hard pixels, but over at least ``n_min = valid // 16`` of the
highest-loss pixels, so that a well-fitted batch still yields a gradient.
"""

import math

from bisenet_ros.cityscapes import IGNORE_ID
from torch import nn
import torch.nn.functional as F


def ohem_cross_entropy(logits, labels, thresh=0.7, ignore=IGNORE_ID, min_fraction=1 / 16):
    """
    Return the OHEM cross-entropy of ``logits`` (N,C,H,W) against ``labels`` (N,H,W).

    Ignored pixels are dropped before selection so they can neither count
    towards ``n_min`` nor be picked by the top-k fallback.
    """
    loss_thresh = -math.log(thresh)
    pixel_loss = F.cross_entropy(logits.float(), labels, ignore_index=ignore,
                                 reduction='none').flatten()
    valid = labels.flatten() != ignore
    pixel_loss = pixel_loss[valid]
    if pixel_loss.numel() == 0:
        # Keep the graph connected so that backward() works on an all-ignore batch.
        return logits.sum() * 0.0
    n_min = max(1, int(pixel_loss.numel() * min_fraction))
    hard = pixel_loss[pixel_loss > loss_thresh]
    if hard.numel() < n_min:
        hard, _ = pixel_loss.topk(n_min)
    return hard.mean()


class OhemCELoss(nn.Module):
    """Module wrapper of :func:`ohem_cross_entropy`."""

    def __init__(self, thresh=0.7, ignore=IGNORE_ID, min_fraction=1 / 16):
        super().__init__()
        self.thresh = thresh
        self.ignore = ignore
        self.min_fraction = min_fraction

    def forward(self, logits, labels):
        """Return the scalar loss."""
        return ohem_cross_entropy(logits, labels, self.thresh, self.ignore, self.min_fraction)
