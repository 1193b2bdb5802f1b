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
OpenVINO backend: the exported ONNX graph compiled for the CPU.

On CPUs with AMX or AVX-512 BF16, ``precision='bf16'`` runs convolutions in
bfloat16 with float32 accumulation (INFERENCE_PRECISION_HINT); ``'int8'`` runs
the QDQ model that ``quantize_int8`` writes. fp32 is exact float inference.
"""

import logging
from pathlib import Path

from bisenet_ros.runtime.backends import BackendUnavailableError
from bisenet_ros.runtime.export import read_metadata
import numpy as np

LOG = logging.getLogger('bisenet_ros.runtime')

_HINTS = {'fp32': 'f32', 'bf16': 'bf16', 'int8': 'f32'}


class OpenVinoBackend:
    """Run an exported .onnx file with OpenVINO on the CPU."""

    name = 'openvino'

    def __init__(self, onnx_path, device='cpu', precision=None, threads=None):
        """Compile the model; raise BackendUnavailableError where it cannot run."""
        try:
            import openvino
        except ImportError as exc:
            raise BackendUnavailableError('backend openvino needs the openvino package '
                                          "(pip install 'bisenet_ros[openvino]')") from exc
        if device != 'cpu':
            raise BackendUnavailableError(f'backend openvino runs on the CPU here, not {device}')
        self.path = Path(onnx_path)
        self.metadata = read_metadata(self.path)
        file_precision = self.metadata.get('precision', 'fp32')
        precision = precision or file_precision
        if (precision == 'int8') != (file_precision == 'int8'):
            raise BackendUnavailableError(f'precision {precision} needs the '
                                          f'{"int8" if precision == "int8" else "fp32"} '
                                          f'export; {self.path.name} is {file_precision}')
        if precision not in _HINTS:
            raise BackendUnavailableError(f'openvino supports precision {", ".join(_HINTS)}, '
                                          f'not {precision}')
        core = openvino.Core()
        if precision == 'bf16' and 'BF16' not in core.get_property('CPU',
                                                                   'OPTIMIZATION_CAPABILITIES'):
            raise BackendUnavailableError('this CPU has no bf16 support; use fp32 or int8')
        self.precision = precision
        config = {'INFERENCE_PRECISION_HINT': _HINTS[precision], 'PERFORMANCE_HINT': 'LATENCY'}
        if threads:
            config['INFERENCE_NUM_THREADS'] = int(threads)
        self.compiled = core.compile_model(str(self.path), 'CPU', config)
        self.request = self.compiled.create_infer_request()
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]
        self.fixed_input_size = tuple(self.metadata['input_size'])
        self.version = openvino.__version__

    def describe(self):
        """Return a short description of what runs."""
        return f'openvino {self.version} CPU {self.precision} ({self.path.name})'

    def run(self, batch):
        """Return the graph's outputs by name for a normalised numpy batch."""
        import torch
        produced = self.request.infer({0: np.ascontiguousarray(batch)})
        outputs = {name: produced[port] for name, port in zip(self.output_names,
                                                              self.compiled.outputs)}
        if 'logits' in outputs:
            outputs['logits'] = torch.from_numpy(outputs['logits'])
        return outputs
