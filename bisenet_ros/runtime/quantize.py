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
Static int8 quantisation (QDQ, per-channel weights) calibrated on real frames.

Every fourth frame is held out of the calibration and used to measure how many
pixels the int8 model labels as the fp32 model does; the figure travels in the
file's metadata (``int8_agreement``) so whoever loads the file can judge it.

Activations are quantised the way each runtime executes accurately and fast:
ONNX Runtime's x86 kernels want uint8 with a zero point ('u8'); OpenVINO's CPU
plugin runs zero-pointed activations less accurately than ONNX Runtime (90.7
vs 95.0 % agreement with fp32, demonstration model, 16 street frames), but
symmetric int8 ones ('s8') as accurately (94.5 vs 94.4 %).
"""

import logging
from pathlib import Path
import tempfile

from bisenet_ros.runtime.export import read_metadata, set_metadata
import numpy as np

LOG = logging.getLogger('bisenet_ros.runtime')

ACTIVATIONS = {'onnxruntime': 'u8', 'openvino': 's8'}


class _Batches:
    """CalibrationDataReader over a list of normalised (1, 3, H, W) arrays."""

    def __init__(self, batches):
        self._iter = iter(batches)

    def get_next(self):
        batch = next(self._iter, None)
        return None if batch is None else {'image': batch}

    def rewind(self):
        """Unsupported: calibration reads the frames once."""


def _split_frames(frames):
    """Return (calibration, held-out check) frames: every fourth, or the last, is held out."""
    held = set(range(3, len(frames), 4)) or {len(frames) - 1}
    return ([f for i, f in enumerate(frames) if i not in held],
            [frames[i] for i in sorted(held)])


def label_agreement(fp32_path, int8_path, batches):
    """Return the share of pixels whose label the two ONNX files agree on (CPU EP)."""
    import onnxruntime as ort
    sessions = [ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
                for path in (fp32_path, int8_path)]
    same = total = 0
    for batch in batches:
        fp32, int8 = (_labels(session, batch) for session in sessions)
        same += int(np.count_nonzero(fp32 == int8))
        total += fp32.size
    return same / total


def _labels(session, batch):
    output = session.get_outputs()[0]
    produced = session.run([output.name], {'image': batch})[0]
    return produced.argmax(axis=1) if output.name == 'logits' else produced


def quantize_int8(fp32_path, out_path, frames, activations='u8'):
    """
    Write an int8 QDQ copy of ``fp32_path``; return its held-out label agreement.

    ``frames`` are normalised (1, 3, H, W) arrays of real frames; ``activations``
    is 'u8' (asymmetric uint8, for ONNX Runtime) or 's8' (symmetric int8, for
    OpenVINO). The final logits Resize and anything after it stay in float:
    quantising 19-class logits before the argmax costs agreement for no speed.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, quant_pre_process, QuantFormat,
                                          quantize_static, QuantType)
    if len(frames) < 2:
        raise ValueError('int8 quantisation needs at least 2 real frames: one in four is '
                         'held out to measure the labels against fp32')
    if activations not in ACTIVATIONS.values():
        raise ValueError(f'int8 activations must be one of {sorted(ACTIVATIONS.values())}, '
                         f'not {activations!r}')
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    # Written under a temporary name: a file at out_path is always complete.
    partial = out_path.with_name(out_path.name + '.partial')
    calibration, check = _split_frames(frames)
    metadata = read_metadata(fp32_path)
    proto = onnx.load(str(fp32_path))
    resizes = [n.name for n in proto.graph.node if n.op_type == 'Resize']
    tail = []
    if resizes:
        last = [n.name for n in proto.graph.node]
        tail = last[last.index(resizes[-1]):]
    symmetric = activations == 's8'
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / 'prepared.onnx'
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(partial), _Batches(calibration),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=tail,
                        extra_options={'ActivationSymmetric': symmetric})
    try:
        agreement = label_agreement(fp32_path, partial, check)
        proto = onnx.load(str(partial))
        set_metadata(proto, dict(metadata, precision='int8', int8_activations=activations,
                                 calibration_frames=len(calibration), int8_agreement=agreement,
                                 int8_check_frames=len(check)))
        onnx.save(proto, str(partial), save_as_external_data=False)
        partial.replace(out_path)
    finally:
        partial.unlink(missing_ok=True)
    LOG.info('wrote int8 model %s (calibrated on %d frames; labels %.2f %% as fp32 on %d '
             'held-out frames)', out_path, len(calibration), 100 * agreement, len(check))
    return agreement


def int8_shortfall(metadata, min_agreement, setting='int8_min_agreement'):
    """
    Return why an int8 file with ``metadata`` misses ``min_agreement``, or None.

    The agreement is the one ``quantize_int8`` measured on held-out frames;
    ``setting`` names the knob the user lowers to accept the file anyway.
    """
    agreement = metadata.get('int8_agreement')
    if agreement is None:
        return None if min_agreement <= 0 else (
            f'the file holds no measured int8 agreement; export it again with '
            f'bisenet-export, or set {setting} to 0 to run it unchecked')
    if agreement >= min_agreement:
        return None
    return (f'{int8_measurement(metadata)}, below {setting} {min_agreement:.2%}; use bf16 where '
            f'the CPU has native bf16 (close to fp32), or lower {setting} to accept this')


def int8_measurement(metadata):
    """Return the sentence that states an int8 file's measured agreement."""
    return (f'int8 labels {metadata["int8_agreement"]:.2%} of pixels as fp32 did on '
            f'{metadata.get("int8_check_frames")} held-out calibration frames')
