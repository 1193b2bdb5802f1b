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
The contract of a segmentation ONNX file this package did not write: what goes in, what comes out.

Read, field by field, from (in this order; the first that states a field
gives it, a later one that contradicts it is refused): an mmdeploy work folder
(``deploy.json``, ``pipeline.json``, ``detail.json``), a sidecar YAML beside
the file (``<stem>.yaml``, else ``model.yaml``; schema in docs/models.md), and
what the graph itself shows (names, ranks, dtypes, fixed sizes). A field none
of them gives is refused in one line naming the sidecar key that supplies it:
nothing is guessed.
"""

from dataclasses import dataclass, field
import json
from pathlib import Path

import yaml

LAYOUTS = ('NCHW', 'NHWC')
INPUT_DTYPES = ('float32', 'uint8')
COLORS = ('RGB', 'BGR')
RANGES = (1, 255)
OUTPUT_KINDS = ('labels', 'scores', 'probabilities')
SIDECAR_NAMES = ('{stem}.yaml', 'model.yaml')
MMDEPLOY_FILES = ('deploy.json', 'pipeline.json', 'detail.json')
# ONNX TensorProto element types this reads: float32, float16, uint8, int32, int64.
_DTYPES = {1: 'float32', 10: 'float16', 2: 'uint8', 6: 'int32', 7: 'int64'}


class ContractError(ValueError):
    """A model's contract is incomplete, contradictory or outside what this package runs."""


@dataclass(frozen=True)
class ModelContract:
    """
    A foreign model's declared contract, and where each field came from.

    ``input_size`` is (W, H); ``mean``/``std`` are on the ``input_range``
    scale (1: pixels in 0..1, 255: 0..255) in the ``color`` order the model
    reads. ``classes`` names a class table (shipped name or file) or is None.
    """

    path: Path
    input_name: str
    input_layout: str
    input_dtype: str
    color: str
    input_range: int
    mean: tuple
    std: tuple
    input_size: tuple
    output_name: str
    output_kind: str
    output_layout: str
    output_rank: int
    classes: str = None
    num_classes: int = None
    sources: dict = field(default_factory=dict)

    def describe(self):
        """Return one line per field: its value and where it came from (for ``bisenet info``)."""
        width = max(map(len, self.sources))
        return [f'{name:<{width}}  {getattr(self, name)!s:<28} ({origin})'
                for name, origin in self.sources.items()]


class _Fields:
    """Collect fields from the sources in order; the first wins, a contradiction is refused."""

    def __init__(self, path):
        self.path = path
        self.values, self.sources = {}, {}

    def give(self, name, value, source):
        if value is None:
            return
        if name in self.values and self.values[name] != value:
            raise ContractError(
                f'{self.path}: {name} is {self.values[name]!r} in {self.sources[name]} but '
                f'{value!r} in {source}; make them agree')
        if name not in self.values:
            self.values[name], self.sources[name] = value, source

    def need(self, name, key, hint=''):
        if name not in self.values:
            raise ContractError(f'{self.path}: the model does not say its {name.replace("_", " ")}'
                                f'; give {key} in a sidecar {_sidecar_hint(self.path)}{hint}')
        return self.values[name]


def _sidecar_hint(path):
    return f'{path.with_suffix(".yaml").name} beside it (see docs/models.md)'


def model_file(path):
    """Return the .onnx file of ``path``: the file itself, or an mmdeploy work folder's net."""
    path = Path(path)
    if not path.is_dir():
        return path
    deploy = path / 'deploy.json'
    if deploy.is_file():
        models = _json(deploy).get('models') or [{}]
        net = models[0].get('net') if isinstance(models[0], dict) else None
        if isinstance(net, str) and net.endswith('.onnx'):
            return path / Path(net).name
    if (path / 'end2end.onnx').is_file():
        return path / 'end2end.onnx'
    raise ContractError(f'{path}: a folder given as a model must be an mmdeploy work folder '
                        '(deploy.json naming an .onnx net, or end2end.onnx)')


def _json(path):
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f'{path}: not readable JSON ({exc})') from None
    if not isinstance(data, dict):
        raise ContractError(f'{path}: expected a JSON object')
    return data


def read_contract(path, proto, classes=None):
    """
    Return the ModelContract of the foreign .onnx at ``path`` whose graph is ``proto``.

    ``classes`` (a table name or file, the class_table option) wins over the
    class table the files name: an explicit choice always does. Raises
    ContractError.
    """
    path = Path(path)
    fields = _Fields(path)
    _from_mmdeploy(path.parent, fields)
    _from_sidecar(path, fields)
    if classes:
        fields.values['classes'], fields.sources['classes'] = classes, 'the class_table option'
    graph = _from_graph(proto, fields)
    return _complete(path, fields, graph)


