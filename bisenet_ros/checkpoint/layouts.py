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
The state_dict layouts users bring, and how to recognise each.

A layout is (source, arch): CoinCheung/BiSeNet or mmsegmentation names, V1 or
V2. Recognition is exact: every required key present after renaming, nothing
unexpected. When nothing matches, the closest layout is named with the keys
that differ, so users see why their file is not accepted.
"""

from dataclasses import dataclass, field
import functools

from bisenet_ros.checkpoint.errors import CheckpointError
from bisenet_ros.checkpoint.mmseg_keys import DROPPED_PREFIXES, mmseg_to_internal
from bisenet_ros.models import build_model, COINCHEUNG, MMSEG, VARIANTS
import torch

AUX_PREFIXES = ('conv_out16.', 'conv_out32.', 'aux2.', 'aux3.', 'aux4.', 'aux5_4.')
_CLASSIFIER_KEYS = {'bisenetv1': 'conv_out.conv_out.weight',
                    'bisenetv2': 'head.conv_out.1.weight'}

# Published files of CoinCheung/BiSeNet whose code has since changed.
_OBSOLETE = (
    (lambda keys: 'ffm.conv1.weight' in keys and 'cp.resnet.conv1.weight' in keys,
     'the obsolete CoinCheung BiSeNetV1 layout (model_final_v1_city.pth, before commit '
     'e40b825 of 2021-07-13): its FeatureFusionModule has ffm.conv1/ffm.conv2 where the '
     'current network has ffm.conv/ffm.bn, so the weights do not fit; use '
     'model_final_v1_city_new.pth'),
    (lambda keys: any(k.startswith('head.conv_out.0.') for k in keys)
     and 'detail.S1.0.conv.weight' in keys,
     'the obsolete CoinCheung BiSeNetV2 layout (before July 2021) with a PixelShuffle head '
     '(head.conv_out.0.*), which the current network replaced by bilinear upsampling; use '
     'the current model_final_v2_city.pth'),
)


@dataclass(frozen=True)
class Layout:
    """A family of checkpoint key names for one architecture."""

    source: str
    arch: str

    @property
    def variant(self):
        """Return the network variant whose numerics this layout's weights expect."""
        return MMSEG if self.source == MMSEG else COINCHEUNG

    def to_internal(self, key):
        """Return the model's name for a key of this layout (None: no counterpart)."""
        return mmseg_to_internal(key, self.arch) if self.source == MMSEG else key

    def is_dropped(self, key):
        """Whether the key belongs to a part deliberately not loaded (mmseg V2 aux heads)."""
        return self.source == MMSEG and key.startswith(DROPPED_PREFIXES[self.arch])


LAYOUTS = tuple(Layout(source, arch) for source in VARIANTS
                for arch in ('bisenetv1', 'bisenetv2'))


@functools.lru_cache(maxsize=None)
def model_keys(arch, variant):
    """Return (required, optional) internal key sets of a network with aux heads."""
    with torch.device('meta'):
        keys = build_model(arch, aux=True, variant=variant).state_dict().keys()
    optional = {k for k in keys if k.startswith(AUX_PREFIXES) or k.endswith('num_batches_tracked')}
    return frozenset(set(keys) - optional), frozenset(optional)


@dataclass
class Match:
    """The result of trying one layout on a state_dict."""

    layout: Layout
    state_dict: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    dropped: list = field(default_factory=list)

    @property
    def exact(self):
        """Whether the state_dict is fully explained by this layout."""
        return not self.missing and not self.unexpected

    @property
    def num_classes(self):
        """Return the class count read from the classifier's weight."""
        return int(self.state_dict[_CLASSIFIER_KEYS[self.layout.arch]].shape[0])


def try_layout(state_dict, layout, variant=None):
    """Rename ``state_dict`` into ``layout`` and report what does not fit."""
    required, optional = model_keys(layout.arch, variant or layout.variant)
    match = Match(layout)
    for key, value in state_dict.items():
        if layout.is_dropped(key):
            match.dropped.append(key)
            continue
        internal = layout.to_internal(key)
        if internal is None or internal not in required | optional:
            match.unexpected.append(key)
        else:
            match.state_dict[internal] = value
    match.missing = sorted(required - match.state_dict.keys())
    return match


def strip_module_prefix(state_dict):
    """Remove the ``module.`` prefix DataParallel/DDP add to every key."""
    if state_dict and all(k.startswith('module.') for k in state_dict):
        return {k[len('module.'):]: v for k, v in state_dict.items()}
    return state_dict


def _listing(keys, limit=10):
    shown = ', '.join(keys[:limit])
    more = f' (and {len(keys) - limit} more)' if len(keys) > limit else ''
    return shown + more


def recognise(state_dict, arch=None, source=None, path=''):
    """
    Return the exact Match of a state_dict, or raise CheckpointError explaining why not.

    ``arch`` and ``source`` restrict the candidates when the caller knows them.
    """
    keys = set(state_dict)
    for test, why in _OBSOLETE:
        if test(keys):
            raise CheckpointError(f'{path}: this is {why}.')
    candidates = [lay for lay in LAYOUTS
                  if source in (None, lay.source)]
    matches = [try_layout(state_dict, lay) for lay in candidates]
    for match in matches:
        if match.exact:
            if arch is not None and match.layout.arch != arch:
                raise CheckpointError(
                    f'{path}: holds a {match.layout.arch} ({match.layout.source} layout) but '
                    f'arch={arch!r} was requested')
            return match
    if arch is not None:
        matches = [m for m in matches if m.layout.arch == arch] or matches
    closest = max(matches, key=lambda m: len(m.state_dict) - len(m.unexpected))
    lay = closest.layout
    raise CheckpointError(
        f'{path}: unknown state_dict layout ({len(state_dict)} keys). Closest known format: '
        f'{lay.source} {lay.arch}, but {len(closest.missing)} keys are missing '
        f'[{_listing(closest.missing)}] and {len(closest.unexpected)} are unexpected '
        f'[{_listing(closest.unexpected)}]. Supported: CoinCheung/BiSeNet and mmsegmentation '
        'BiSeNet V1 (ResNet-18) and V2 Cityscapes checkpoints, and bisenet_ros files.')
