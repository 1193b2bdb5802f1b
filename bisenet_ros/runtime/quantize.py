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

ONNX Runtime's CPU kernels run the quantised convolutions with VNNI/AMX int8
instructions. Calibration frames should look like deployment (street scenes);
accuracy is measured as argmax agreement with fp32 by the benchmark.
"""

import logging
from pathlib import Path
import tempfile

from bisenet_ros.runtime.export import read_metadata, set_metadata

LOG = logging.getLogger('bisenet_ros.runtime')


class _Batches:
    """CalibrationDataReader over a list of normalised (1, 3, H, W) arrays."""

    def __init__(self, batches):
        self._iter = iter(batches)

    def get_next(self):
        batch = next(self._iter, None)
        return None if batch is None else {'image': batch}

    def rewind(self):
        """Unsupported: calibration reads the frames once."""


def quantize_int8(fp32_path, out_path, calibration_batches):
    """
    Write an int8 QDQ copy of ``fp32_path`` calibrated on ``calibration_batches``.

    The final logits Resize and anything after it stay in float: quantising
    19-class logits before the argmax costs agreement for no speed.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, quant_pre_process, QuantFormat,
                                          quantize_static, QuantType)
    if not calibration_batches:
        raise ValueError('int8 quantisation needs at least one calibration frame')
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    metadata = read_metadata(fp32_path)
    proto = onnx.load(str(fp32_path))
    resizes = [n.name for n in proto.graph.node if n.op_type == 'Resize']
    tail = []
    if resizes:
        last = [n.name for n in proto.graph.node]
        tail = last[last.index(resizes[-1]):]
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / 'prepared.onnx'
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out_path), _Batches(calibration_batches),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=tail)
    proto = onnx.load(str(out_path))
    set_metadata(proto, dict(metadata, precision='int8',
                             calibration_frames=len(calibration_batches)))
    onnx.save(proto, str(out_path), save_as_external_data=False)
    LOG.info('wrote int8 model %s (calibrated on %d frames)', out_path,
             len(calibration_batches))
    return out_path
