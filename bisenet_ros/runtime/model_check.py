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
An .onnx file is untrusted input: one judgement before any runtime opens it.

``examine(path, config, parent)`` reads the file once and refuses it with a
ModelFileError (one line naming the file and the reason) when it is not
ONNX, truncated or malformed, made from another checkpoint than ``parent``
(compared before anything else the file says is believed), declares
metadata that does not hold, uses operators no runtime here implements,
reads external data from outside its folder or beyond its files, has a graph
whose outputs disagree with its metadata (names, dtypes, ranks, batch,
spatial size), or needs more memory than ``config.memory_budget`` by the
shapes inferred with data propagation (model_memory): a 2 KB ConstantOfShape
asking for 16 GiB is refused before anything allocates. ``probe(engine,
examined)`` then runs one batch through the opened engine and checks what
comes out against the same declarations, the label range included.
"""

import dataclasses
import json
from pathlib import Path

from bisenet_ros.checkpoint.errors import CheckpointError
from bisenet_ros.runtime.export import METADATA_KEY, OUTPUT_KINDS, output_names
from bisenet_ros.runtime.model_memory import (element_count, graphs, itemsize, memory_refusal,
                                              size_text, stored_tensors, value_dims)
import numpy as np

MAX_METADATA_BYTES = 1 << 20
# What a Segmenter reads of every file (CheckpointInfo.from_metadata).
REQUIRED_METADATA = ('arch', 'num_classes', 'class_names', 'palette', 'mean', 'std',
                     'input_size')
# Operator domains some runtime here implements: ONNX itself and ONNX Runtime's own
# (its quantiser writes com.microsoft ops).
KNOWN_DOMAINS = ('', 'ai.onnx', 'com.microsoft')
# What each output holds: its ONNX element type and the dims after the batch.
_OUTPUT_TYPES = {'labels': ('uint8', 1), 'confidence': ('float32', 1), 'logits': ('float32', 2)}


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file and the reason."""


@dataclasses.dataclass(frozen=True)
class Examined:
    """What ``examine`` learnt of a file: its metadata and whether its batch is proven."""

    path: str  # as messages name it
    metadata: dict
    batch: int
    batch_proven: bool  # the graph's batch dimension is dynamic end to end


def _fail(path, reason):
    raise ModelFileError(f'{path}: {" ".join(str(reason).split())[:300]}')


def load_model(path, budget=None, external_data=False):
    """
    Return the ModelProto of ``path``; refuse what is not ONNX or would not fit ``budget``.

    Its external data is left out unless ``external_data`` asks for it.
    """
    import onnx
    from google.protobuf.message import DecodeError
    path = Path(path)
    if path.is_dir():
        _fail(path, 'is a folder, not an .onnx file')
    if path.exists() and not path.is_file():  # /dev/zero or a FIFO would be read forever
        _fail(path, 'is not a regular file')
    try:
        size = path.stat().st_size
    except OSError as exc:
        _fail(path, f'is not a readable ONNX model ({exc.strerror or exc})')
    if budget is not None and size > budget:
        _fail(path, f'is {size_text(size)}, more than the model memory limit '
              f'{size_text(budget)} (max_model_memory)')
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as exc:
        _fail(path, f'is not a readable ONNX model (truncated or another format: '
              f'{type(exc).__name__}: {exc})')
    except OSError as exc:
        _fail(path, f'is not a readable ONNX model ({exc.strerror or exc})')
    if not proto.graph.node or not proto.graph.output or not proto.opset_import:
        _fail(path, 'is not an ONNX model (no graph, outputs or opset: truncated or another '
              'format)')
    if external_data:  # read only from inside its folder, and only what the budget allows
        from onnx.external_data_helper import load_external_data_for_model
        bodies = list(graphs(proto.graph))
        _check_external_data(bodies, path, path)
        stored = sum(element_count(t.dims) * itemsize(t.data_type)
                     for body in bodies for t in stored_tensors(body))
        if budget is not None and stored > budget:
            _fail(path, f'stores {size_text(stored)} of tensors, more than the model memory '
                  f'limit {size_text(budget)} (max_model_memory)')
        load_external_data_for_model(proto, str(path.resolve().parent))
    return proto


