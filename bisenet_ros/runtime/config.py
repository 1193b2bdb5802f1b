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
RuntimeConfig: every runtime option, its default, its choices and its check, in one place.

The node (``from_parameters``), every ``bisenet`` subcommand (``add_arguments``
and ``from_args``) and the Python API (``build_segmenter``) read it, so the same
defaults pick the same path wherever a user starts. Light on purpose: no
torch, so launch files and ``--help`` stay fast.
"""

import argparse
import dataclasses
from pathlib import Path

from bisenet_ros.runtime.options import (AUTO, BACKENDS, DEVICES, LABEL_RESIZE, PRECISIONS,
                                         RESIZE_POLICIES, STRIDE)

# Input sides beyond this are refused: no camera needs them and they only allocate.
MAX_INPUT_SIDE = 8192
MAX_BATCH = 64
MAX_THREADS = 256


def _option(default, help_text, *, choices=None, flag=True, metavar=None):
    """Describe one field: ``flag`` False keeps it out of the command line."""
    return dataclasses.field(default=default, metadata={
        'help': help_text, 'choices': choices, 'flag': flag, 'metavar': metavar})


def parse_size(text):
    """Return (W, H) of 'WxH' (also 'W,H'); raise ValueError naming the accepted form."""
    parts = str(text).lower().replace(',', 'x').split('x')
    try:
        width, height = (int(part) for part in parts)
    except ValueError:
        raise ValueError(f'input size {text!r} is not WxH (e.g. 1024x512)') from None
    return width, height


def size_argument(text):
    """Return the network size ``text`` names, checked, for argparse (an error is a usage one)."""
    try:
        return check_input_size(parse_size(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_input_size(size):
    """Return ``size`` as (W, H) ints; raise ValueError unless both are multiples of STRIDE."""
    width, height = (int(side) for side in size)
    for name, side in (('width', width), ('height', height)):
        if side <= 0 or side % STRIDE or side > MAX_INPUT_SIDE:
            raise ValueError(f'input {name} {side} must be a positive multiple of {STRIDE} '
                             f'up to {MAX_INPUT_SIDE}')
    return width, height


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """
    How a model runs: the one source of each runtime option's default and check.

    ``model`` None is the shipped demonstration model. ``precision`` None is
    the model file's own (fp32 for a checkpoint). ``threads`` 0 leaves each
    runtime's own default. ``cache_dir`` None is ``~/.cache/bisenet_ros``.
    """

    model: Path = _option(None, 'checkpoint (.pth, .safetensors), .onnx, mmdeploy work folder '
                                'or a published name such as coincheung/bisenetv2-cityscapes '
                                '(default: the shipped demonstration model)', metavar='PATH')
    backend: str = _option(AUTO, 'inference backend; auto: the fastest that keeps the '
                                 'accuracy bar on this machine', choices=(AUTO, *BACKENDS))
    device: str = _option(AUTO, 'auto: a CUDA GPU if there is one', choices=(AUTO, *DEVICES))
    precision: str = _option(AUTO, 'network precision; auto: the fastest that keeps the '
                                   'accuracy bar', choices=(AUTO, *PRECISIONS))
    input_size: tuple = _option(None, 'network input WxH, multiples of 32 (default: the '
                                      "model's own)", metavar='WxH')
    resize: str = _option('stretch', 'how images reach the input size (native: pad to a '
                                     'multiple of 32, torch only)', choices=RESIZE_POLICIES)
    label_resize: str = _option('nearest', 'labels back at image size: nearest (label ids) '
                                           'or logits (upsample scores, then argmax)',
                                choices=LABEL_RESIZE)
    # The tools ask for it through what they write (--outputs ... confidence), the node
    # through publish_confidence: a flag of its own would be a second way to say it.
    confidence: bool = _option(False, 'compute the max class probability', flag=False)
    threads: int = _option(0, 'CPU threads for torch, ONNX Runtime and OpenCV; 0: each '
                              "runtime's own choice")
    batch: int = _option(4, 'most images per forward pass')
    int8_min_agreement: float = _option(
        0.995, 'refuse an int8 model that labelled fewer of its held-out calibration pixels '
               'as fp32 did')
    cache_dir: Path = _option(None, 'ONNX export cache (default: ~/.cache/bisenet_ros)',
                              metavar='DIR')
    class_table: str = _option(None, 'class names and colours: a shipped table (cityscapes, '
                                     'ade20k, camvid, pascal_voc, coco_stuff) or a YAML/CSV file '
                                     "(default: the model's own)", metavar='NAME|FILE')
    max_model_memory: int = _option(0, 'most MiB a model graph may need (weights plus live '
                                       'tensors, inferred before it runs); 0: half of this '
                                       "machine's memory", metavar='MIB')

    def __post_init__(self):
        """Check every value and normalise its type; raise ValueError naming the field."""
        def keep(name, value):
            object.__setattr__(self, name, value)
        if self.model not in (None, ''):
            keep('model', Path(self.model))
        else:
            keep('model', None)
        if self.precision == '':  # the node's spelling of "the model file's own"
            keep('precision', None)
        keep('class_table', str(self.class_table) if self.class_table else None)
        for field in dataclasses.fields(self):
            choices = field.metadata['choices']
            value = getattr(self, field.name)
            if choices and value not in choices and not (field.name == 'precision'
                                                         and value is None):
                raise ValueError(f'{field.name} {value!r} is not one of: {", ".join(choices)}')
        if self.input_size is not None:
            size = self.input_size
            keep('input_size', check_input_size(parse_size(size) if isinstance(size, str)
                                                else size))
        keep('threads', _int_within('threads', self.threads or 0, 0, MAX_THREADS))
        keep('batch', _int_within('batch', self.batch, 1, MAX_BATCH))
        keep('max_model_memory', _int_within('max_model_memory', self.max_model_memory or 0, 0,
                                             1 << 40))
        agreement = float(self.int8_min_agreement)
        if not 0.0 <= agreement <= 1.0:
            raise ValueError(f'int8_min_agreement must be within 0..1, got {agreement}')
        keep('int8_min_agreement', agreement)
        keep('confidence', bool(self.confidence))
        # None stays None: resolved where the engine is built (a Ray worker's own home).
        keep('cache_dir', Path(self.cache_dir).expanduser() if self.cache_dir else None)

    @property
    def cache_folder(self):
        """Return the export cache folder: ``cache_dir``, else ``~/.cache/bisenet_ros``."""
        return self.cache_dir or Path.home() / '.cache' / 'bisenet_ros'

    @property
    def memory_budget(self):
        """Return the bytes a model graph may need: ``max_model_memory``, else half the RAM."""
        if self.max_model_memory:
            return self.max_model_memory << 20
        return machine_memory() // 2

    @property
    def automatic(self):
        """Whether ``auto`` chooses something (backend, device or precision)."""
        return AUTO in (self.backend, self.device, self.precision)

    def replace(self, **changes):
        """Return a copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)

    def identity(self):
        """
        Return what decides the numbers a run produces, as a JSON-able dict.

        The fleet's resume key and the export cache record it. Device,
        threads, batch and cache folder change speed and place, not labels.
        """
        return {'backend': self.backend,
                'precision': self.precision or 'as stored',
                'input_size': list(self.input_size) if self.input_size else None,
                'resize': self.resize, 'label_resize': self.label_resize,
                'confidence': self.confidence}

    @classmethod
    def add_arguments(cls, parser, **defaults):
        """
        Add one 'runtime' argument group with a flag per field; return the group.

        ``defaults`` override a field's default for this tool (shown by --help).
        """
        group = parser.add_argument_group('runtime (how the model runs)')
        for field in dataclasses.fields(cls):
            if not field.metadata['flag']:
                continue
            default = defaults.get(field.name, field.default)
            kwargs = {'default': default, 'help': field.metadata['help'],
                      'metavar': field.metadata['metavar']}
            if field.metadata['choices']:
                kwargs['choices'] = field.metadata['choices']
            elif field.name == 'input_size':
                kwargs['type'] = size_argument
            elif field.name in ('model', 'cache_dir'):
                kwargs['type'] = Path
            else:
                kwargs['type'] = str if field.default is None else type(field.default)
            group.add_argument('--' + field.name.replace('_', '-'), **kwargs)
        return group

    @classmethod
    def from_args(cls, args, **extra):
        """Return the config of parsed arguments (fields ``add_arguments`` added) and ``extra``."""
        values = {field.name: getattr(args, field.name) for field in dataclasses.fields(cls)
                  if hasattr(args, field.name)}
        return cls(**{**values, **extra})

    @classmethod
    def from_parameters(cls, parameters):
        """
        Return the config of the node's parameter values (a dict by parameter name).

        The node's names are ROS conventions of long standing: ``model_path``
        ('' = demo model), ``input_width``/``input_height`` (0 = the model's
        own), ``max_batch``, ``publish_confidence``, ``precision`` '' = the
        file's own.
        """
        width, height = parameters.get('input_width', 0), parameters.get('input_height', 0)
        if bool(width) != bool(height):
            raise ValueError('set both input_width and input_height, or leave both 0 to use '
                             "the model's own input size")
        renamed = {'model': parameters.get('model_path') or None,
                   'input_size': (width, height) if width else None,
                   'batch': parameters.get('max_batch', cls.batch),
                   'confidence': parameters.get('publish_confidence', False)}
        same = {field.name: parameters[field.name] for field in dataclasses.fields(cls)
                if field.name in parameters and field.name not in renamed}
        return cls(**same, **renamed)


def machine_memory():
    """Return this machine's memory in bytes, or its cgroup's limit where that is lower."""
    import os
    total = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    try:
        limit = Path('/sys/fs/cgroup/memory.max').read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def _int_within(name, value, low, high):
    if isinstance(value, bool) or int(value) != value or not low <= int(value) <= high:
        raise ValueError(f'{name} must be an integer within {low}..{high}, got {value!r}')
    return int(value)
