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
Load BiSeNet checkpoints of every supported format, and save the project's own.

Public API::

    from bisenet_ros.checkpoint import load_checkpoint, save_checkpoint
    model, info = load_checkpoint(path, arch=None, device='cpu')

Formats are recognised from the file, never from its name: CoinCheung/BiSeNet
state_dicts (train-mode with aux heads, or eval-mode), mmsegmentation
``{'meta', 'state_dict', ...}`` files, ``module.``-prefixed state_dicts, and the
project's own safetensors files with JSON metadata.
"""

from dataclasses import dataclass, field
import json
from pathlib import Path

from bisenet_ros import cityscapes
from bisenet_ros.checkpoint.errors import CheckpointError, CheckpointNotFoundError
from bisenet_ros.checkpoint.layouts import AUX_PREFIXES, Layout, recognise, strip_module_prefix
from bisenet_ros.checkpoint.layouts import try_layout
from bisenet_ros.checkpoint.safe_read import decode_metadata, read_checkpoint_file
from bisenet_ros.checkpoint.validation import check_metadata, check_weights
from bisenet_ros.models import ARCHS, build_model, COINCHEUNG, MMSEG, VARIANTS
import torch

__all__ = ['CheckpointError', 'CheckpointInfo', 'CheckpointNotFoundError', 'load_checkpoint',
           'save_checkpoint', 'NORMALISATION']

FORMAT_NAME = 'bisenet_ros'
FORMAT_VERSION = 1

# Mean and std (RGB, 0..1 scale) each codebase trains with.
NORMALISATION = {
    COINCHEUNG: ((0.3257, 0.3690, 0.3223), (0.2112, 0.2148, 0.2115)),
    MMSEG: ((123.675 / 255, 116.28 / 255, 103.53 / 255),
            (58.395 / 255, 57.12 / 255, 57.375 / 255)),
}


@dataclass
class CheckpointInfo:
    """
    What a checkpoint is and how its network expects to be fed.

    ``mean``/``std`` are RGB on the 0..1 scale; ``input_size`` is (W, H) or None
    when the file does not say. ``unused_keys`` lists weights present in the
    file but not loaded (auxiliary heads at inference, mmseg's V2 aux heads).
    """

    arch: str
    source: str
    variant: str
    num_classes: int
    class_names: tuple
    palette: tuple
    mean: tuple
    std: tuple
    input_size: tuple = None
    path: str = ''
    unused_keys: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    def __getitem__(self, name):
        """Allow ``info['arch']`` as well as ``info.arch``."""
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    @classmethod
    def from_metadata(cls, metadata, path='', source='bisenet_ros'):
        """Return the info a ``to_metadata`` dict (e.g. an exported file's) describes."""
        meta = dict(metadata)
        size = meta.get('input_size')
        return cls(arch=meta['arch'], source=source, variant=meta.get('variant', COINCHEUNG),
                   num_classes=meta['num_classes'], class_names=tuple(meta['class_names']),
                   palette=tuple(tuple(c) for c in meta['palette']), mean=tuple(meta['mean']),
                   std=tuple(meta['std']), input_size=tuple(size) if size else None,
                   path=str(path), metadata=meta)

    def to_metadata(self):
        """Return the metadata dict ``save_checkpoint`` stores for this network."""
        meta = dict(self.metadata)
        meta.update(arch=self.arch, variant=self.variant, num_classes=self.num_classes,
                    class_names=list(self.class_names),
                    palette=[list(c) for c in self.palette], mean=list(self.mean),
                    std=list(self.std),
                    input_size=list(self.input_size) if self.input_size else None)
        return meta


def _default_names(num_classes):
    if num_classes == cityscapes.NUM_CLASSES:
        return cityscapes.CLASS_NAMES
    return tuple(f'class_{i}' for i in range(num_classes))


def _mmseg_classes(meta, num_classes):
    """Return (names, palette) stored in an mmseg checkpoint's meta, else (None, None)."""
    if not isinstance(meta, dict):
        return None, None
    dataset_meta = meta.get('dataset_meta') or {}
    names = meta.get('CLASSES') or dataset_meta.get('classes')
    palette = meta.get('PALETTE') or dataset_meta.get('palette')
    names = tuple(str(n) for n in names) if names and len(names) == num_classes else None
    if palette is not None and len(palette) == num_classes:
        palette = tuple(tuple(int(v) for v in c) for c in palette)
    else:
        palette = None
    return names, palette


def _as_state_dict(obj, path):
    """Return (state_dict, meta) from whatever torch.load returned."""
    meta = None
    if isinstance(obj, dict) and isinstance(obj.get('state_dict'), dict):
        meta = obj.get('meta')
        obj = obj['state_dict']
    elif isinstance(obj, dict) and isinstance(obj.get('model'), dict):
        obj = obj['model']
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f'{path}: not a checkpoint: holds a {type(obj).__name__}, '
                              'not a state_dict of tensors')
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f'{path}: not a state_dict: entries {not_tensors[:5]} are not '
                              'tensors')
    return strip_module_prefix(obj), meta


