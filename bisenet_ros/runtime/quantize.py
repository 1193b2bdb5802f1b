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

Weights take 7 bits where the CPU lacks an int8 dot-product instruction
(VNNI on x86, dotprod on Arm): without it, x86 kernels sum pairs of u8 x s8
products in int16 (VPMADDUBSW), which saturates with full-range weights; 7-bit
weights cannot overflow it. The file records the bits and the ISA class its
evidence was measured on (``int8_weight_bits``, ``int8_cpu_class``).

A quantisation-aware (QAT) file, ``int8_method`` 'qat', carries instead its
validation mIoU and its fp32 parent's, measured with the exported files in
each runtime (``int8_evidence``); the gate accepts it within
``QAT_MAX_MIOU_DROP`` of the parent.
"""

import functools
import logging
from pathlib import Path
import tempfile

from bisenet_ros.runtime import hardware
from bisenet_ros.runtime.export import read_metadata, set_metadata
from bisenet_ros.runtime.options import ACTIVATIONS
import numpy as np

LOG = logging.getLogger('bisenet_ros.runtime')

WEIGHT_BITS = (7, 8)
# CPU features with an int8 dot product that accumulates in int32 (no int16 saturation).
INT8_DOT_FEATURES = ('avx512_vnni', 'avx_vnni', 'dotprod')
# A QAT file passes when its val mIoU is at most this far (a share: 1.0 point) below its parent's.
QAT_MAX_MIOU_DROP = 0.01


def default_weight_bits(cpu=None):
    """Return 8 where ``cpu`` (default: the probe's) has an int8 dot product, else 7."""
    cpu = cpu or hardware.probe().cpu
    return 8 if any(f in cpu.features for f in INT8_DOT_FEATURES) else 7


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


def quantize_int8(fp32_path, out_path, frames, activations='u8', weight_bits=None):
    """
    Write an int8 QDQ copy of ``fp32_path``; return its held-out label agreement.

    ``frames`` are normalised (1, 3, H, W) arrays of real frames; ``activations``
    is 'u8' (asymmetric uint8, for ONNX Runtime) or 's8' (symmetric int8, for
    OpenVINO); ``weight_bits`` 7 or 8 (None: ``default_weight_bits()`` for this
    CPU). The final logits Resize and anything after it stay in float:
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
    weight_bits = weight_bits or default_weight_bits()
    if weight_bits not in WEIGHT_BITS:
        raise ValueError(f'int8 weight bits must be 7 or 8, not {weight_bits!r}')
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
                        reduce_range=weight_bits == 7,
                        extra_options={'ActivationSymmetric': symmetric})
    try:
        agreement = label_agreement(fp32_path, partial, check)
        proto = onnx.load(str(partial))
        set_metadata(proto, dict(metadata, precision='int8', int8_activations=activations,
                                 int8_method='ptq', int8_weight_bits=weight_bits,
                                 int8_cpu_class=hardware.probe().cpu.cpu_class,
                                 calibration_frames=len(calibration), int8_agreement=agreement,
                                 int8_check_frames=len(check)))
        onnx.save(proto, str(partial), save_as_external_data=False)
        partial.replace(out_path)
    finally:
        partial.unlink(missing_ok=True)
    LOG.info('wrote int8 model %s (%d-bit weights, calibrated on %d frames; labels %.2f %% as '
             'fp32 on %d held-out frames)', out_path, weight_bits, len(calibration),
             100 * agreement, len(check))
    return agreement


def int8_shortfall(metadata, min_agreement, setting='int8_min_agreement', runtime=None):
    """
    Return why an int8 file with ``metadata`` misses its accuracy bar, or None.

    A post-training file is judged by the agreement ``quantize_int8`` measured
    on held-out frames against ``min_agreement``; a QAT file by its val mIoU,
    at most ``QAT_MAX_MIOU_DROP`` below its fp32 parent's in ``runtime`` (the
    backend about to run it: one runtime's kernels say nothing of another's),
    or in every runtime measured when ``runtime`` is None. ``setting`` names
    the knob the user sets to 0 (any file passes) or lowers. Evidence measured
    on another CPU class than this one is used, with a warning (once per
    process).
    """
    if min_agreement <= 0:
        return None
    evidence = metadata.get('int8_evidence') or {}
    if metadata.get('int8_method') == 'qat':
        if not evidence.get('runtimes'):
            return (f'the QAT file holds no measured val mIoU; measure it with bisenet export '
                    f'--check FILE --data ROOT --write, or set {setting} to 0 to run it '
                    'unchecked')
        if runtime is not None and runtime not in evidence['runtimes']:
            return (f'the QAT file was measured in '
                    f'{", ".join(sorted(evidence["runtimes"]))}, not in {runtime}; measure it '
                    f'with bisenet export --check FILE --data ROOT --write, or set {setting} '
                    'to 0 to run it unchecked')
    elif metadata.get('int8_agreement') is None:
        return (f'the file holds no measured int8 agreement; export it again with '
                f'bisenet export, or set {setting} to 0 to run it unchecked')
    _warn_other_class(metadata.get('int8_cpu_class'), hardware.probe().cpu.cpu_class)
    if metadata.get('int8_method') == 'qat':
        if qat_miou_drop(metadata, runtime)[1] <= QAT_MAX_MIOU_DROP:
            return None
        return (f'{int8_measurement(metadata, runtime)}: more than '
                f'{100 * QAT_MAX_MIOU_DROP:.1f} point below its parent; set {setting} to 0 to '
                'accept it anyway')
    if metadata['int8_agreement'] >= min_agreement:
        return None
    return (f'{int8_measurement(metadata)}, below {setting} {min_agreement:.2%}; use bf16 where '
            f'the CPU has native bf16 (close to fp32), or lower {setting} to accept this')


def qat_miou_drop(metadata, runtime=None):
    """Return (runtime, mIoU drop as a share) in ``runtime``, or where QAT int8 lost most."""
    runtimes = metadata['int8_evidence']['runtimes']
    if runtime is not None:
        runtimes = {runtime: runtimes[runtime]}
    return max(((name, r['fp32_miou'] - r['int8_miou']) for name, r in runtimes.items()),
               key=lambda item: item[1])


@functools.lru_cache(maxsize=None)
def _warn_other_class(measured, here):
    if measured and measured != here:
        LOG.warning('int8 evidence was measured on CPU class %s, this CPU is class %s: int8 '
                    'kernels differ between classes; re-measure here with bisenet export '
                    '--check FILE', measured, here)


def int8_measurement(metadata, runtime=None):
    """Return the sentence that states an int8 file's evidence (in ``runtime``, or the worst)."""
    if metadata.get('int8_method') == 'qat':
        evidence = metadata['int8_evidence']
        name, _ = qat_miou_drop(metadata, runtime)
        figures = evidence['runtimes'][name]
        which = ('' if runtime is not None or len(evidence['runtimes']) == 1 else
                 f' (the worst of {", ".join(sorted(evidence["runtimes"]))})')
        return (f'QAT int8 val mIoU {100 * figures["int8_miou"]:.2f} vs fp32 parent '
                f'{100 * figures["fp32_miou"]:.2f} in {name}{which} on {evidence["frames"]} '
                f'{evidence["split"]} frames, class {metadata.get("int8_cpu_class")}')
    return (f'int8 labels {metadata["int8_agreement"]:.2%} of pixels as fp32 did on '
            f'{metadata.get("int8_check_frames")} held-out calibration frames')
