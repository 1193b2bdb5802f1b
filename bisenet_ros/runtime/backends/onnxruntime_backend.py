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
ONNX Runtime backend: TensorRT, CUDA or CPU execution providers, in order.

ONNX Runtime lists GPU providers even where their libraries are missing and
then silently runs on the CPU, so the providers are judged from the session
actually created, and any fallback is logged.
"""

import logging
from pathlib import Path

from bisenet_ros.runtime import hardware
from bisenet_ros.runtime.backends import BackendUnavailableError, ModelCompileError
from bisenet_ros.runtime.export import read_metadata
import numpy as np

LOG = logging.getLogger('bisenet_ros.runtime')

PROVIDER_NAMES = {'tensorrt': 'TensorrtExecutionProvider', 'cuda': 'CUDAExecutionProvider',
                  'cpu': 'CPUExecutionProvider'}
DEFAULT_ORDER = {'cuda': ('tensorrt', 'cuda', 'cpu'), 'cpu': ('cpu',)}


def _provider_options(name, precision, input_shape, max_batch, cache_dir):
    if name == 'tensorrt':
        _, channels, height, width = input_shape
        shape = f'{channels}x{height}x{width}'
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        return {'trt_fp16_enable': precision == 'fp16', 'trt_int8_enable': False,
                'trt_engine_cache_enable': True, 'trt_engine_cache_path': str(cache_dir),
                'trt_timing_cache_enable': True,
                'trt_profile_min_shapes': f'image:1x{shape}',
                'trt_profile_opt_shapes': f'image:1x{shape}',
                'trt_profile_max_shapes': f'image:{max_batch}x{shape}'}
    if name == 'cuda':
        return {'cudnn_conv_algo_search': 'HEURISTIC'}
    return {}


class OnnxRuntimeBackend:
    """Run an exported .onnx file with ONNX Runtime."""

    name = 'onnxruntime'

    def __init__(self, onnx_path, device='cpu', precision=None, providers=None, threads=None,
                 max_batch=4, cache_dir=None, spinning=False):
        """Create the session; ``providers`` is an order such as ('tensorrt', 'cuda', 'cpu')."""
        import onnxruntime as ort
        self.path = Path(onnx_path)
        self.metadata = read_metadata(self.path)
        file_precision = self.metadata.get('precision', 'fp32')
        precision = precision or file_precision
        if file_precision == 'int8' and precision != 'int8':
            raise BackendUnavailableError(f'{self.path} is an int8 model; precision '
                                          f'{precision} needs the fp32 export')
        if precision in ('int8', 'fp32') and precision != file_precision:
            raise BackendUnavailableError(f'precision {precision} needs an {precision} export '
                                          f'(this file is {file_precision})')
        hardware.probe().require('onnxruntime', device, precision)
        self.precision = precision
        order = tuple(providers or DEFAULT_ORDER[device])
        unknown = [p for p in order if p not in PROVIDER_NAMES]
        if unknown:
            raise ValueError(f'unknown providers {unknown}; valid: {", ".join(PROVIDER_NAMES)}')
        if precision == 'fp16' and 'tensorrt' not in order:
            raise BackendUnavailableError('fp16 with onnxruntime runs on the TensorRT provider '
                                          'only; use device cuda')
        width, height = self.metadata['input_size']
        self.fixed_input_size = (width, height)
        cache_dir = Path(cache_dir or Path.home() / '.cache' / 'bisenet_ros' / 'tensorrt')
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = int(threads)
        # Spinning workers burn the cores DDS and the node's callbacks need between frames.
        options.add_session_config_entry('session.intra_op.allow_spinning',
                                         '1' if spinning else '0')
        available = set(ort.get_available_providers())
        requested = [(PROVIDER_NAMES[p], _provider_options(p, precision, (1, 3, height, width),
                                                           max_batch, cache_dir))
                     for p in order if PROVIDER_NAMES[p] in available]
        if not requested:
            raise BackendUnavailableError(f'none of the providers {order} is in this '
                                          f'onnxruntime build ({sorted(available)})')
        if any(name == PROVIDER_NAMES['tensorrt'] for name, _ in requested):
            LOG.info('TensorRT: the first run builds an engine for this model and shape, which '
                     'can take several minutes; later runs load it from %s', cache_dir)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=requested)
        except Exception as exc:  # onnxruntime's own types (Fail, InvalidGraph, ...): a bad graph
            raise ModelCompileError(self.path, 'onnxruntime', exc) from None
        self.providers = self.session.get_providers()
        wanted = PROVIDER_NAMES[order[0]]
        if self.providers[0] != wanted:
            LOG.warning('onnxruntime: %s could not be used (missing libraries or no GPU); '
                        'running on %s', wanted, self.providers[0])
            if precision == 'fp16' and self.providers[0] != PROVIDER_NAMES['tensorrt']:
                raise BackendUnavailableError('fp16 needs the TensorRT provider, which could '
                                              f'not be created; providers: {self.providers}')
        self.output_names = [o.name for o in self.session.get_outputs()]

    def describe(self):
        """Return a short description of what runs."""
        return f'onnxruntime {self.providers[0]} {self.precision} ({self.path.name})'

    def run(self, batch):
        """Return the graph's outputs by name for a normalised numpy batch."""
        import torch
        produced = self.session.run(None, {'image': np.ascontiguousarray(batch)})
        outputs = dict(zip(self.output_names, produced))
        if 'logits' in outputs:
            outputs['logits'] = torch.from_numpy(outputs['logits'])
        return outputs
