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

On CPUs with AMX or AVX-512 BF16 (the capability probe decides),
``precision='bf16'`` runs convolutions in bfloat16 with float32 accumulation
(INFERENCE_PRECISION_HINT); ``'int8'`` runs the QDQ model that
``quantize_int8`` writes for it (symmetric int8 activations, which this plugin
runs as accurately as ONNX Runtime does). fp32 is exact float inference.

With bf16 the graph is split in two compiled models: the network up to its
low-resolution logits in bf16, and the tail (the x8 logits upsampling, argmax,
confidence) in float32. Left to itself the CPU plugin would run that upsampling
in bf16, whose 8-bit mantissa turns close logits into ties: 99.43 % instead of
99.61 % argmax agreement with fp32 on the street frames, for about the same time.
"""

import logging
from pathlib import Path
import sys

from bisenet_ros.runtime import hardware
from bisenet_ros.runtime.backends import BackendUnavailableError, ModelCompileError
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
            openvino = _import_openvino()
        except ImportError as exc:
            raise BackendUnavailableError('backend openvino needs the openvino package '
                                          "(pip install 'bisenet_ros[openvino]')") from exc
        self.path = Path(onnx_path)
        self.metadata = read_metadata(self.path)
        file_precision = self.metadata.get('precision', 'fp32')
        precision = precision or file_precision
        if (precision == 'int8') != (file_precision == 'int8'):
            raise BackendUnavailableError(f'precision {precision} needs the '
                                          f'{"int8" if precision == "int8" else "fp32"} '
                                          f'export; {self.path.name} is {file_precision}')
        if precision == 'int8' and self.metadata.get('int8_activations', 'u8') != 's8':
            LOG.warning('%s quantises activations with zero points, which OpenVINO runs less '
                        'accurately than ONNX Runtime (its measured agreement overstates this '
                        'backend); quantise for openvino (bisenet export --int8-for openvino)',
                        self.path.name)
        hardware.probe().require('openvino', device, precision)
        core = openvino.Core()
        self.precision = precision
        config = {'INFERENCE_PRECISION_HINT': _HINTS[precision], 'PERFORMANCE_HINT': 'LATENCY'}
        if threads:
            config['INFERENCE_NUM_THREADS'] = int(threads)
        try:
            last = self._compile(core, precision, config)
        except (RuntimeError, MemoryError) as exc:  # e.g. 'No conversion rule found'
            raise ModelCompileError(self.path, 'openvino', exc) from None
        # The graph's outputs are those of its last part.
        self.outputs = last.outputs
        self.output_names = [o.get_any_name() for o in self.outputs]
        self.fixed_input_size = tuple(self.metadata['input_size'])
        self.version = openvino.__version__

    def _compile(self, core, precision, config):
        """Compile the model (body and tail with bf16); return the last compiled part."""
        model = core.read_model(str(self.path))
        _unstable_argmax(model)
        body, tail = _split_at_upsampling(model) if precision == 'bf16' else (model, None)
        last = core.compile_model(body, 'CPU', config)
        self.body_request = last.create_infer_request()
        self.tail_request = None
        if tail is not None:
            last = core.compile_model(tail, 'CPU', dict(config, INFERENCE_PRECISION_HINT='f32'))
            self.tail_request = last.create_infer_request()
        return last

    def describe(self):
        """Return a short description of what runs."""
        return f'openvino {self.version} CPU {self.precision} ({self.path.name})'

    def run(self, batch):
        """Return the graph's outputs by name for a normalised numpy batch."""
        import torch
        produced = self.body_request.infer({0: np.ascontiguousarray(batch)})
        if self.tail_request is not None:
            # The tail reads the body's output buffer in place: no copy between the two.
            self.tail_request.set_input_tensor(self.body_request.get_output_tensor(0))
            produced = self.tail_request.infer()
        outputs = {name: produced[port] for name, port in zip(self.output_names, self.outputs)}
        if 'logits' in outputs:
            outputs['logits'] = torch.from_numpy(outputs['logits'])
        return outputs


def _import_openvino():
    """
    Import openvino with its usage telemetry left out.

    ``import openvino`` otherwise forks the importing process to send an event
    to Google Analytics (openvino_telemetry, unless the user opted out): a
    ROS node must neither fork its DDS process nor reach the internet. With
    the module marked missing, openvino uses its own no-op stub.
    """
    if 'openvino' not in sys.modules:
        sys.modules.setdefault('openvino_telemetry', None)
    import openvino
    return openvino


def _unstable_argmax(model):
    """
    Replace the stable TopK that ONNX ArgMax becomes by the plain one, in place.

    The stable kernel is about 2.7x slower on the CPU plugin's channel-blocked
    layout (52 vs 19 ms for 19 x 512 x 1024 logits) and differs only on exact
    ties, which float logits practically never produce.
    """
    from openvino import opset13
    for node in model.get_ordered_ops():
        attributes = node.get_attributes()
        if node.get_type_name() != 'TopK' or not attributes.get('stable'):
            continue
        plain = opset13.topk(node.input_value(0), node.input_value(1), attributes['axis'],
                             attributes['mode'], attributes['sort'],
                             attributes['index_element_type'], stable=False)
        for old, new in zip(node.outputs(), plain.outputs()):
            old.replace(new)


def _split_at_upsampling(model):
    """
    Return (body, tail): ``model`` cut at the input of its last Interpolate.

    The body ends with the classifier's low-resolution logits; the tail takes
    them as its only input and keeps every original output. Without an
    Interpolate, or where the tail would need more than those logits (a
    foreign graph that sizes its upsampling from another tensor), return
    (model, None).
    """
    import openvino
    from openvino import opset13
    upsamplings = [n for n in model.get_ordered_ops() if n.get_type_name() == 'Interpolate']
    if not upsamplings:
        return model, None
    whole, model = model, model.clone()  # cut a copy: the whole model stays if this fails
    cut = next(n for n in model.get_ordered_ops()
               if n.get_friendly_name() == upsamplings[-1].get_friendly_name()).input(0)
    logits = cut.get_source_output()
    body = openvino.Model([opset13.result(logits)], model.get_parameters(), 'body')
    tail_input = opset13.parameter(logits.get_partial_shape(), logits.get_element_type(),
                                   name='low_resolution_logits')
    cut.replace_source_output(tail_input.output(0))
    try:
        return body, openvino.Model(model.get_results(), [tail_input], 'tail')
    except RuntimeError:  # the tail reads the model's input too
        return whole, None
