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
Check what a checkpoint or an exported file declares before anything uses it.

Metadata is the file author's claim, weights may hold NaN or Inf: each is
checked here, and a refusal names the field and the values it accepts, so a
bad file fails at load with one clear line instead of labelling every pixel
'road' or failing on every frame.
"""

import math

from bisenet_ros.checkpoint.errors import CheckpointError
from bisenet_ros.runtime.options import STRIDE
import torch

# The largest network input a file may declare: 8K (7680x4320). 65536x65536 asked
# for 48 GiB at the first frame.
MAX_INPUT_PIXELS = 7680 * 4320
MAX_CLASSES = 255  # labels are mono8 and 255 is the ignore id
# Names go out in LabelInfo and logs: a 2 MB name would go with every message.
MAX_CLASS_NAME = 256
MAX_TEXT = 1024  # any other string a file declares (arch, variant, CPU class, ...)


def _fail(path, field, value, accepted):
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + '...'
    raise CheckpointError(f'{path}: metadata {field} = {shown} is not valid; expected {accepted}')


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_metadata(meta, path, num_classes=None, stride=STRIDE):
    """
    Raise CheckpointError unless ``meta`` (a file's metadata dict) is well-formed.

    Checks the fields that describe the network: num_classes, class_names,
    palette, mean, std, input_size, format_version. ``num_classes`` (from the
    weights) wins over the file's own claim when given. ``input_size`` sides
    are multiples of ``stride``: a checkpoint's network divides its input by
    32, while an ONNX graph's fixed size is whatever it was exported at.
    """
    if not isinstance(meta, dict):
        raise CheckpointError(f'{path}: metadata is a {type(meta).__name__}, expected a JSON '
                              'object (field -> value)')
    if 'format_version' in meta and not (_is_int(meta['format_version'])
                                         and meta['format_version'] >= 1):
        _fail(path, 'format_version', meta['format_version'], 'an integer >= 1')
    claimed = meta.get('num_classes')
    if claimed is not None and not (_is_int(claimed) and 1 <= claimed <= MAX_CLASSES):
        _fail(path, 'num_classes', claimed, f'an integer 1..{MAX_CLASSES}')
    classes = num_classes if num_classes is not None else claimed
    count = f'{classes} ' if classes is not None else ''
    _check_text(meta, path)
    names = meta.get('class_names')
    if names is not None and not (isinstance(names, (list, tuple))
                                  and len(names) == (classes or len(names))
                                  and all(isinstance(n, str) and len(n) <= MAX_CLASS_NAME
                                          and n.isprintable() for n in names)):
        _fail(path, 'class_names', names, f'a list of {count}printable strings of at most '
              f'{MAX_CLASS_NAME} characters')
    palette = meta.get('palette')
    if palette is not None and not (
            isinstance(palette, (list, tuple)) and len(palette) == (classes or len(palette))
            and all(isinstance(c, (list, tuple)) and len(c) == 3
                    and all(_is_int(v) and 0 <= v <= 255 for v in c) for c in palette)):
        _fail(path, 'palette', palette, f'{count}colours of 3 integers 0..255')
    for field, low in (('mean', 0.0), ('std', None)):
        value = meta.get(field)
        if value is None:
            continue
        if not (isinstance(value, (list, tuple)) and len(value) == 3
                and all(_is_number(v) for v in value)):
            _fail(path, field, value, '3 finite numbers (RGB, 0..1 scale)')
        if field == 'std' and min(value) <= 0:
            _fail(path, 'std', value, '3 numbers > 0 (each channel is divided by it)')
    size = meta.get('input_size')
    if size is not None and not (
            isinstance(size, (list, tuple)) and len(size) == 2
            and all(_is_int(v) and v > 0 and v % stride == 0 for v in size)
            and size[0] * size[1] <= MAX_INPUT_PIXELS):
        sides = f'positive multiples of {stride}' if stride > 1 else 'positive integers'
        _fail(path, 'input_size', size, f'[W, H], {sides}, at most {MAX_INPUT_PIXELS} pixels '
              '(7680x4320)')


def _check_text(value, path, field='metadata'):
    """Refuse any string longer than MAX_TEXT anywhere in ``value`` (nested lists, dicts)."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        _fail(path, field, value, f'at most {MAX_TEXT} characters')
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, (list, tuple)) else ()
    for key, child in children:
        if isinstance(key, str) and len(key) > MAX_TEXT:
            _fail(path, 'a field name', key, f'at most {MAX_TEXT} characters')
        _check_text(child, path, key if isinstance(key, str) else field)


