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
The BiSeNet networks, pure torch.

``build_model`` is the one place that turns (arch, variant) into a network:
the variant names the reference whose numerics a checkpoint expects.
"""

from bisenet_ros.models.bisenetv1 import BiSeNetV1
from bisenet_ros.models.bisenetv2 import BiSeNetV2

ARCHS = ('bisenetv1', 'bisenetv2')
# The two publishers whose checkpoints load; each name is also its layout and variant.
COINCHEUNG, MMSEG = VARIANTS = ('coincheung', 'mmseg')

__all__ = ['ARCHS', 'COINCHEUNG', 'MMSEG', 'VARIANTS', 'BiSeNetV1', 'BiSeNetV2', 'build_model']


def build_model(arch, num_classes=19, aux=True, variant=COINCHEUNG):
    """
    Return an untrained network.

    ``variant='mmseg'`` honours mmsegmentation's real architectural differences:
    a ReLU in V1's fusion attention; bilinear BGA upsampling and two pointwise
    biases in V2. Parameter names are CoinCheung's in both cases.
    """
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; expected one of {VARIANTS}')
    mmseg = variant == MMSEG
    if arch == 'bisenetv1':
        return BiSeNetV1(num_classes, aux=aux, ffm_attention_relu=mmseg)
    if arch == 'bisenetv2':
        return BiSeNetV2(num_classes, aux=aux, bga_upsample='bilinear' if mmseg else 'nearest',
                         bga_pointwise_bias=mmseg)
    raise ValueError(f'unknown arch {arch!r}; expected one of {ARCHS}')