def _from_mmdeploy(folder, fields):
    if not all((folder / name).is_file() for name in ('deploy.json', 'pipeline.json')):
        return
    source = f'mmdeploy {folder.name}/pipeline.json'
    for task in _json(folder / 'pipeline.json').get('pipeline', {}).get('tasks', []):
        if not isinstance(task, dict):
            continue
        if task.get('module') == 'Net':
            fields.give('input_name', (task.get('input_map') or {}).get('img'), source)
        for transform in task.get('transforms') or []:
            if transform.get('type') == 'Normalize':
                fields.give('mean', _three(transform.get('mean'), 'mean', source), source)
                fields.give('std', _three(transform.get('std'), 'std', source), source)
                # mmcv loads BGR; to_rgb flips before normalising, so the net reads RGB.
                fields.give('color', 'RGB' if transform.get('to_rgb') else 'BGR', source)
                # mmseg normalises raw pixel values.
                fields.give('input_range', 255, source)
            if transform.get('type') == 'Resize' and transform.get('size'):
                size = transform['size']
                if isinstance(size, list) and len(size) == 2 and all(
                        isinstance(v, int) and v > 0 for v in size):
                    # mmseg versions wrote (W, H) and (H, W): a camera's long side is its width.
                    fields.give('resize_size', (max(size), min(size)),
                                f'{source} Resize size (long x short side)')
        if task.get('name') == 'postprocess':
            argmax = (task.get('params') or {}).get('with_argmax')
            if argmax is not None:
                fields.give('output_kind', 'labels' if argmax else 'scores', source)
    detail = folder / 'detail.json'
    if detail.is_file():
        data = _json(detail)
        source = f'mmdeploy {folder.name}/detail.json'
        argmax = (data.get('codebase_config') or {}).get('with_argmax')
        if argmax is not None:
            fields.give('output_kind', 'labels' if argmax else 'scores', source)
        names = (data.get('onnx_config') or {}).get('output_names') or []
        if len(names) == 1:
            fields.give('output_name', names[0], source)