def check_export_metadata(meta, path):
    """Also check the figures an exported .onnx file declares about itself."""
    check_metadata(meta, path, stride=1)
    if meta.get('input_size') is None:
        _fail(path, 'input_size', None, '[W, H]: an exported file has a fixed input size')
    if meta.get('precision', 'fp32') not in ('fp32', 'int8'):
        _fail(path, 'precision', meta['precision'], "'fp32' or 'int8'")
    if meta.get('int8_activations', 'u8') not in ('u8', 's8'):
        _fail(path, 'int8_activations', meta['int8_activations'], "'u8' or 's8'")
    agreement = meta.get('int8_agreement')
    if agreement is not None and not (_is_number(agreement) and 0.0 <= agreement <= 1.0):
        _fail(path, 'int8_agreement', agreement, 'a share within 0..1')
    for field in ('int8_check_frames', 'calibration_frames'):
        if field in meta and not (_is_int(meta[field]) and meta[field] >= 1):
            _fail(path, field, meta[field], 'an integer >= 1')
    # Absent in files written before QAT: post-training, 8-bit weights, class unknown.
    if meta.get('int8_method', 'ptq') not in ('ptq', 'qat'):
        _fail(path, 'int8_method', meta['int8_method'], "'ptq' or 'qat'")
    if meta.get('int8_weight_bits', 8) not in (7, 8):
        _fail(path, 'int8_weight_bits', meta['int8_weight_bits'], '7 or 8')
    if 'int8_cpu_class' in meta and not isinstance(meta['int8_cpu_class'], str):
        _fail(path, 'int8_cpu_class', meta['int8_cpu_class'], 'a CPU class name')
    if 'int8_evidence' in meta:
        _check_evidence(meta['int8_evidence'], path)


def _check_evidence(evidence, path):
    """Check a QAT file's int8_evidence: frames, split and mIoU figures per runtime."""
    accepted = ('{"split": str, "frames": int >= 1, "runtimes": {name: {"int8_miou", '
                '"fp32_miou", "agreement": shares within 0..1}}}')
    runtimes = evidence.get('runtimes') if isinstance(evidence, dict) else None
    if not (isinstance(runtimes, dict) and runtimes and isinstance(evidence.get('split'), str)
            and _is_int(evidence.get('frames')) and evidence['frames'] >= 1
            and all(isinstance(figures, dict) and all(
                _is_number(figures.get(key)) and 0.0 <= figures[key] <= 1.0
                for key in ('int8_miou', 'fp32_miou', 'agreement'))
                for figures in runtimes.values())):
        _fail(path, 'int8_evidence', evidence, accepted)


def check_weights(state_dict, path):
    """Raise CheckpointError if a weight is NaN or infinite, or a BatchNorm variance < 0."""
    for name, tensor in state_dict.items():
        if tensor.ndim == 0 and not name.endswith('num_batches_tracked'):
            raise CheckpointError(f'{path}: tensor {name} is a scalar; weights are arrays')
        if not tensor.is_floating_point():
            continue
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f'{path}: tensor {name} holds NaN or infinite values; the '
                                  'network would label every pixel alike')
        if name.endswith('running_var') and (tensor < 0).any():
            raise CheckpointError(f'{path}: tensor {name} has negative variances')
