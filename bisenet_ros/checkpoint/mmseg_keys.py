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
mmsegmentation -> CoinCheung parameter names for BiSeNet V1 and V2.

The networks in ``bisenet_ros.models`` use CoinCheung's names; mmsegmentation
checkpoints are renamed on load by the ordered rules below (first match wins).
The rules were checked key by key against the reference key maps (see the
tests). mmseg's V2 auxiliary heads have other shapes than CoinCheung's and no
counterpart, so they are dropped (inference never uses them).
"""

import re

_GE_PARTS = (
    # Stride-2 GE layers (index 0 of a stage) have two depthwise convs.
    (r'(\d)\.0\.dwconv\.0\.conv\.', r'\1.0.dwconv1.0.'),
    (r'(\d)\.0\.dwconv\.0\.bn\.', r'\1.0.dwconv1.1.'),
    (r'(\d)\.0\.dwconv\.1\.conv\.', r'\1.0.dwconv2.0.'),
    (r'(\d)\.0\.dwconv\.1\.bn\.', r'\1.0.dwconv2.1.'),
    (r'\.dwconv\.0\.conv\.', '.dwconv.0.'),
    (r'\.dwconv\.0\.bn\.', '.dwconv.1.'),
    (r'\.conv2\.0\.conv\.', '.conv2.0.'),
    (r'\.conv2\.0\.bn\.', '.conv2.1.'),
    (r'\.shortcut\.0\.depthwise_conv\.conv\.', '.shortcut.0.'),
    (r'\.shortcut\.0\.depthwise_conv\.bn\.', '.shortcut.1.'),
    (r'\.shortcut\.0\.pointwise_conv\.conv\.', '.shortcut.2.'),
    (r'\.shortcut\.0\.pointwise_conv\.bn\.', '.shortcut.3.'),
)

_SEPARABLE = (
    (r'\.0\.depthwise_conv\.conv\.', '.0.'),
    (r'\.0\.depthwise_conv\.bn\.', '.1.'),
    (r'\.0\.pointwise_conv\.conv\.', '.2.'),
)

_RULES = {
    'bisenetv1': (
        (r'^backbone\.context_path\.backbone\.', 'cp.resnet.'),
        (r'^backbone\.context_path\.(arm\d+)\.conv_layer\.', r'cp.\1.conv.'),
        (r'^backbone\.context_path\.(arm\d+)\.atten_conv_layer\.1\.conv\.', r'cp.\1.conv_atten.'),
        (r'^backbone\.context_path\.(arm\d+)\.atten_conv_layer\.1\.bn\.', r'cp.\1.bn_atten.'),
        (r'^backbone\.context_path\.(conv_head\d+)\.', r'cp.\1.'),
        (r'^backbone\.context_path\.gap_conv\.1\.', 'cp.conv_avg.'),
        (r'^backbone\.spatial_path\.layer1\.', 'sp.conv1.'),
        (r'^backbone\.spatial_path\.layer2\.', 'sp.conv2.'),
        (r'^backbone\.spatial_path\.layer3\.', 'sp.conv3.'),
        (r'^backbone\.spatial_path\.layer4\.', 'sp.conv_out.'),
        (r'^backbone\.ffm\.conv1\.', 'ffm.convblk.'),
        (r'^backbone\.ffm\.conv_atten\.0\.conv\.', 'ffm.conv.'),
        (r'^backbone\.ffm\.conv_atten\.0\.bn\.', 'ffm.bn.'),
        (r'^decode_head\.convs\.0\.', 'conv_out.conv.'),
        (r'^decode_head\.conv_seg\.', 'conv_out.conv_out.'),
        (r'^auxiliary_head\.0\.convs\.0\.', 'conv_out16.conv.'),
        (r'^auxiliary_head\.0\.conv_seg\.', 'conv_out16.conv_out.'),
        (r'^auxiliary_head\.1\.convs\.0\.', 'conv_out32.conv.'),
        (r'^auxiliary_head\.1\.conv_seg\.', 'conv_out32.conv_out.'),
    ),
    'bisenetv2': (
        (r'^backbone\.detail\.detail_branch\.0\.', 'detail.S1.'),
        (r'^backbone\.detail\.detail_branch\.1\.', 'detail.S2.'),
        (r'^backbone\.detail\.detail_branch\.2\.', 'detail.S3.'),
        (r'^backbone\.semantic\.stage1\.conv_first\.', 'segment.S1S2.conv.'),
        (r'^backbone\.semantic\.stage1\.convs\.', 'segment.S1S2.left.'),
        (r'^backbone\.semantic\.stage1\.fuse_last\.', 'segment.S1S2.fuse.'),
        (r'^backbone\.semantic\.stage2\.', 'segment.S3.'),
        (r'^backbone\.semantic\.stage3\.', 'segment.S4.'),
        (r'^backbone\.semantic\.stage4\.', 'segment.S5_4.'),
        (r'^backbone\.semantic\.stage4_CEBlock\.gap\.1\.', 'segment.S5_5.bn.'),
        (r'^backbone\.semantic\.stage4_CEBlock\.', 'segment.S5_5.'),
        (r'^backbone\.bga\.detail_dwconv', 'bga.left1'),
        (r'^backbone\.bga\.detail_down\.0\.conv\.', 'bga.left2.0.'),
        (r'^backbone\.bga\.detail_down\.0\.bn\.', 'bga.left2.1.'),
        (r'^backbone\.bga\.semantic_conv\.0\.conv\.', 'bga.right1.0.'),
        (r'^backbone\.bga\.semantic_conv\.0\.bn\.', 'bga.right1.1.'),
        (r'^backbone\.bga\.semantic_dwconv', 'bga.right2'),
        (r'^backbone\.bga\.conv\.conv\.', 'bga.conv.0.'),
        (r'^backbone\.bga\.conv\.bn\.', 'bga.conv.1.'),
        (r'^decode_head\.convs\.0\.', 'head.conv.'),
        (r'^decode_head\.conv_seg\.', 'head.conv_out.1.'),
    ),
}

# Renames applied after the prefix rules, inside the renamed module.
_INNER_RULES = {
    'segment.S': _GE_PARTS,
    'bga.': _SEPARABLE,
}

DROPPED_PREFIXES = {'bisenetv1': (), 'bisenetv2': ('auxiliary_head.',)}


def mmseg_to_internal(key, arch):
    """Return the internal (CoinCheung) name of an mmseg key, or None if it has none."""
    for pattern, repl in _RULES[arch]:
        renamed, count = re.subn(pattern, repl, key)
        if count:
            break
    else:
        return None
    for prefix, rules in _INNER_RULES.items():
        if renamed.startswith(prefix):
            for pattern, repl in rules:
                renamed, count = re.subn(pattern, repl, renamed, count=1)
                if count:
                    break
    return renamed
