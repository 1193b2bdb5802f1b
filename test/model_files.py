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
Tiny hostile .onnx files for test_model_files, built with onnx.helper.

``write_model(path, lie)`` writes a 1x1-convolution segmenter (image -> 19
scores -> argmax -> uint8 labels) carrying this package's metadata, changed by
one named lie: a graph that disagrees with its metadata (LIES), a graph bomb
that would allocate terabytes (BOMBS) or an operator no runtime implements.
"""

import json

from bisenet_ros.runtime.export import METADATA_KEY
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

CLASSES = 19
HUGE = 1 << 20  # a side of 2**20: 2**40 elements, 4 TiB of float32

META = {'arch': 'bisenetv2', 'variant': 'coincheung', 'format_version': 1,
        'num_classes': CLASSES, 'class_names': [f'class_{i}' for i in range(CLASSES)],
        'palette': [[i, 2 * i, 3 * i] for i in range(CLASSES)], 'mean': [0.5, 0.5, 0.5],
        'std': [0.25, 0.25, 0.25], 'input_size': [64, 64], 'outputs': 'labels',
        'precision': 'fp32'}


def _ints(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _floats(name, values):
    return numpy_helper.from_array(np.array(values, np.float32), name)


def _bomb(kind):
    """Return (nodes, initialisers) making the float tensor 'big' of 2**40 elements."""
    node = helper.make_node
    side = [HUGE, HUGE]
    return {
        'ConstantOfShape': ([node('ConstantOfShape', ['side'], ['big'])], [_ints('side', side)]),
        'Expand': ([node('Expand', ['one', 'side'], ['big'])],
                   [_floats('one', [0.0]), _ints('side', side)]),
        'Tile': ([node('Tile', ['one', 'side'], ['big'])],
                 [_floats('one', [[0.0]]), _ints('side', side)]),
        'Range': ([node('Range', ['zero', 'end', 'step'], ['big'])],
                  [_floats('zero', 0.0), _floats('end', float(1 << 40)), _floats('step', 1.0)]),
        'Resize': ([node('Resize', ['image', '', 'scales'], ['big'], mode='nearest')],
                   [_floats('scales', [1, 1, 1 << 14, 1 << 14])]),
        'Pad': ([node('Pad', ['one', 'pads'], ['big'])],
                [_floats('one', [0.0]), _ints('pads', [0, 1 << 40])]),
        'Reshape': ([node('Expand', ['one', 'side'], ['wide']),
                     node('Reshape', ['wide', 'flat'], ['big'])],
                    [_floats('one', [0.0]), _ints('side', side), _ints('flat', [-1])]),
        'sparse Constant': ([node('Constant', [], ['big'], sparse_value=helper.make_sparse_tensor(
            _floats('v', [1.0]), _ints('i', [0]), side))], []),
        # The shape of 'big' is a value computed from the image: unknown until a frame runs.
        'run-time shape': ([node('ReduceMax', ['image'], ['peak'], keepdims=0),
                            node('Cast', ['peak'], ['count'], to=TensorProto.INT64),
                            node('Unsqueeze', ['count', 'axis'], ['shape']),
                            node('ConstantOfShape', ['shape'], ['big'])], [_ints('axis', [0])]),
    }[kind]


BOMBS = ('ConstantOfShape', 'Expand', 'Tile', 'Range', 'Resize', 'Pad', 'Reshape',
         'sparse Constant', 'run-time shape')
# A lie the file's static graph shows; what examine says about it.
LIES = {
    'float labels': 'output labels is FLOAT',
    'labels of batch 1': 'fixed batch of 1',
    'a 10x10 output': 'is 10x10, not the input size 64x64',
    'another output name': "outputs ['classes']",
    'labels of rank 4': 'has rank 4',
    'another input size': 'expected one input image',
    'a custom operator': 'custom operator Mystery (domain com.example)',
    'an unknown ONNX operator': 'No Op registered for Mystery',
    'metadata without arch': 'lacks arch',
    'a 300-character class name': 'class_names',
    'a 2 MB class name': 'its bisenet_ros metadata is 2.0 MiB',
    'a 500 KB class name': 'class_names',
    'an invalid int8_evidence': 'int8_evidence',
}


def write_model(path, lie=None, size=(64, 64), meta=None):
    """Write the tiny segmenter, changed by ``lie`` (a LIES or BOMBS key), to ``path``."""
    width, height = size
    node, value = helper.make_node, helper.make_tensor_value_info
    meta = dict(META if meta is None else meta, input_size=[width, height])
    image_dims = ['batch', 3, height, width]
    labels_dims = ['batch', height, width]
    inits = [_floats('weight', np.linspace(-1, 1, CLASSES * 3).reshape(CLASSES, 3, 1, 1)),
             _ints('axis1', [1])]
    nodes = [node('Conv', ['image', 'weight'], ['scores'])]
    domain, labels_type, name = '', TensorProto.UINT8, 'labels'
    if lie in BOMBS:
        bomb, more = _bomb(lie)
        nodes += bomb + [node('ReduceMax', ['big'], ['worst'], keepdims=0),
                         node('Add', ['scores', 'worst'], ['lifted'])]
        inits += more
        scores = 'lifted'
    else:
        scores = 'scores'
    nodes.append(node('ArgMax', [scores], ['index'], axis=1, keepdims=0))
    index, after = 'index', []
    if lie == 'labels of 200':
        nodes.append(node('Add', ['index', 'two_hundred'], ['lifted_index']))
        inits.append(_ints('two_hundred', 200))
        index = 'lifted_index'
    cast = node('Cast', [index], ['labels'], to=TensorProto.UINT8)
    if lie == 'float labels':
        labels_type = cast.attribute[0].i = TensorProto.FLOAT
    elif lie == 'labels of batch 1':
        labels_dims[0] = 1
    elif lie == 'a 10x10 output':
        cast.output[0] = 'full'
        after.append(node('Slice', ['full', 'start', 'end', 'axes'], ['labels']))
        inits += [_ints('start', [0, 0]), _ints('end', [10, 10]), _ints('axes', [1, 2])]
        labels_dims = ['batch', 10, 10]
    elif lie == 'another output name':
        name = 'classes'
        after.append(node('Identity', ['labels'], ['classes']))
    elif lie == 'labels of rank 4':
        cast.output[0] = 'full'
        after.append(node('Unsqueeze', ['full', 'axis1'], ['labels']))
        labels_dims = ['batch', 1, height, width]
    elif lie == 'another input size':
        image_dims = ['batch', 3, 32, 32]
        labels_dims = ['batch', 32, 32]
    elif lie in ('a custom operator', 'an unknown ONNX operator', 'an unknown com.microsoft op'):
        domain = {'a custom operator': 'com.example', 'an unknown ONNX operator': '',
                  'an unknown com.microsoft op': 'com.microsoft'}[lie]
        nodes.insert(1, node('Mystery', ['scores'], ['mystery'], domain=domain))
        nodes[2].input[0] = 'mystery'
    elif lie == 'metadata without arch':
        del meta['arch']
    elif lie in ('a 300-character class name', 'a 500 KB class name', 'a 2 MB class name'):
        length = {'a 300-character class name': 300, 'a 500 KB class name': 500 << 10}
        meta['class_names'] = ['x' * length.get(lie, 2 << 20)] + meta['class_names'][1:]
    elif lie == 'an invalid int8_evidence':
        meta['int8_evidence'] = 'trust me'
    graph = helper.make_graph(nodes + [cast] + after, 'tiny',
                              [value('image', TensorProto.FLOAT, image_dims)],
                              [value(name, labels_type, labels_dims)], inits)
    opsets = [helper.make_opsetid('', 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.save(model, str(path))
    return path


def with_external_tensor(path, location, dims=(CLASSES, 3, 1, 1), data_bytes=None):
    """
    Add to the model at ``path`` a float tensor 'stored' whose data lives in ``location``.

    ``data_bytes``: how many bytes to write at ``location`` (beside ``path``;
    None writes none). The tensor is declared with ``dims`` whatever the file holds.
    """
    model = onnx.load(str(path))
    tensor = model.graph.initializer.add()
    tensor.name, tensor.data_type = 'stored', TensorProto.FLOAT
    tensor.dims.extend(dims)
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = 'location', str(location)
    onnx.save(model, str(path))
    if data_bytes is not None:
        with open(path.parent / location, 'wb') as stream:
            stream.truncate(data_bytes)  # sparse: no disk used
    return path


def as_foreign(path):
    """Make the model at ``path`` foreign: no metadata of ours, a sidecar saying the rest."""
    model = onnx.load(str(path), load_external_data=False)
    del model.metadata_props[:]
    renamed = {'image': 'input', 'labels': 'output'}  # names unlike ours, as others export
    for value in [*model.graph.input, *model.graph.output]:
        value.name = renamed.get(value.name, value.name)
    for node in model.graph.node:
        for names in (node.input, node.output):
            for index, name in enumerate(names):
                names[index] = renamed.get(name, name)
    onnx.save(model, str(path))
    path.with_suffix('.yaml').write_text(
        'input: {color: RGB, range: 1, mean: [0, 0, 0], std: [1, 1, 1]}\n'
        'output: {kind: labels}\nclasses: cityscapes\n')
    return path
