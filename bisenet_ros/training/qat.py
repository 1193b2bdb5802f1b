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
Quantisation-aware fine-tuning (``bisenet train --qat``) with NNCF, and its int8 export.

The choices, each for an int8 graph that really runs int8 in both runtimes:

- BatchNorm is folded into the convolutions first: ONNX Runtime fuses
  DequantizeLinear -> Conv -> QuantizeLinear into QLinearConv only with nothing
  between the Conv and the next quantiser, and the weights trained with their
  quantiser are then exactly the weights that run.
- Activations are symmetric (zero point 0) and per tensor: NNCF's
  'performance' preset, with its per-channel depthwise inputs made per tensor
  (ONNX Runtime's QLinearConv needs one input scale; with per-channel inputs
  it fused only 60 % of BiSeNetV2's Convs, now 52 of 56). Asymmetric u8
  ('mixed') was measured too: as good in ONNX Runtime, but OpenVINO lost 4.9
  mIoU points on its zero points, against 0.02 for this scheme on the
  demonstration model's initial quantisation. One file serves both runtimes,
  measured in each; it is marked s8 (symmetric), so ``auto`` runs it in
  OpenVINO, the faster of the two with it.
- Weights are symmetric int8 per output channel, 7-bit (NNCF's half range,
  kept through training) where the target CPU lacks VNNI/dotprod.
- The classifier is kept, so the data must label the checkpoint's classes.
- ``float_ends`` (``--qat-float-ends``) keeps the convolutions that read the
  RGB image and the classifier in float: it loses less accuracy than
  all-int8 for a few % of the speed (measured in docs/performance.md).
  The blocks are named in the file's metadata (``int8_float_layers``).
"""

import re

from bisenet_ros.runtime.export import export_onnx, export_verified, file_sha256
from bisenet_ros.runtime.processing import Normaliser, prepare_batch
from bisenet_ros.training.datasets import build_dataset, DATASET_CLASS_NAMES
import torch
from torch import nn

CALIBRATION_FRAMES = 8


def import_nncf():
    """Return the nncf module, or raise ValueError saying how to install it."""
    try:
        import nncf
    except ImportError as exc:
        raise ValueError(f"--qat needs NNCF ({exc}): pip install 'bisenet_ros[qat]'") from None
    return nncf


def check_class_set(info, cfg):
    """Raise ValueError unless the data labels exactly the checkpoint's classes."""
    data = tuple(DATASET_CLASS_NAMES[cfg['dataset']])
    ours = tuple(info.class_names)
    if tuple(n.lower() for n in ours) != tuple(n.lower() for n in data):
        raise ValueError(
            f'{info.path}: its {len(ours)} classes ({", ".join(ours[:4])}, ...) are not the '
            f'{len(data)} classes the {cfg["dataset"]} data is labelled in '
            f'({", ".join(data[:4])}, ...); QAT keeps the classifier, so fine-tune to these '
            'classes first (bisenet train without --qat), then run --qat from that checkpoint')
    if cfg['num_classes'] != len(ours):
        raise ValueError(f'--num-classes {cfg["num_classes"]} differs from the {len(ours)} '
                         f'classes of {info.path}; QAT keeps the classes it starts from')


def fold_batchnorm(model):
    """Fold every BatchNorm2d that directly follows a Conv2d into it; return the count."""
    folded = 0
    for module in model.modules():
        children = list(module.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:]):
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            factor = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(factor)
            with torch.no_grad():
                conv.weight.mul_(factor.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter((bias - bn.running_mean) * factor + bn.bias.detach())
            setattr(module, bn_name, nn.Identity())
            folded += 1
    return folded


def calibration_frames(cfg, info, count=CALIBRATION_FRAMES):
    """Return up to ``count`` normalised (1, 3, H, W) train frames at the input size."""
    dataset = build_dataset(cfg['dataset'], cfg['data'], cfg['train_split'])
    normaliser = Normaliser(info.mean, info.std)
    step = max(1, len(dataset) // count)
    return [prepare_batch([dataset.load(i)[0]], normaliser, 'stretch',
                          tuple(cfg['input_size']))[0]
            for i in range(0, len(dataset), step)][:count]


def float_end_layers(model, num_classes):
    """
    Return the blocks that hold a Conv2d reading the RGB image or giving the class scores.

    The block (the conv's parent: conv + BN + ReLU, or the head's conv stack) is
    kept whole: measured on the demonstration model at 1024x512, leaving only the
    convolutions float lost more (1.33-1.36 points) than all-int8 (1.24), since their
    outputs were still quantised; whole blocks lost 0.71-0.75. A conv that is a
    direct child of a large module (ResNet's conv1) is kept alone.
    """
    blocks = []
    modules = dict(model.named_modules())
    for name, module in modules.items():
        if not (isinstance(module, nn.Conv2d)
                and (module.in_channels == 3 or module.out_channels == num_classes)):
            continue
        parent = name.rpartition('.')[0]
        small = parent and sum(1 for _ in modules[parent].children()) <= 4
        blocks.append(parent if small else name)
    return list(dict.fromkeys(blocks))


def quantize_for_training(model, frames, weight_bits, float_layers=()):
    """
    Return ``model`` (BatchNorm folded, in place) with NNCF quantisers, calibrated on ``frames``.

    ``weight_bits`` 7 trains weights on 7-bit levels (exported as int8 values
    within -64..63), 8 on full int8. ``float_layers`` (module names) stay float.
    """
    nncf = import_nncf()
    from nncf.quantization.advanced_parameters import QuantizationParameters
    fold_batchnorm(model)
    model.eval()
    overflow = nncf.OverflowFix.ENABLE if weight_bits == 7 else nncf.OverflowFix.DISABLE
    # NNCF names a module's operations by its dotted path with '/'.
    ignored = nncf.IgnoredScope(
        patterns=[re.escape(name.replace('.', '/')) + '/.*' for name in float_layers])
    quantized = nncf.quantize(
        model, nncf.Dataset([torch.from_numpy(frame) for frame in frames]),
        subset_size=len(frames), preset=nncf.QuantizationPreset.PERFORMANCE,
        ignored_scope=ignored,
        advanced_parameters=nncf.AdvancedQuantizationParameters(
            overflow_fix=overflow,
            activations_quantization_params=QuantizationParameters(per_channel=False)))
    if weight_bits == 7:
        _train_half_range(quantized)
    return quantized


def _weight_quantizers(model):
    """Yield (name, quantiser) of the weights: per channel, where activations are per tensor."""
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import SymmetricQuantizer
    for name, module in list(get_hook_storage(model).named_hooks()):
        if isinstance(module, SymmetricQuantizer) and module.per_channel:
            yield name, module


def _train_half_range(model):
    """
    Swap the weight quantisers for half-range (7-bit) ones over the same range.

    NNCF's torch quantisers leave calibration on the full 8-bit grid (levels
    -127..127 here, overflow fix or not), so weights would train and export
    with 8 bits; a half-range quantiser keeps them to -64..63 steps of
    range / 63 in training and in the exported file.
    """
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import PTQuantizerSpec, SymmetricQuantizer
    storage = get_hook_storage(model)
    for name, old in _weight_quantizers(model):
        spec = PTQuantizerSpec(num_bits=8, mode=old._qspec.mode, signedness_to_force=True,
                               narrow_range=False, half_range=True,
                               scale_shape=old.scale_shape, logarithm_scale=False)
        new = SymmetricQuantizer(spec)
        new.signed = True
        with torch.no_grad():
            # NNCF's scale is the range's top, not the step: keep it, so the 7-bit
            # grid spans the calibrated range (step scale / 63, not scale / 127).
            new.scale.copy_(old.scale)
        storage.set_submodule(name, new)


def export_int8(model, metadata, path, input_size, outputs, weight_bits):
    """Write the QAT ``model`` as an ONNX QDQ file with its int8 facts (no evidence yet)."""
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import BaseQuantizer, QuantizerExportMode
    for _, module in get_hook_storage(model).named_hooks():
        if isinstance(module, BaseQuantizer):
            module.set_export_mode(QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS)
    meta = dict(metadata, int8_method='qat', int8_activations='s8',
                int8_weight_bits=weight_bits)
    result = export_onnx(model, meta, path, input_size, outputs, precision='int8')
    store_int8_weights(path)
    return result


def store_int8_weights(path):
    """
    Rewrite the ONNX file at ``path`` with its quantised weights stored as int8.

    The export writes each weight as a float constant and a QuantizeLinear the
    runtime evaluates at load; storing the int8 result instead is the same
    numbers (ONNX rounds half to even, as numpy does) in a quarter of the file,
    and the weight levels can be read straight from it. Returns the count.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(str(path))
    graph = proto.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                      for n in graph.node if n.op_type == 'Constant' and n.attribute
                      and n.attribute[0].name == 'value'})
    folded = []
    for node in graph.node:
        if node.op_type != 'QuantizeLinear' or not all(i in constants for i in node.input):
            continue
        weight, scale, zero = (constants[i] for i in node.input)
        axis = next((a.i for a in node.attribute if a.name == 'axis'), 1)
        if scale.ndim:  # per channel: scale runs along ``axis``
            shape = [1] * weight.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        info = np.iinfo(zero.dtype)
        levels = np.clip(np.round(weight / scale) + zero.astype(np.int32), info.min, info.max)
        graph.initializer.append(numpy_helper.from_array(levels.astype(zero.dtype),
                                                         node.output[0]))
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    used = {name for n in graph.node for name in n.input}
    for node in [n for n in graph.node if n.op_type == 'Constant' and n.output[0] not in used]:
        graph.node.remove(node)
    onnx.save(proto, str(path), save_as_external_data=False)
    return len(folded)


def export_with_parent(model, metadata, parent_checkpoint, path, parent_path, input_size,
                       weight_bits):
    """
    Write the QAT ``model`` to ``path`` and the checkpoint it started from to ``parent_path``.

    Both at ``input_size`` with labels inside the graph (as bisenet export
    writes them), so that measuring them on the same frames compares like with
    like. The int8 file records the parent checkpoint's SHA-256, so a Segmenter
    given that checkpoint can find it.
    """
    from bisenet_ros.checkpoint import load_checkpoint
    parent, info = load_checkpoint(parent_checkpoint)
    export_verified(parent, info, parent_path, input_size, 'labels')
    meta = dict(metadata, int8_parent_sha256=file_sha256(parent_checkpoint))
    export_int8(model, meta, path, input_size, 'labels', weight_bits)