def _own_format(tensors, metadata, arch, path):
    """Return (Match, info fields) for a bisenet_ros safetensors file."""
    meta = decode_metadata(metadata, FORMAT_NAME)
    if meta is None:
        raise CheckpointError(f'{path}: safetensors file without {FORMAT_NAME} metadata; '
                              'write it with bisenet_ros.checkpoint.save_checkpoint')
    check_metadata(meta, path)
    if meta.get('format_version', 0) > FORMAT_VERSION:
        raise CheckpointError(f'{path}: written by a newer bisenet_ros (format version '
                              f'{meta["format_version"]} > {FORMAT_VERSION})')
    file_arch, variant = meta.get('arch'), meta.get('variant', COINCHEUNG)
    if file_arch not in ARCHS or variant not in VARIANTS:
        raise CheckpointError(f'{path}: metadata names arch={file_arch!r} '
                              f'variant={variant!r}; expected arch in {ARCHS}, variant in '
                              f'{VARIANTS}')
    if arch is not None and arch != file_arch:
        raise CheckpointError(f'{path}: holds a {file_arch} but arch={arch!r} was requested')
    match = try_layout(strip_module_prefix(tensors), Layout(FORMAT_NAME, file_arch), variant)
    if not match.exact:
        raise CheckpointError(f'{path}: {FORMAT_NAME} file whose tensors do not fit a '
                              f'{file_arch}: missing {match.missing[:10]}, unexpected '
                              f'{match.unexpected[:10]}')
    return match, meta


def _load_into(model, state_dict, path):
    """Load weights; only aux-head and BN-counter entries may be absent."""
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f'{path}: tensor shapes do not fit the network: {exc}') from exc
    missing = [k for k in missing if not k.startswith(AUX_PREFIXES)
               and not k.endswith('num_batches_tracked')]
    if missing or unexpected:
        raise CheckpointError(f'{path}: missing {missing[:10]}, unexpected {unexpected[:10]}')


def load_checkpoint(path, arch=None, device='cpu', aux=False):
    """
    Load a BiSeNet checkpoint; return ``(model, info)``.

    ``model`` is an eval-mode ``torch.nn.Module`` on ``device``: ``model(x)`` with
    normalised float32 (N, 3, H, W), H and W multiples of 32, returns logits
    (N, C, H, W). ``aux=True`` also builds the auxiliary heads (for training),
    loading their weights when the file has them. ``arch`` ('bisenetv1' or
    'bisenetv2') is checked against the file when given.
    Raises CheckpointError (CheckpointNotFoundError for a missing path).
    """
    if arch is not None and arch not in ARCHS:
        raise ValueError(f'unknown arch {arch!r}; expected one of {ARCHS}')
    kind, content, st_metadata = read_checkpoint_file(path)
    names = palette = None
    if kind == 'safetensors':
        check_weights(content, path)
        match, meta = _own_format(content, st_metadata, arch, path)
        source, variant = FORMAT_NAME, meta.get('variant', COINCHEUNG)
        names, palette = meta.get('class_names'), meta.get('palette')
        mean, std = meta.get('mean'), meta.get('std')
        input_size = meta.get('input_size')
    else:
        state_dict, mm_meta = _as_state_dict(content, path)
        check_weights(state_dict, path)
        match = recognise(state_dict, arch=arch, path=path)
        source, variant, meta = match.layout.source, match.layout.variant, {}
        if source == MMSEG:
            names, palette = _mmseg_classes(mm_meta, match.num_classes)
            check_metadata({'class_names': names, 'palette': palette}, path,
                           match.num_classes)
        mean, std = NORMALISATION[variant]
        input_size = None
    num_classes = match.num_classes
    if names is not None and len(names) != num_classes:
        raise CheckpointError(f'{path}: {len(names)} class names for {num_classes} classes')
    if palette is not None and len(palette) != num_classes:
        raise CheckpointError(f'{path}: {len(palette)} palette colours for {num_classes} '
                              'classes')
    weights = match.state_dict
    unused = list(match.dropped)
    if not aux:
        unused += [k for k in weights if k.startswith(AUX_PREFIXES)]
        weights = {k: v for k, v in weights.items() if not k.startswith(AUX_PREFIXES)}
    model = build_model(match.layout.arch, num_classes, aux=aux, variant=variant)
    _load_into(model, weights, path)
    model.to(device).eval()
    info = CheckpointInfo(
        arch=match.layout.arch, source=source, variant=variant, num_classes=num_classes,
        class_names=tuple(names or _default_names(num_classes)),
        palette=tuple(tuple(int(v) for v in c)
                      for c in (palette or cityscapes.default_palette(num_classes))),
        mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
        input_size=tuple(int(v) for v in input_size) if input_size else None,
        path=str(path), unused_keys=unused,
        metadata={k: v for k, v in meta.items() if k not in _INFO_FIELDS})
    return model, info


_INFO_FIELDS = {'arch', 'variant', 'num_classes', 'class_names', 'palette', 'mean', 'std',
                'input_size', 'format', 'format_version'}


def save_checkpoint(path, model, metadata):
    """
    Write ``model``'s weights and ``metadata`` in the project's format (safetensors).

    ``metadata`` needs at least ``arch``; ``variant`` defaults to 'coincheung',
    ``num_classes`` to the model's, names/palette/normalisation to Cityscapes and
    CoinCheung's. It must be JSON-serialisable: only plain types are stored.
    """
    from safetensors.torch import save_file
    meta = dict(metadata)
    if meta.get('arch') not in ARCHS:
        raise ValueError(f'metadata arch must be one of {ARCHS}, got {meta.get("arch")!r}')
    meta.setdefault('variant', COINCHEUNG)
    meta.setdefault('num_classes', model.num_classes)
    meta.setdefault('class_names', list(_default_names(meta['num_classes'])))
    meta.setdefault('palette', [list(c) for c in cityscapes.default_palette(meta['num_classes'])])
    mean, std = NORMALISATION[meta['variant']]
    meta.setdefault('mean', list(mean))
    meta.setdefault('std', list(std))
    meta.setdefault('input_size', None)
    meta.update(format=FORMAT_NAME, format_version=FORMAT_VERSION)
    tensors = {k: v.detach().to('cpu').contiguous().clone()
               for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={FORMAT_NAME: json.dumps(meta)})
    # safetensors creates the file owner-only; weights are meant to be shared and shipped.
    Path(path).chmod(0o644)
