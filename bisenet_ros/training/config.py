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
Training settings: defaults, the YAML file and overrides merged into one read-only mapping.

Also where a run writes (``runs/<name>/`` unless told otherwise) and the device
and autocast precision the settings resolve to on this machine.
"""

from importlib import resources
from pathlib import Path
from types import MappingProxyType

from bisenet_ros.models import COINCHEUNG
from bisenet_ros.resources import PACKAGE
from bisenet_ros.runtime import hardware
from bisenet_ros.runtime.config import check_input_size
from bisenet_ros.training.datasets import CLASS_PRESETS
import torch
import yaml

# Each setting: its default and what it means (the --help line). A YAML key and a
# flag spell a setting the same way: ``crop_size`` is ``--crop-size``.
SETTINGS = {
    'arch': ('bisenetv2', 'network: bisenetv1 or bisenetv2'),
    'variant': (COINCHEUNG, 'layout of a fresh network (a --model brings its own)'),
    'dataset': ('camvid', 'dataset reader: camvid or cityscapes'),
    'data': (None, 'dataset root (required)'),
    'train_split': ('train', 'split trained on'),
    'val_split': ('val', 'split validated on; empty for none'),
    'num_classes': (19, 'classes the network predicts'),
    'model': (None, 'checkpoint to start from (warm start; a different class count gets '
                    'fresh classifiers); none trains from scratch'),
    'crop_size': ([320, 256], 'training crop WxH'),
    'scales': ([0.75, 1.5], 'random rescale range A,B before cropping'),
    'jitter': (0.4, 'colour jitter strength'),
    'input_size': ([480, 352], 'validation and export input WxH, multiples of 32'),
    'batch': (8, 'images per iteration'),
    'max_iter': (1000, 'iterations of the poly schedule'),
    'time_budget_s': (None, 'also end the schedule after this many seconds'),
    'lr': (0.05, 'base learning rate (SGD)'),
    'momentum': (0.9, 'SGD momentum'),
    'weight_decay': (5e-4, 'weight decay of conv and linear weights'),
    'warmup_iter': (100, 'iterations of learning-rate warm-up'),
    'warmup_ratio': (0.1, 'learning-rate factor at the start of warm-up'),
    'power': (0.9, 'exponent of the poly decay'),
    'aux_weight': (1.0, "weight of the auxiliary heads' losses"),
    'ohem_thresh': (0.7, 'OHEM: pixels below this probability of their class count'),
    'eval_every': (200, 'validate every this many iterations'),
    'eval_classes': (None, 'classes in the val mIoU: ids A,B,... or camvid; none = all'),
    'log_every': (10, 'write a metrics.jsonl line every this many iterations'),
    'amp': ('auto', 'autocast: auto, bf16, fp16 or off'),
    'channels_last': ('auto', 'NHWC memory layout: auto (with autocast), true or false'),
    'threads': (2, 'torch CPU threads'),
    'cache': (True, 'keep decoded frames in memory'),
    'seed': (0, 'random seed'),
    'device': ('auto', 'auto (CUDA when available), cpu or cuda'),
    'out_dir': (None, 'folder of last.pth, best.pth and metrics.jsonl; default: '
                      '<runs-dir>/<name>'),
    'output': (None, 'the trained model; default: <out_dir>/<name>.safetensors (.onnx '
                     'with --qat)'),
    # Quantisation-aware fine-tuning of --model (NNCF); 7-bit weights where the CPU lacks VNNI.
    'qat': (False, 'quantisation-aware fine-tuning of --model; writes an int8 .onnx file'),
    'qat_weight_bits': ('auto', 'QAT weight bits: auto (7 without VNNI/dotprod), 7 or 8'),
    # Keep the convolutions that read the image and the classifier in float (see qat.py).
    'qat_float_ends': (False, 'QAT: keep the blocks reading the image and the classifier '
                              'float'),
}
DEFAULTS = MappingProxyType({key: value for key, (value, _) in SETTINGS.items()})
RUNS_DIR = 'runs'


def load_config(path=None, overrides=None, name=None, runs_dir=RUNS_DIR):
    """
    Merge DEFAULTS, the YAML file at ``path`` and ``overrides`` (None = unset).

    ``out_dir`` and ``output`` left unset go under ``<runs_dir>/<name>``, where
    ``name`` defaults to the YAML file's stem (``train`` without one, with
    ``_qat`` appended for a QAT run). Returns a read-only mapping; raises
    ValueError naming a setting that cannot be used.
    """
    cfg = dict(DEFAULTS)
    if path:
        if not Path(path).is_file():
            raise FileNotFoundError(f'--config {path}: no such file')
        try:
            with open(path, encoding='utf-8') as f:
                loaded = yaml.safe_load(f) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f'--config {path}: not a readable YAML file ('
                             f'{" ".join(str(exc).split())})') from None
        if not isinstance(loaded, dict):
            raise ValueError(f'--config {path}: expected a mapping of settings, got a '
                             f'{type(loaded).__name__}')
        unknown = sorted(set(loaded) - set(DEFAULTS))
        if unknown:
            raise ValueError(f'{path}: unknown settings {unknown} (the settings are listed by '
                             'bisenet train --help)')
        cfg.update(loaded)
    cfg.update({key: value for key, value in (overrides or {}).items() if value is not None})
    if isinstance(cfg['eval_classes'], str):
        if cfg['eval_classes'] not in CLASS_PRESETS:
            raise ValueError(f"eval_classes {cfg['eval_classes']!r} is not a list of ids or one "
                             f'of {sorted(CLASS_PRESETS)}')
        cfg['eval_classes'] = list(CLASS_PRESETS[cfg['eval_classes']])
    if str(cfg['qat_weight_bits']) not in ('auto', '7', '8'):
        raise ValueError(f"qat_weight_bits must be auto, 7 or 8, not {cfg['qat_weight_bits']!r}")
    if cfg['data'] is None:
        raise ValueError('no dataset root: give --data DIR (or data: in the config)')
    for key in ('crop_size', 'input_size'):
        try:
            cfg[key] = list(check_input_size(cfg[key]))
        except (TypeError, ValueError) as exc:
            raise ValueError(f'{key} {cfg[key]!r}: {exc}') from None
    if name is None:
        name = (Path(path).stem if path else 'train') + ('_qat' if cfg['qat'] else '')
    if cfg['out_dir'] is None:
        cfg['out_dir'] = str(Path(runs_dir) / name)
    if cfg['output'] is None:
        suffix = '.onnx' if cfg['qat'] else '.safetensors'
        cfg['output'] = str(Path(cfg['out_dir']) / (name + suffix))
    return MappingProxyType(cfg)


def check_writable(path, what, suffix=None):
    """
    Raise ValueError unless ``path`` ends in ``suffix`` and lies outside the installed package.

    The package's weights folder holds the shipped models (and the int8 files
    that name their parent's digest): a run must never replace them, whatever
    path or relative folder it was given.
    """
    if suffix and not str(path).endswith(suffix):
        raise ValueError(f'{what} {path} must end in {suffix}')
    package = Path(str(resources.files(PACKAGE))).resolve()
    target = Path(path).expanduser().resolve()
    if target == package or package in target.parents:
        raise ValueError(f'{what} {path} is inside the installed package ({package}), whose '
                         f'files ship with it; leave it unset (runs/<name>/) or name a folder '
                         'outside')


def pick_device(name):
    """Return the torch device: CUDA when available for 'auto'."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(name)


def pick_autocast(amp, device):
    """
    Return the autocast dtype (or None) for an ``amp`` setting.

    'auto' means fp16 on CUDA and bf16 where the capability probe finds native
    bf16 on the CPU, which measured ~1.5x faster than fp32 for V2 training
    here; elsewhere fp32 is kept. An explicit precision the device would only
    emulate is refused, as the runtime refuses it.
    """
    if amp in ('off', 'fp32', False, None):
        return None
    dtypes = {'bf16': torch.bfloat16, 'fp16': torch.float16}
    if amp == 'auto':
        if device.type == 'cuda':
            return torch.float16
        return torch.bfloat16 if hardware.probe().cpu.native_bf16 else None
    if amp not in dtypes:
        raise ValueError(f'amp must be auto, bf16, fp16 or off; got {amp!r}')
    reason = hardware.probe().refusal('torch', device.type, amp)
    if reason:
        raise ValueError(f'amp {amp}: {reason}')
    return dtypes[amp]
