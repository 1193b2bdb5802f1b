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
BiSeNetV1 (Yu et al., ECCV 2018) with a ResNet-18 context path.

Module and parameter names follow CoinCheung/BiSeNet (``cp``, ``sp``, ``ffm``,
``conv_out``, ``conv_out16``, ``conv_out32``); those names are the contract with
the checkpoints users already hold.
"""

from bisenet_ros.models.layers import ConvBNReLU, global_mean
from bisenet_ros.models.resnet import Resnet18
import torch
from torch import nn
import torch.nn.functional as F


class AttentionRefinementModule(nn.Module):
    """Re-weight channels by a sigmoid of their global mean (conv, mean, 1x1 conv, BN)."""

    def __init__(self, in_chan, out_chan):
        """Build an ARM mapping in_chan to out_chan channels."""
        super().__init__()
        self.conv = ConvBNReLU(in_chan, out_chan, 3)
        self.conv_atten = nn.Conv2d(out_chan, out_chan, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_chan)

    def forward(self, x):
        """Return conv(x) scaled per channel by its attention."""
        feat = self.conv(x)
        atten = self.bn_atten(self.conv_atten(global_mean(feat))).sigmoid()
        return feat * atten


class ContextPath(nn.Module):
    """ResNet-18 plus ARMs and a global-context vector; outputs at 1/8 and 1/16."""

    def __init__(self):
        """Build the context path."""
        super().__init__()
        self.resnet = Resnet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3)
        self.conv_head16 = ConvBNReLU(128, 128, 3)
        self.conv_avg = ConvBNReLU(512, 128, 1)

    def forward(self, x):
        """Map (N, 3, H, W) to (N, 128, H/8, W/8) and (N, 128, H/16, W/16)."""
        _, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(global_mean(feat32))
        # Both references upsample the context features with NEAREST, not bilinear.
        feat32_up = F.interpolate(self.arm32(feat32) + context, scale_factor=2.0, mode='nearest')
        feat32_up = self.conv_head32(feat32_up)
        feat16_up = F.interpolate(self.arm16(feat16) + feat32_up, scale_factor=2.0,
                                  mode='nearest')
        feat16_up = self.conv_head16(feat16_up)
        return feat16_up, feat32_up


class SpatialPath(nn.Module):
    """Three strided convolutions keeping spatial detail at 1/8 resolution."""

    def __init__(self):
        """Build the spatial path."""
        super().__init__()
        self.conv1 = ConvBNReLU(3, 64, 7, stride=2)
        self.conv2 = ConvBNReLU(64, 64, 3, stride=2)
        self.conv3 = ConvBNReLU(64, 64, 3, stride=2)
        self.conv_out = ConvBNReLU(64, 128, 1)

    def forward(self, x):
        """Map (N, 3, H, W) to (N, 128, H/8, W/8)."""
        return self.conv_out(self.conv3(self.conv2(self.conv1(x))))


class FeatureFusionModule(nn.Module):
    """
    Fuse spatial and context features: feat * attention + feat.

    ``attention_relu`` inserts the ReLU that mmsegmentation has between BN and
    sigmoid (conv-BN-ReLU-sigmoid); CoinCheung has none.
    """

    def __init__(self, in_chan, out_chan, attention_relu=False):
        """Build an FFM taking in_chan concatenated channels."""
        super().__init__()
        self.convblk = ConvBNReLU(in_chan, out_chan, 1)
        self.conv = nn.Conv2d(out_chan, out_chan, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_chan)
        self.attention_relu = attention_relu

    def forward(self, fsp, fcp):
        """Fuse (N, Cs, h, w) and (N, Cc, h, w) into (N, out_chan, h, w)."""
        feat = self.convblk(torch.cat((fsp, fcp), dim=1))
        atten = self.bn(self.conv(global_mean(feat)))
        if self.attention_relu:
            atten = F.relu(atten)
        return feat * atten.sigmoid() + feat


class BiSeNetOutput(nn.Module):
    """3x3 ConvBNReLU, 1x1 classifier, bilinear upsampling to input resolution."""

    def __init__(self, in_chan, mid_chan, num_classes, up_factor):
        """Build a head whose logits are upsampled by up_factor."""
        super().__init__()
        self.conv = ConvBNReLU(in_chan, mid_chan, 3)
        self.conv_out = nn.Conv2d(mid_chan, num_classes, 1, bias=True)
        self.up_factor = up_factor

    def forward(self, x):
        """Return (N, num_classes, up_factor*h, up_factor*w) logits."""
        logits = self.conv_out(self.conv(x))
        return F.interpolate(logits, scale_factor=float(self.up_factor), mode='bilinear',
                             align_corners=False)


class BiSeNetV1(nn.Module):
    """
    BiSeNetV1; ``model(x)`` maps normalised (N, 3, H, W) to (N, C, H, W) logits.

    H and W must be multiples of 32. With ``aux=True`` the two auxiliary heads of
    the reference training exist and, in training mode, forward returns
    ``(logits, aux16, aux32)``; in eval mode it always returns the logits alone.
    """

    def __init__(self, num_classes=19, aux=True, ffm_attention_relu=False):
        """Build the network; ffm_attention_relu=True gives mmsegmentation's variant."""
        super().__init__()
        self.num_classes = num_classes
        self.cp = ContextPath()
        self.sp = SpatialPath()
        self.ffm = FeatureFusionModule(256, 256, attention_relu=ffm_attention_relu)
        self.conv_out = BiSeNetOutput(256, 256, num_classes, 8)
        if aux:
            self.conv_out16 = BiSeNetOutput(128, 64, num_classes, 8)
            self.conv_out32 = BiSeNetOutput(128, 64, num_classes, 16)

    @property
    def has_aux(self):
        """Whether the auxiliary heads were built."""
        return hasattr(self, 'conv_out16')

    @property
    def classifier(self):
        """Return the main head's 1x1 convolution, which makes the low-resolution logits."""
        return self.conv_out.conv_out

    def forward(self, x):
        """Return logits, plus auxiliary logits when training with aux heads."""
        feat_cp8, feat_cp16 = self.cp(x)
        feat_fuse = self.ffm(self.sp(x), feat_cp8)
        logits = self.conv_out(feat_fuse)
        if self.training and self.has_aux:
            return logits, self.conv_out16(feat_cp8), self.conv_out32(feat_cp16)
        return logits
