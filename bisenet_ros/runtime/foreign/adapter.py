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
Wrap a foreign graph in this package's own contract, so every backend runs it unchanged.

In front of the model: ``image``, (N, 3, H, W) float RGB in 0..1 (what the
Segmenter feeds with mean 0 and std 1), turned into what the contract says
the model reads (colour order, range, mean/std, layout, uint8). Behind it:
``labels`` (N, H, W) uint8, or ``logits`` (N, C, H, W) float32 (scores as
they are, probabilities as their logarithm, whose softmax gives them back),
brought to the input's size when the model answers at a lower resolution.
"""

import dataclasses

import numpy as np
from onnx import helper, TensorProto

# Resize with output sizes, Clip with bounds as inputs and Round start at opset 11; from
# opset 13 Squeeze and Unsqueeze take their axes as an input rather than an attribute.
MIN_OPSET = 11
# The names of the wrapped graph's input and outputs (the package's own contract).
RESERVED = ('image', 'labels', 'logits')


def _opset(proto):
    return next((o.version for o in proto.opset_import if o.domain in ('', 'ai.onnx')), 0)


class _Nodes:
    """Append nodes and constants to a graph under names that cannot collide with its own."""

    def __init__(self, graph):
        self.graph = graph
        self.count = 0
        self.nodes = []

    def name(self, hint):
        self.count += 1
        return f'bisenet_ros/{hint}_{self.count}'

    def const(self, hint, array):
        name = self.name(hint)
        self.graph.initializer.append(helper.make_tensor(
            name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape,
            array.ravel().tolist()))
        return name

    def op(self, op_type, inputs, output=None, **attributes):
        output = output or self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attributes))
        return output


def adapt(proto, contract):
    """Rewrite ``proto`` (a foreign ModelProto, changed in place) to this package's contract."""
    opset = _opset(proto)
    if opset < MIN_OPSET:
        raise ValueError(f'{contract.path}: opset {opset} is older than {MIN_OPSET}; export '
                         f'the model again with opset {MIN_OPSET} or newer')
    graph = proto.graph
    contract = _renamed_reserved(graph, contract)
    width, height = contract.input_size
    front, back = _Nodes(graph), _Nodes(graph)
    _preprocess(front, contract, opset)
    old_input = next(v for v in graph.input if v.name == contract.input_name)
    graph.input.remove(old_input)
    graph.input.insert(0, helper.make_tensor_value_info(
        'image', TensorProto.FLOAT, ['batch', 3, height, width]))
    name = _postprocess(back, contract, opset)
    for output in list(graph.output):
        graph.output.remove(output)
    if contract.output_kind == 'labels':
        graph.output.append(helper.make_tensor_value_info(
            name, TensorProto.UINT8, ['batch', height, width]))
    else:
        graph.output.append(helper.make_tensor_value_info(
            name, TensorProto.FLOAT, ['batch', contract.num_classes or 'classes', height,
                                      width]))
    nodes = front.nodes + list(graph.node) + back.nodes
    del graph.node[:]
    graph.node.extend(nodes)
    # Shapes inside the graph were inferred for the old input; the runtimes infer again.
    del graph.value_info[:]
    return proto


def _renamed_reserved(graph, contract):
    """
    Rename the graph's tensors that carry a name of our contract; return the contract to use.

    A foreign graph may call its own input ``image`` or an inner tensor
    ``logits``: the wrapped graph would then hold two tensors of one name.
    """
    renamed = {name: f'foreign/{name}' for name in RESERVED}
    used = {t for node in graph.node for t in (*node.input, *node.output)}
    used |= {v.name for v in (*graph.input, *graph.output, *graph.initializer)}
    if not used & set(RESERVED):
        return contract
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    for value in (*graph.input, *graph.output, *graph.initializer, *graph.value_info):
        value.name = renamed.get(value.name, value.name)
    return dataclasses.replace(
        contract, input_name=renamed.get(contract.input_name, contract.input_name),
        output_name=renamed.get(contract.output_name, contract.output_name))