def _three(values, name, source):
    if not (isinstance(values, (list, tuple)) and len(values) == 3 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        raise ContractError(f'{source}: {name} must be 3 numbers, got {values!r}')
    return tuple(float(v) for v in values)


_SIDECAR_KEYS = {
    'input': {'name': 'input_name', 'layout': 'input_layout', 'dtype': 'input_dtype',
              'color': 'color', 'range': 'input_range', 'mean': 'mean', 'std': 'std',
              'size': 'input_size'},
    'output': {'name': 'output_name', 'kind': 'output_kind', 'layout': 'output_layout'},
}


def _from_sidecar(path, fields):
    candidates = [path.parent / name.format(stem=path.stem) for name in SIDECAR_NAMES]
    sidecar = next((p for p in candidates if p.is_file()), None)
    if sidecar is None:
        return
    try:
        data = yaml.safe_load(sidecar.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ContractError(f'{sidecar}: not readable YAML ({" ".join(str(exc).split())})') \
            from None
    if not isinstance(data, dict):
        raise ContractError(f'{sidecar}: expected a mapping with input, output and classes')
    unknown = set(data) - {'input', 'output', 'classes'}
    if unknown:
        raise ContractError(f'{sidecar}: unknown keys {sorted(unknown)}; valid: input, output, '
                            'classes')
    for section, keys in _SIDECAR_KEYS.items():
        given = data.get(section) or {}
        if not isinstance(given, dict) or set(given) - set(keys):
            raise ContractError(f'{sidecar}: {section} takes {", ".join(keys)}; got {given!r}')
        for key, name in keys.items():
            if key in given:
                fields.give(name, _sidecar_value(sidecar, f'{section}.{key}', given[key]),
                            f'sidecar {sidecar.name}')
    if data.get('classes') is not None:
        classes = str(data['classes'])
        local = sidecar.parent / classes
        fields.give('classes', str(local) if local.is_file() else classes,
                    f'sidecar {sidecar.name}')


def _sidecar_value(sidecar, key, value):
    """Return a sidecar value checked against what ``key`` accepts."""
    choices = {'input.layout': LAYOUTS, 'input.dtype': INPUT_DTYPES, 'input.color': COLORS,
               'input.range': RANGES, 'output.kind': OUTPUT_KINDS, 'output.layout': LAYOUTS}
    if key in choices:
        if value not in choices[key]:
            raise ContractError(f'{sidecar}: {key} {value!r} is not one of: '
                                f'{", ".join(map(str, choices[key]))}')
        return value
    if key in ('input.mean', 'input.std'):
        return _three(value, key, str(sidecar))
    if key == 'input.size':
        from bisenet_ros.runtime.config import parse_size
        try:
            return parse_size(value)
        except ValueError as exc:
            raise ContractError(f'{sidecar}: {key}: {exc}') from None
    if not isinstance(value, str) or not value:
        raise ContractError(f'{sidecar}: {key} must be a name, got {value!r}')
    return value


@dataclass
class _Tensor:
    name: str
    dtype: str
    dims: list  # ints, or None where the dimension is dynamic


def _tensors(values):
    found = []
    for value in values:
        kind = value.type.tensor_type
        dims = [d.dim_value if d.HasField('dim_value') else None for d in kind.shape.dim]
        found.append(_Tensor(value.name, _DTYPES.get(kind.elem_type, str(kind.elem_type)), dims))
    return found


def _pick(path, tensors, name, key, what):
    if name is not None:
        match = [t for t in tensors if t.name == name]
        if not match:
            raise ContractError(f'{path}: no {what} named {name!r}; the graph has '
                                f'{[t.name for t in tensors]}')
        return match[0]
    if len(tensors) != 1:
        raise ContractError(f'{path}: the graph has {len(tensors)} {what}s '
                            f'{[t.name for t in tensors]}; name the one to use with {key} in '
                            f'a sidecar {_sidecar_hint(path)}')
    return tensors[0]


def _from_graph(proto, fields):
    """Give what the graph shows; return (input tensor, output tensor)."""
    path = fields.path
    initializers = {t.name for t in proto.graph.initializer}
    inputs = _tensors(v for v in proto.graph.input if v.name not in initializers)
    image = _pick(path, inputs, fields.values.get('input_name'), 'input.name', 'input')
    output = _pick(path, _tensors(proto.graph.output), fields.values.get('output_name'),
                   'output.name', 'output')
    fields.give('input_name', image.name, 'graph')
    fields.give('output_name', output.name, 'graph')
    if image.dtype not in INPUT_DTYPES or len(image.dims) != 4:
        raise ContractError(f'{path}: input {image.name} is {image.dtype} of rank '
                            f'{len(image.dims)}; this package feeds float32 or uint8 images '
                            'of rank 4 (NCHW or NHWC)')
    fields.give('input_dtype', image.dtype, 'graph')
    layout = 'NCHW' if image.dims[1] == 3 else 'NHWC' if image.dims[3] == 3 else None
    fields.give('input_layout', layout, 'graph')
    if layout is not None:
        height, width = image.dims[2:4] if layout == 'NCHW' else image.dims[1:3]
        if height and width:
            fields.give('input_size', (width, height), 'graph')
    if output.dtype in ('int32', 'int64', 'uint8'):
        fields.give('output_kind', 'labels', 'graph (integer output)')
    return image, output


def _complete(path, fields, graph):
    image, output = graph
    values = fields.values
    layout = fields.need('input_layout', 'input.layout (NCHW or NHWC)')
    if image.dims[1 if layout == 'NCHW' else 3] not in (3, None):
        raise ContractError(f'{path}: input {image.name} {image.dims} has no 3 colour channels '
                            f'where {layout} puts them')
    if 'input_size' not in values and 'resize_size' in values:
        fields.give('input_size', values['resize_size'], fields.sources['resize_size'])
    size = fields.need('input_size', 'input.size (WxH)', ': the graph takes any size')
    kind = fields.need('output_kind', 'output.kind (labels, scores or probabilities)')
    if values['input_dtype'] == 'uint8':
        # Raw pixels in: the graph does its own normalisation.
        fields.give('input_range', 255, 'graph (uint8 input)')
        fields.give('mean', (0.0, 0.0, 0.0), 'graph (uint8 input)')
        fields.give('std', (1.0, 1.0, 1.0), 'graph (uint8 input)')
    hint = (' (mean [0, 0, 0] and std [1, 1, 1] when the graph normalises)')
    rank = len(output.dims)
    if kind == 'labels':
        if output.dtype not in ('int32', 'int64', 'uint8') or rank not in (3, 4):
            raise ContractError(f'{path}: output {output.name} is {output.dtype} of rank {rank}'
                                '; labels are an integer (N, H, W) or (N, 1, H, W) tensor')
        fields.give('output_layout', 'NHWC' if rank == 4 and output.dims[3] == 1
                    and output.dims[1] != 1 else 'NCHW', 'graph')
    else:
        if output.dtype not in ('float32', 'float16') or rank != 4:
            raise ContractError(f'{path}: output {output.name} is {output.dtype} of rank {rank}'
                                f'; {kind} are a float (N, C, H, W) or (N, H, W, C) tensor')
        width, height = size
        if output.dims[2:4] == [height, width] or (output.dims[1] and output.dims[3] is None):
            fields.give('output_layout', 'NCHW', 'graph')
        elif output.dims[1:3] == [height, width]:
            fields.give('output_layout', 'NHWC', 'graph')
    out_layout = fields.need('output_layout', 'output.layout (NCHW or NHWC)')
    channels = output.dims[1 if out_layout == 'NCHW' else 3] if kind != 'labels' else None
    return ModelContract(
        path=path, input_name=values['input_name'], input_layout=layout,
        input_dtype=values['input_dtype'],
        color=fields.need('color', 'input.color (RGB or BGR)'),
        input_range=fields.need('input_range', 'input.range (1 or 255)'),
        mean=fields.need('mean', 'input.mean', hint), std=fields.need('std', 'input.std', hint),
        input_size=tuple(size), output_name=values['output_name'], output_kind=kind,
        output_layout=out_layout, output_rank=rank,
        classes=fields.need('classes', 'classes (a table name such as cityscapes, or a file)'),
        num_classes=channels,
        sources={name: fields.sources[name] for name in (
            'input_name', 'input_layout', 'input_dtype', 'color', 'input_range', 'mean', 'std',
            'input_size', 'output_name', 'output_kind', 'output_layout', 'classes')})
