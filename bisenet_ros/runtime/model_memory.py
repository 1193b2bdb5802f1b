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
What an ONNX graph needs in memory, judged from its inferred shapes before it runs.

``memory_refusal(inferred, budget, batch)`` adds the bytes of every stored
tensor (initialisers, Constant values, external data as declared) to the most
activation bytes alive at once when the nodes run in order, and says why a
graph over ``budget`` is refused, naming its largest tensor. An output of an
operator that sizes it from values (ConstantOfShape, Expand, Tile, Range,
Resize, Pad, ...) whose shape inference could not fold is refused too: it
could be any size at run time.
"""

import numpy as np

# Operators whose output size comes from values rather than from their inputs' sizes: an
# output of one of these whose shape cannot be inferred could be any size at run time.
VALUE_SIZED_OPS = ('ConstantOfShape', 'Expand', 'Tile', 'Range', 'Resize', 'Upsample', 'Pad',
                   'OneHot', 'Loop', 'Scan', 'If', 'CenterCropPad', 'Col2Im')


def size_text(count):
    """Return a byte count as a short figure ('16.0 GiB')."""
    for unit, shift in (('TiB', 40), ('GiB', 30), ('MiB', 20), ('KiB', 10)):
        if count >= 1 << shift:
            return f'{count / (1 << shift):.1f} {unit}'
    return f'{count} B'


def graphs(graph):
    """Yield ``graph`` and every subgraph (If, Loop, Scan bodies) inside it."""
    from onnx import AttributeProto
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                yield from graphs(attribute.g)
            elif attribute.type == AttributeProto.GRAPHS:
                for body in attribute.graphs:
                    yield from graphs(body)


def stored_tensors(graph):
    """Yield every TensorProto stored in ``graph`` (initializers and Constant values)."""
    from onnx import AttributeProto
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.TENSOR:
                yield attribute.t
            elif attribute.type == AttributeProto.TENSORS:
                yield from attribute.tensors
            elif attribute.type == AttributeProto.SPARSE_TENSOR:
                yield attribute.sparse_tensor.values


def element_count(dims):
    count = 1
    for dim in dims:
        count *= dim
    return count


def itemsize(elem_type):
    import onnx
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return 8  # strings and the unknown: no tensor of ours holds them


def value_dims(value):
    """Return the dims of a ValueInfoProto (None where one is not a known number), or None."""
    tensor = value.type.tensor_type
    if not tensor.HasField('shape'):
        return None
    return [d.dim_value if d.HasField('dim_value') and d.dim_value >= 0 else None
            for d in tensor.shape.dim]


def memory_refusal(inferred, budget, batch):
    """Return why a shape-inferred ModelProto cannot run within ``budget`` bytes, or None."""
    graph = inferred.graph
    values = {v.name: v for g in graphs(graph)
              for v in [*g.value_info, *g.input, *g.output]}
    sizes, largest = {}, (0, '')
    for name, value in values.items():
        dims = value_dims(value)
        if dims is not None and None not in dims:
            sizes[name] = element_count(dims) * itemsize(value.type.tensor_type.elem_type)
            largest = max(largest, (sizes[name], name))
    weights = sum(element_count(t.dims) * itemsize(t.data_type) for g in graphs(graph)
                  for t in stored_tensors(g))
    for sub in graphs(graph):
        for node in sub.node:
            unknown = [o for o in node.output if o and o not in sizes]
            if node.op_type in VALUE_SIZED_OPS and unknown:
                origin = _first_unknown(graph, sizes) or node
                cause = ('depends on values known only at run time' if origin is node else
                         f'follows from {origin.op_type} (domain {origin.domain or "ai.onnx"}), '
                         'whose output shape cannot be inferred')
                return (f'the size of {unknown[0]} ({node.op_type}) {cause}, so its memory '
                        'cannot be bounded')
    needed = weights + _activation_peak(graph, sizes)
    if needed > budget or largest[0] > budget:
        return (f'needs {size_text(needed)} at batch {batch} (its largest tensor, '
                f'{largest[1]!r}, {size_text(largest[0])}), more than the model memory limit '
                f'{size_text(budget)} (max_model_memory)')
    return None


def _first_unknown(graph, sizes):
    """Return the first node whose inputs have known sizes but an output has none."""
    known = set(sizes) | {t.name for t in graph.initializer} | {''}
    return next((node for node in graph.node
                 if set(node.input) <= known and not set(node.output) <= known), None)


def _activation_peak(graph, sizes):
    """Return the most bytes of activations alive at once, running the nodes in order."""
    last_use = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            last_use[name] = index
    for value in graph.output:
        last_use[value.name] = len(graph.node)
    live = sum(sizes.get(v.name, 0) for v in graph.input)
    peak = live
    for index, node in enumerate(graph.node):
        live += sum(sizes.get(name, 0) for name in node.output)
        peak = max(peak, live)
        for name in set(node.input) | set(node.output):
            if last_use.get(name, index) == index:
                live -= sizes.get(name, 0)
    return peak