def _preprocess(nodes, contract, opset):
    x = 'image'
    if contract.color == 'BGR':
        x = nodes.op('Gather', [x, nodes.const('bgr', np.array([2, 1, 0], np.int64))], axis=1)
    mean = np.array(contract.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.array(contract.std, np.float32).reshape(1, 3, 1, 1)
    # (x * range - mean) / std as one multiply and one add.
    scale, shift = contract.input_range / std, -mean / std
    if contract.input_dtype == 'uint8':
        x = nodes.op('Mul', [x, nodes.const('range', np.array(255.0, np.float32))])
        x = nodes.op('Clip', [nodes.op('Round', [x]), nodes.const('lo', np.array(0.0, np.float32)),
                              nodes.const('hi', np.array(255.0, np.float32))])
        x = nodes.op('Cast', [x], to=TensorProto.UINT8)
    else:
        x = nodes.op('Mul', [x, nodes.const('scale', scale.astype(np.float32))])
        x = nodes.op('Add', [x, nodes.const('shift', shift.astype(np.float32))])
    if contract.input_layout == 'NHWC':
        x = nodes.op('Transpose', [x], perm=[0, 2, 3, 1])
    # The last step writes the name the model's first nodes read.
    nodes.nodes[-1].output[0] = contract.input_name


def _axis_op(nodes, op_type, x, axis, opset):
    """Squeeze or Unsqueeze ``axis`` of ``x`` in the form the model's opset takes."""
    if opset >= 13:
        return nodes.op(op_type, [x, nodes.const('axis', np.array([axis], np.int64))])
    return nodes.op(op_type, [x], axes=[axis])


def _to_input_size(nodes, x, contract, mode, output=None):
    """Resize (N, C, h, w) ``x`` to the network input's H x W (a no-op when it is already)."""
    width, height = contract.input_size
    batch_channels = nodes.op('Slice', [nodes.op('Shape', [x]),
                                        nodes.const('start', np.array([0], np.int64)),
                                        nodes.const('stop', np.array([2], np.int64))])
    sizes = nodes.op('Concat', [batch_channels,
                                nodes.const('hw', np.array([height, width], np.int64))], axis=0)
    transform = 'half_pixel' if mode == 'linear' else 'asymmetric'
    extra = {'nearest_mode': 'floor'} if mode == 'nearest' else {}
    empty = nodes.const('none', np.zeros(0, np.float32))  # roi and scales: sizes decide
    return nodes.op('Resize', [x, empty, empty, sizes], output, mode=mode,
                    coordinate_transformation_mode=transform, **extra)


def _postprocess(nodes, contract, opset):
    x = contract.output_name
    if contract.output_kind == 'labels':
        if contract.output_rank == 3:  # (N, H, W): give it the channel Resize expects
            x = _axis_op(nodes, 'Unsqueeze', x, 1, opset)
        elif contract.output_layout == 'NHWC':
            x = nodes.op('Transpose', [x], perm=[0, 3, 1, 2])
        # Runtimes resize float tensors only; ids up to 255 survive the round trip exactly.
        x = nodes.op('Cast', [x], to=TensorProto.FLOAT)
        x = _axis_op(nodes, 'Squeeze', _to_input_size(nodes, x, contract, 'nearest'), 1, opset)
        return nodes.op('Cast', [x], 'labels', to=TensorProto.UINT8)
    if contract.output_layout == 'NHWC':
        x = nodes.op('Transpose', [x], perm=[0, 3, 1, 2])
    x = nodes.op('Cast', [x], to=TensorProto.FLOAT)
    if contract.output_kind == 'probabilities':
        floor = nodes.const('floor', np.array(1e-30, np.float32))
        x = nodes.op('Log', [nodes.op('Max', [x, floor])])
    # The graph's output is named by the node that makes it: runtimes drop an Identity.
    return _to_input_size(nodes, x, contract, 'linear', 'logits')
