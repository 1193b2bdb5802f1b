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
Training settings: defaults, the YAML file and overrides merged into one dict.

Also the device and autocast precision the settings resolve to on this machine.
"""

from bisenet_ros.runtime import hardware
from bisenet_ros.runtime.processing import check_input_size
from bisenet_ros.training.datasets import CLASS_PRESETS
import torch
import yaml

DEFAULTS = {
    'arch': 'bisenetv2',
    'variant': 'coincheung',
    'dataset': 'camvid',
    'data_root': None,
    'train_split': 'train',
    'val_split': 'val',
    'num_classes': 19,
    'init': None,
    'crop_size': [320, 256],
    'scales': [0.75, 1.5],
    'jitter': 0.4,
    'input_size': [480, 352],
    'batch_size': 8,
    'max_iter': 1000,
    'time_budget_s': None,
    'lr': 0.05,
    'momentum': 0.9,
    'weight_decay': 5e-4,
    'warmup_iter': 100,
    'warmup_ratio': 0.1,
    'power': 0.9,
    'aux_weight': 1.0,
    'ohem_thresh': 0.7,
    'eval_every': 200,
    'eval_classes': None,
    'log_every': 10,
    'amp': 'auto',
    'channels_last': 'auto',
    'threads': 2,
    'cache': True,
    'seed': 0,
    'device': 'auto',
    'out_dir': 'out/train',
    'output': None,
    # Quantisation-aware fine-tuning of --init (NNCF); 7-bit weights where the CPU lacks VNNI.
    'qat': False,
    'qat_weight_bits': 'auto',
    # Keep the convolutions that read the image and the classifier in float (see qat.py).
    'qat_float_ends': False,
}


def load_config(path=None, overrides=None):
    """Merge DEFAULTS, the YAML file at ``path`` and ``overrides`` (None = unset) into one dict."""
    cfg = dict(DEFAULTS)
    if path:
        with open(path) as f:
            loaded = yaml.safe_load(f) or {}
        unknown = set(loaded) - set(DEFAULTS)
        if unknown:
            raise SystemExit(f'{path}: unknown settings {sorted(unknown)}')
        cfg.update(loaded)
    for key, value in (overrides or {}).items():
        if value is not None:
            cfg[key] = value
    if isinstance(cfg['eval_classes'], str):
        cfg['eval_classes'] = list(CLASS_PRESETS[cfg['eval_classes']])
    if str(cfg['qat_weight_bits']) not in ('auto', '7', '8'):
        raise SystemExit(f"qat_weight_bits must be auto, 7 or 8, not {cfg['qat_weight_bits']!r}")
    if cfg['data_root'] is None:
        raise SystemExit('data_root is required (--data-root or in the config)')
    for key in ('crop_size', 'input_size'):
        try:
            check_input_size(cfg[key])
        except ValueError as exc:
            raise SystemExit(f'{key}: {exc}') from None
    return cfg


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
        raise SystemExit(f'amp must be auto, bf16, fp16 or off; got {amp!r}')
    reason = hardware.probe().refusal('torch', device.type, amp)
    if reason:
        raise SystemExit(f'amp {amp}: {reason}')
    return dtypes[amp]
