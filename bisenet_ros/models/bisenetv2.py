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
BiSeNetV2 (Yu et al., IJCV 2021): detail branch, semantic branch, BGA, head.

Module and parameter names follow CoinCheung/BiSeNet (``detail``, ``segment``,
``bga``, ``head``, ``aux2`` .. ``aux5_4``); those names are the contract with the
checkpoints users already hold.
"""

from bisenet_ros.models.layers import ConvBNReLU, global_mean
import torch
from torch import nn
import torch.nn.functional as F


def _conv_bn(in_chan, out_chan, ks, stride=1, groups=1):
    """Return [conv, BN] without activation (unpacked into an nn.Sequential)."""
    return [nn.Conv2d(in_chan, out_chan, ks, stride, ks // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_chan)]


class DetailBranch(nn.Module):
    """Wide, shallow branch keeping spatial detail; output (N, 128, H/8, W/8)."""

    def __init__(self):
        """Build the three stages S1..S3."""
        super().__init__()
        self.S1 = nn.Sequential(ConvBNReLU(3, 64, 3, stride=2), ConvBNReLU(64, 64, 3))
        self.S2 = nn.Sequential(ConvBNReLU(64, 64, 3, stride=2), ConvBNReLU(64, 64, 3),
                                ConvBNReLU(64, 64, 3))
        self.S3 = nn.Sequential(ConvBNReLU(64, 128, 3, stride=2), ConvBNReLU(128, 128, 3),
                                ConvBNReLU(128, 128, 3))

    def forward(self, x):
        """Map (N, 3, H, W) to (N, 128, H/8, W/8)."""
        return self.S3(self.S2(self.S1(x)))


class StemBlock(nn.Module):
    """Semantic-branch stem: a strided conv, then conv and max-pool paths fused."""

    def __init__(self):
        """Build the stem (3 -> 16 channels, 1/4 resolution)."""
        super().__init__()
        self.conv = ConvBNReLU(3, 16, 3, stride=2)
        self.left = nn.Sequential(ConvBNReLU(16, 8, 1), ConvBNReLU(8, 16, 3, stride=2))
        self.right = nn.MaxPool2d(3, 2, 1)
        self.fuse = ConvBNReLU(32, 16, 3)

    def forward(self, x):
        """Map (N, 3, H, W) to (N, 16, H/4, W/4)."""
        feat = self.conv(x)
        return self.fuse(torch.cat((self.left(feat), self.right(feat)), dim=1))


class CEBlock(nn.Module):
    """Context embedding: BN on the pooled vector, 1x1 ConvBNReLU, add, 3x3 ConvBNReLU."""

    def __init__(self):
        """Build the block on 128 channels."""
        super().__init__()
        self.bn = nn.BatchNorm2d(128)
        self.conv_gap = ConvBNReLU(128, 128, 1)
        self.conv_last = ConvBNReLU(128, 128, 3)

    def forward(self, x):
        """Map (N, 128, h, w) to the same shape."""
        context = self.conv_gap(self.bn(global_mean(x)))
        return self.conv_last(x + context)


class GELayerS1(nn.Module):
    """Gather-and-expand layer, stride 1, identity shortcut."""

    def __init__(self, in_chan, out_chan, exp_ratio=6):
        """Build the layer with a depthwise expansion of exp_ratio."""
        super().__init__()
        mid_chan = in_chan * exp_ratio
        self.conv1 = ConvBNReLU(in_chan, in_chan, 3)
        # The reference has a ReLU after this depthwise conv (not in the paper).
        self.dwconv = nn.Sequential(*_conv_bn(in_chan, mid_chan, 3, groups=in_chan),
                                    nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(*_conv_bn(mid_chan, out_chan, 1))

    def forward(self, x):
        """Map (N, C, h, w) to (N, out_chan, h, w)."""
        feat = self.conv2(self.dwconv(self.conv1(x)))
        return F.relu(feat + x, inplace=True)


class GELayerS2(nn.Module):
    """Gather-and-expand layer, stride 2, depthwise-separable shortcut."""

    def __init__(self, in_chan, out_chan, exp_ratio=6):
        """Build the layer with a depthwise expansion of exp_ratio."""
        super().__init__()
        mid_chan = in_chan * exp_ratio
        self.conv1 = ConvBNReLU(in_chan, in_chan, 3)
        self.dwconv1 = nn.Sequential(*_conv_bn(in_chan, mid_chan, 3, stride=2, groups=in_chan))
        # The reference has a ReLU after the second depthwise conv (not in the paper).
        self.dwconv2 = nn.Sequential(*_conv_bn(mid_chan, mid_chan, 3, groups=mid_chan),
                                     nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(*_conv_bn(mid_chan, out_chan, 1))
        self.shortcut = nn.Sequential(*_conv_bn(in_chan, in_chan, 3, stride=2, groups=in_chan),
                                      *_conv_bn(in_chan, out_chan, 1))

    def forward(self, x):
        """Map (N, C, h, w) to (N, out_chan, h/2, w/2)."""
        feat = self.conv2(self.dwconv2(self.dwconv1(self.conv1(x))))
        return F.relu(feat + self.shortcut(x), inplace=True)


class SegmentBranch(nn.Module):
    """Narrow, deep semantic branch; returns every stage for the auxiliary heads."""

    def __init__(self):
        """Build stem, GE stages and context embedding."""
        super().__init__()
        self.S1S2 = StemBlock()
        self.S3 = nn.Sequential(GELayerS2(16, 32), GELayerS1(32, 32))
        self.S4 = nn.Sequential(GELayerS2(32, 64), GELayerS1(64, 64))
        self.S5_4 = nn.Sequential(GELayerS2(64, 128), GELayerS1(128, 128),
                                  GELayerS1(128, 128), GELayerS1(128, 128))
        self.S5_5 = CEBlock()

    def forward(self, x):
        """Return features at 1/4, 1/8, 1/16, 1/32 and the embedded 1/32 context."""
        feat2 = self.S1S2(x)
        feat3 = self.S3(feat2)
        feat4 = self.S4(feat3)
        feat5_4 = self.S5_4(feat4)
        return feat2, feat3, feat4, feat5_4, self.S5_5(feat5_4)


class BGALayer(nn.Module):
    """
    Bilateral guided aggregation of detail (1/8) and semantic (1/32) features.

    ``upsample_mode`` is 'nearest' in CoinCheung and 'bilinear' in
    mmsegmentation; ``pointwise_bias`` adds the biases mmsegmentation has on the
    two pointwise convolutions (``left1.2`` and ``right2.2``).
    """

    def __init__(self, upsample_mode='nearest', pointwise_bias=False):
        """Build the BGA on 128 channels."""
        super().__init__()
        self.left1 = nn.Sequential(*_conv_bn(128, 128, 3, groups=128),
                                   nn.Conv2d(128, 128, 1, bias=pointwise_bias))
        # count_include_pad stays True, as in both references.
        self.left2 = nn.Sequential(*_conv_bn(128, 128, 3, stride=2), nn.AvgPool2d(3, 2, 1))
        self.right1 = nn.Sequential(*_conv_bn(128, 128, 3))
        self.right2 = nn.Sequential(*_conv_bn(128, 128, 3, groups=128),
                                    nn.Conv2d(128, 128, 1, bias=pointwise_bias))
        self.conv = nn.Sequential(*_conv_bn(128, 128, 3), nn.ReLU(inplace=True))
        self.upsample_mode = upsample_mode

    def _up4(self, x):
        if self.upsample_mode == 'nearest':
            return F.interpolate(x, scale_factor=4.0, mode='nearest')
        return F.interpolate(x, scale_factor=4.0, mode='bilinear', align_corners=False)

    def forward(self, x_d, x_s):
        """Fuse (N, 128, H/8, W/8) detail and (N, 128, H/32, W/32) semantic features."""
        left = self.left1(x_d) * torch.sigmoid(self._up4(self.right1(x_s)))
        right = self._up4(self.left2(x_d) * torch.sigmoid(self.right2(x_s)))
        return self.conv(left + right)


class SegmentHead(nn.Module):
    """
    ConvBNReLU, dropout, classifier and bilinear upsampling to input resolution.

    The main head (``aux=False``) keeps an identity at ``conv_out.0`` so that its
    classifier is ``conv_out.1`` as in the checkpoints; auxiliary heads put a
    nearest x2 upsampling and a ConvBNReLU there.
    """

    def __init__(self, in_chan, mid_chan, num_classes, up_factor=8, aux=True):
        """Build a head whose logits come out up_factor times larger."""
        super().__init__()
        self.conv = ConvBNReLU(in_chan, mid_chan, 3)
        self.drop = nn.Dropout(0.1)
        if aux:
            cls_chan = up_factor * up_factor
            first = nn.Sequential(nn.Upsample(scale_factor=2.0),
                                  ConvBNReLU(mid_chan, cls_chan, 3))
            up_factor //= 2
        else:
            cls_chan = mid_chan
            first = nn.Identity()
        self.conv_out = nn.Sequential(
            first,
            nn.Conv2d(cls_chan, num_classes, 1, bias=True),
            nn.Upsample(scale_factor=float(up_factor), mode='bilinear', align_corners=False),
        )

    def forward(self, x):
        """Map (N, in_chan, h, w) to (N, num_classes, h*up, w*up)."""
        return self.conv_out(self.drop(self.conv(x)))


class BiSeNetV2(nn.Module):
    """
    BiSeNetV2; ``model(x)`` maps normalised (N, 3, H, W) to (N, C, H, W) logits.

    H and W must be multiples of 32. With ``aux=True`` the four auxiliary heads of
    the reference training exist and, in training mode, forward returns
    ``(logits, aux2, aux3, aux4, aux5_4)``; in eval mode it returns the logits.
    """

    def __init__(self, num_classes=19, aux=True, bga_upsample='nearest',
                 bga_pointwise_bias=False):
        """Build the network; bilinear BGA with biases gives mmsegmentation's variant."""
        super().__init__()
        self.num_classes = num_classes
        self.detail = DetailBranch()
        self.segment = SegmentBranch()
        self.bga = BGALayer(bga_upsample, bga_pointwise_bias)
        self.head = SegmentHead(128, 1024, num_classes, up_factor=8, aux=False)
        if aux:
            self.aux2 = SegmentHead(16, 128, num_classes, up_factor=4)
            self.aux3 = SegmentHead(32, 128, num_classes, up_factor=8)
            self.aux4 = SegmentHead(64, 128, num_classes, up_factor=16)
            self.aux5_4 = SegmentHead(128, 128, num_classes, up_factor=32)

    @property
    def has_aux(self):
        """Whether the auxiliary heads were built."""
        return hasattr(self, 'aux2')

    @property
    def classifier(self):
        """Return the main head's 1x1 convolution, which makes the low-resolution logits."""
        return self.head.conv_out[1]

    def forward(self, x):
        """Return logits, plus auxiliary logits when training with aux heads."""
        feat_d = self.detail(x)
        feat2, feat3, feat4, feat5_4, feat_s = self.segment(x)
        logits = self.head(self.bga(feat_d, feat_s))
        if self.training and self.has_aux:
            return (logits, self.aux2(feat2), self.aux3(feat3), self.aux4(feat4),
                    self.aux5_4(feat5_4))
        return logits
