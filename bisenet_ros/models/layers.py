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

"""Layers shared by both BiSeNet networks."""

from torch import nn


class ConvBNReLU(nn.Module):
    """
    Convolution, batch norm and ReLU; keys ``conv.*`` and ``bn.*``.

    Both reference implementations (and therefore every published checkpoint)
    name the two parameterised children ``conv`` and ``bn``.
    """

    def __init__(self, in_chan, out_chan, ks=3, stride=1, padding=None, groups=1):
        """Build a (N, in_chan, H, W) -> (N, out_chan, H/stride, W/stride) block."""
        super().__init__()
        if padding is None:
            padding = ks // 2
        self.conv = nn.Conv2d(in_chan, out_chan, ks, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chan)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        """Apply conv, BN, ReLU."""
        return self.relu(self.bn(self.conv(x)))


def global_mean(x):
    """Return the (N, C, 1, 1) spatial mean of a (N, C, H, W) tensor."""
    return x.mean(dim=(2, 3), keepdim=True)