def model_metadata(proto, path):
    """Return the checked bisenet_ros metadata of a ModelProto read from ``path``."""
    from bisenet_ros.checkpoint.validation import check_export_metadata
    meta = _raw_metadata(proto, path)
    try:
        check_export_metadata(meta, path)
    except CheckpointError as exc:
        raise ModelFileError(str(exc)) from None
    missing = [key for key in REQUIRED_METADATA if meta.get(key) is None]
    if missing:
        _fail(path, f'its bisenet_ros metadata lacks {", ".join(missing)}; export it with '
              'bisenet export')
    kind = meta.get('outputs', 'logits')
    if kind not in OUTPUT_KINDS:
        _fail(path, f'metadata outputs = {str(kind)[:40]!r} is not valid; expected one of '
              f'{", ".join(OUTPUT_KINDS)}')
    return meta


def _raw_metadata(proto, path):
    text = next((p.value for p in proto.metadata_props if p.key == METADATA_KEY), None)
    if text is None:
        _fail(path, 'ONNX file without bisenet_ros metadata; export it with bisenet export')
    if len(text) > MAX_METADATA_BYTES:
        _fail(path, f'its bisenet_ros metadata is {size_text(len(text))} (at most '
              f'{size_text(MAX_METADATA_BYTES)})')
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        _fail(path, f'its bisenet_ros metadata is not JSON ({type(exc).__name__})')
    if not isinstance(meta, dict):
        _fail(path, f'its bisenet_ros metadata is a {type(meta).__name__}, expected a JSON '
              'object')
    return meta


def examine(path, config, parent=None):
    """
    Return Examined for the .onnx file at ``path``, or raise ModelFileError.

    ``parent``: the checkpoint the file claims to be made from (an int8
    sibling); its digest is compared before the metadata is believed.
    """
    import onnx
    path = Path(path)
    budget = config.memory_budget
    proto = load_model(path, budget)
    if parent is not None:
        from bisenet_ros.runtime.export import file_sha256
        claimed = _raw_metadata(proto, path).get('int8_parent_sha256')
        if claimed != file_sha256(parent):
            _fail(path, f'was not made from {Path(parent).name} (its int8_parent_sha256 does '
                  'not match)')
    meta = model_metadata(proto, path)
    # An adapted copy is named with the file the user gave.
    named = f'{path} (adapted from {str(meta["foreign_model"])[:200]})' if meta.get(
        'foreign_model') else path
    bodies = list(graphs(proto.graph))
    _check_external_data(bodies, path, named)
    try:  # by path: external data is looked for beside the file
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, ValueError) as exc:
        _fail(named, f'malformed ONNX graph: {exc}')
    _check_operators(proto, bodies, named)
    batch = config.batch
    batch_proven = _check_interface(proto.graph, meta, batch, named)
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True,
                                                     data_prop=True)
    except (onnx.shape_inference.InferenceError, ValueError, RuntimeError) as exc:
        _fail(named, f'its graph contradicts itself: {exc}')
    refusal = memory_refusal(inferred, budget, batch)
    if refusal:
        _fail(named, refusal)
    _check_outputs(inferred.graph, meta, batch, named)
    return Examined(named, meta, batch, batch_proven)


def _check_operators(proto, graphs, path):
    local = {(f.domain, f.name) for f in proto.functions}
    for graph in graphs:
        for node in graph.node:
            if node.domain not in KNOWN_DOMAINS and (node.domain, node.op_type) not in local:
                _fail(path, f'uses the custom operator {node.op_type} (domain '
                      f'{node.domain}), which no runtime here implements')


def _check_external_data(graphs, path, named):
    from onnx import TensorProto
    folder = path.resolve().parent
    path = named
    for graph in graphs:
        for tensor in stored_tensors(graph):
            if tensor.data_location != TensorProto.EXTERNAL:
                continue
            entries = {entry.key: entry.value for entry in tensor.external_data}
            location = entries.get('location', '')
            target = (folder / location).resolve()
            if (not location or Path(location).is_absolute() or '..' in Path(location).parts
                    or not target.is_relative_to(folder)):
                _fail(path, f'tensor {tensor.name} reads external data {location!r} outside '
                      f'its folder {folder}')
            if not target.is_file():
                _fail(path, f'tensor {tensor.name} reads external data {location!r}, which '
                      'is missing')
            try:
                offset = int(entries.get('offset', 0))
            except ValueError:
                _fail(path, f'tensor {tensor.name}: external data offset '
                      f'{entries["offset"][:40]!r} is not a number')
            needed = element_count(tensor.dims) * itemsize(tensor.data_type)
            held = target.stat().st_size
            if offset < 0 or offset + needed > held:
                _fail(path, f'tensor {tensor.name} declares {size_text(needed)} at offset '
                      f'{offset} of {location!r}, which holds {size_text(held)}')


