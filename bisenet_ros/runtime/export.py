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
Export a BiSeNet to ONNX, verify it against torch, and quantise it to int8.

The exported file is self-contained (no external data), uses standard
operators only (opset 17: Conv, Resize, ArgMax, Cast, ...), has a fixed H and
W with a dynamic batch, and carries the checkpoint's metadata (classes,
palette, mean/std, input size) so it loads alone.
"""

import hashlib
import json
from pathlib import Path
import warnings

import numpy as np
import torch
from torch import nn


OPSET = 17
METADATA_KEY = 'bisenet_ros'
OUTPUT_KINDS = ('logits', 'labels', 'labels+confidence')


class ExportVerificationError(RuntimeError):
    """The exported graph does not reproduce the torch network."""


class _ExportHead(nn.Module):
    """Network plus, optionally, argmax (as uint8) and max-softmax inside the graph."""

    def __init__(self, model, outputs):
        super().__init__()
        self.model = model
        self.outputs = outputs

    def forward(self, image):
        logits = self.model(image)
        if self.outputs == 'logits':
            return logits
        labels = logits.argmax(dim=1).to(torch.uint8)
        if self.outputs == 'labels':
            return labels
        return labels, torch.softmax(logits, dim=1).amax(dim=1)


def output_names(outputs):
    """Return the graph's output names for an OUTPUT_KINDS value."""
    return {'logits': ['logits'], 'labels': ['labels'],
            'labels+confidence': ['labels', 'confidence']}[outputs]


def export_onnx(model, metadata, path, input_size, outputs='logits', precision='fp32'):
    """
    Write ``model`` as ONNX to ``path`` for (W, H) ``input_size``; return the path.

    ``metadata`` (e.g. ``CheckpointInfo.to_metadata()``) is stored in the file
    with the input size, the outputs and the ``precision`` added ('int8' for a
    network whose quantisers export as QuantizeLinear/DequantizeLinear pairs).
    """
    import onnx
    if outputs not in OUTPUT_KINDS:
        raise ValueError(f'unknown outputs {outputs!r}; valid: {", ".join(OUTPUT_KINDS)}')
    width, height = input_size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = _ExportHead(model.eval().float().to('cpu'), outputs).eval()
    names = output_names(outputs)
    axes = {'image': {0: 'batch'}, **{name: {0: 'batch'} for name in names}}
    # The TorchScript exporter (deprecated in favour of torch.export) is chosen on
    # purpose: its opset-17 graph is plain Conv/Resize/ArgMax that every runtime reads.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(head, torch.zeros(1, 3, height, width), str(path), dynamo=False,
                          opset_version=OPSET, input_names=['image'], output_names=names,
                          dynamic_axes=axes, do_constant_folding=True)
    proto = onnx.load(str(path))
    meta = dict(metadata, input_size=[width, height], outputs=outputs, precision=precision)
    set_metadata(proto, meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path), save_as_external_data=False)
    return path


def file_sha256(path):
    """Return the SHA-256 hex digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def set_metadata(proto, metadata):
    """Store ``metadata`` as JSON in an ONNX ModelProto's metadata_props."""
    for prop in list(proto.metadata_props):
        if prop.key == METADATA_KEY:
            proto.metadata_props.remove(prop)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)


def read_metadata(path):
    """
    Return the checked bisenet_ros metadata dict of an exported .onnx file.

    Raises ModelFileError (a ValueError naming the file) for a file that is
    not ONNX, has no such metadata or declares values that do not hold.
    """
    from bisenet_ros.runtime.model_check import load_model, model_metadata
    return model_metadata(load_model(path), path)


def verify_against_torch(onnx_path, model, inputs, min_agreement=0.999, rel_tol=1e-3):
    """
    Compare the ONNX graph (CPU EP) with ``model`` on ``inputs``; return the figures.

    ``inputs`` is a normalised (N, 3, H, W) float32 array. Raises
    ExportVerificationError when argmax agreement or logits differ too much.
    """
    import onnxruntime as ort
    session = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    produced = session.run(None, {'image': inputs})
    with torch.inference_mode():
        logits = model.eval().float()(torch.from_numpy(inputs)).numpy()
    expected_labels = logits.argmax(axis=1)
    names = [o.name for o in session.get_outputs()]
    figures = {}
    if names[0] == 'logits':
        diff = float(np.abs(produced[0] - logits).max())
        figures['max_abs_logit_diff'] = diff
        figures['max_abs_logit'] = float(np.abs(logits).max())
        labels = produced[0].argmax(axis=1)
        if diff > rel_tol * figures['max_abs_logit']:
            raise ExportVerificationError(
                f'ONNX logits differ from torch by {diff:.3g} (limit '
                f'{rel_tol * figures["max_abs_logit"]:.3g})')
    else:
        labels = produced[0]
    figures['argmax_agreement'] = float((labels == expected_labels).mean())
    if figures['argmax_agreement'] < min_agreement:
        raise ExportVerificationError(
            f'ONNX argmax agrees with torch on {figures["argmax_agreement"]:.4%} of pixels '
            f'(need {min_agreement:.2%})')
    return figures


def export_verified(model, info, path, input_size, outputs='logits', probe=None):
    """
    Write ``model`` to ``path`` as a verified ONNX file; return the verification figures.

    The graph is written under a temporary name, compared with torch on
    ``probe`` (normalised (N, 3, H, W); None = two random inputs) and renamed
    only once it passes, so a failed or interrupted export leaves no file at
    ``path``. The Segmenter's cache and bisenet export both export through here.
    """
    path = Path(path)
    if probe is None:
        width, height = input_size
        probe = np.random.default_rng(0).standard_normal((2, 3, height, width),
                                                         dtype=np.float32)
    partial = path.with_name(path.name + '.partial')
    try:
        export_onnx(model, info.to_metadata(), partial, input_size, outputs)
        figures = verify_against_torch(partial, model, probe)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return figures