def _check_interface(graph, meta, batch, path):
    """Check the declared input and outputs; fix the input's batch; return if it is proven."""
    weights = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in weights]
    width, height = meta['input_size']
    if [v.name for v in inputs] != ['image'] or value_dims(inputs[0]) is None or len(
            value_dims(inputs[0])) != 4 or value_dims(inputs[0])[1:] != [3, height, width]:
        shown = [(v.name, value_dims(v)) for v in inputs][:4]
        _fail(path, f'its graph takes {shown}; expected one input image (N, 3, {height}, '
              f'{width}) as its metadata says')
    if inputs[0].type.tensor_type.elem_type != 1:
        _fail(path, 'its input image is not float32')
    kind = meta.get('outputs', 'logits')
    expected = output_names(kind)
    if [o.name for o in graph.output] != expected:
        _fail(path, f'its graph outputs {[o.name for o in graph.output][:4]} but its metadata '
              f'says {kind} ({", ".join(expected)})')
    proven = True
    for value in [inputs[0], *graph.output]:
        dims = value_dims(value)
        first = dims[0] if dims else None
        if first is not None and first != 1:
            _fail(path, f'{value.name} has a fixed batch of {first}; batches of 1 to {batch} '
                  'are fed (export it with a dynamic batch, as bisenet export does)')
        if first == 1 and batch > 1:
            _fail(path, f'{value.name} has a fixed batch of 1 but batches of up to {batch} are '
                  'fed: set batch (max_batch) to 1, or export with a dynamic batch')
        proven = proven and first is None
    inputs[0].type.tensor_type.shape.dim[0].dim_value = batch
    return proven


def _check_outputs(graph, meta, batch, path):
    import onnx
    width, height = meta['input_size']
    for value in graph.output:
        dtype, before_spatial = _OUTPUT_TYPES[value.name]
        elem = value.type.tensor_type.elem_type
        if np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)) != np.dtype(dtype):
            _fail(path, f'output {value.name} is {onnx.TensorProto.DataType.Name(elem)}, '
                  f'expected {dtype}')
        dims = value_dims(value)
        if dims is None:
            continue
        if len(dims) != before_spatial + 2:
            _fail(path, f'output {value.name} has rank {len(dims)}, expected '
                  f'{before_spatial + 2}')
        if dims[0] not in (None, batch):
            _fail(path, f'output {value.name} has batch {dims[0]} for a batch of {batch}')
        if None not in dims[-2:] and dims[-2:] != [height, width]:
            _fail(path, f'output {value.name} is {dims[-1]}x{dims[-2]}, not the input size '
                  f'{width}x{height}')
        classes = meta.get('num_classes')
        if value.name == 'logits' and dims[1] not in (None, classes) and classes:
            _fail(path, f'output logits scores {dims[1]} classes, its metadata {classes}')


def probe(engine, examined):
    """Run one batch of zeros through ``engine``; refuse outputs its file did not declare."""
    meta, path = examined.metadata, examined.path
    width, height = meta['input_size']
    count = 1 if examined.batch_proven else min(examined.batch, 2)
    outputs = engine.run(np.zeros((count, 3, height, width), np.float32))
    classes = meta.get('num_classes')
    for name in output_names(meta.get('outputs', 'logits')):
        value = outputs.get(name)
        if value is None:
            _fail(path, f'gave no output {name} on a probe run')
        value = value.cpu().numpy() if hasattr(value, 'cpu') else np.asarray(value)
        dtype, before_spatial = _OUTPUT_TYPES[name]
        expected = (count, *([classes] if before_spatial == 2 else []), height, width)
        if value.dtype != np.dtype(dtype) or value.shape != expected:
            _fail(path, f'output {name} is {value.dtype} {value.shape} on a probe run, '
                  f'expected {dtype} {expected}')
        if name == 'labels' and classes and value.size and int(value.max()) >= classes:
            _fail(path, f'output labels holds {int(value.max())} on a probe run, but the model '
                  f'has {classes} classes (0..{classes - 1})')
