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
The capability probe: the one place that says what this machine runs natively.

``probe()`` reads the CPU (model, cores, instruction-set classes from
/proc/cpuinfo), the CUDA devices torch sees and the installed backends, and
answers for every backend x device x precision whether it runs natively here
(``Hardware.refusal``). Backends, the Segmenter, the node, the tools and the
tests ask it instead of looking for themselves, so they cannot disagree.

Emulated precisions are refused rather than run: torch bf16 on a CPU without
AVX512_BF16/AMX/ARM BF16 ran 7x slower than fp32 (V2, 1024x512, AMD Zen 3),
and no backend here has a CPU fp16 path.

``BISENET_ROS_HARDWARE`` masks what the probe reports, comma-separated:
a class name (``generic``, ``avx2``, ``avx_vnni``, ``avx512``, ``avx512_vnni``,
``avx512_bf16``, ``amx``) keeps only that class's features, ``-feature``
drops one (e.g. ``-bf16``), ``-cuda`` hides the GPUs. It can only take
features away: ONNX Runtime and OpenVINO read CPUID themselves, so claiming
a feature the CPU lacks would only move the failure into them. Users mask a
feature that misbehaves; tests simulate a lower class (``avx2``).
"""

from dataclasses import dataclass, field
import functools
import importlib.metadata
import importlib.util
import os
from pathlib import Path
import platform

from bisenet_ros.runtime.backends import BackendUnavailableError
from bisenet_ros.runtime.options import BACKENDS, DEVICES, PRECISIONS

ENV_OVERRIDE = 'BISENET_ROS_HARDWARE'

# Our feature name -> the /proc/cpuinfo flags that show it (any of them).
_X86_FLAGS = {
    'avx2': ('avx2',), 'fma': ('fma',), 'avx512': ('avx512f',),
    'avx512_vnni': ('avx512_vnni',), 'avx_vnni': ('avx_vnni',), 'amx': ('amx_tile',),
    'bf16': ('avx512_bf16', 'amx_bf16'),
}
_ARM_FLAGS = {'neon': ('asimd',), 'dotprod': ('asimddp',), 'i8mm': ('i8mm',),
              'bf16': ('bf16',), 'sve': ('sve',)}
FEATURES = tuple(dict.fromkeys([*_X86_FLAGS, *_ARM_FLAGS]))

# CPU classes, lowest first: the features a CPU of each class has.
CLASSES = {
    'generic': frozenset(),
    'avx2': frozenset({'avx2', 'fma'}),
    'avx_vnni': frozenset({'avx2', 'fma', 'avx_vnni'}),
    'avx512': frozenset({'avx2', 'fma', 'avx512'}),
    'avx512_vnni': frozenset({'avx2', 'fma', 'avx512', 'avx512_vnni'}),
    'avx512_bf16': frozenset({'avx2', 'fma', 'avx512', 'avx512_vnni', 'bf16'}),
    'amx': frozenset({'avx2', 'fma', 'avx512', 'avx512_vnni', 'bf16', 'amx'}),
}

# Arm cores by 'CPU part', for boards whose /proc/cpuinfo names no model.
_ARM_PARTS = {'0xd03': 'Cortex-A53', '0xd08': 'Cortex-A72', '0xd0b': 'Cortex-A76',
              '0xd0c': 'Neoverse-N1', '0xd40': 'Neoverse-V1', '0xd41': 'Cortex-A78',
              '0xd42': 'Cortex-A78AE', '0xd4f': 'Neoverse-V2'}

# What each backend can run at all, per device; the hardware decides the rest.
BACKEND_PRECISIONS = {
    ('torch', 'cpu'): ('fp32', 'bf16'),
    ('torch', 'cuda'): ('fp32', 'fp16', 'bf16'),
    ('onnxruntime', 'cpu'): ('fp32', 'int8'),
    ('onnxruntime', 'cuda'): ('fp32', 'fp16', 'int8'),
    ('openvino', 'cpu'): ('fp32', 'bf16', 'int8'),
}
_BETTER = {'torch': 'for int8 use backend onnxruntime or openvino',
           'onnxruntime': 'for bf16 use backend openvino or torch where the CPU has native '
                          'bf16; fp16 runs on the TensorRT provider (device cuda)',
           'openvino': 'openvino runs on the CPU here: for a GPU use backend onnxruntime or '
                       'torch'}
# Distribution names that provide each optional backend's module.
_DISTRIBUTIONS = {'onnxruntime': ('onnxruntime-gpu', 'onnxruntime'), 'openvino': ('openvino',)}
_EXTRAS = {'onnxruntime': 'onnx', 'openvino': 'openvino'}


@dataclass(frozen=True)
class Cpu:
    """The CPU: model name, architecture, usable cores and instruction-set features."""

    model: str
    arch: str
    cores: int
    features: frozenset

    @property
    def native_bf16(self):
        """Whether bf16 arithmetic runs in hardware (AVX512_BF16, AMX or Arm BF16)."""
        return 'bf16' in self.features

    @property
    def cpu_class(self):
        """Return the highest class whose features this CPU has ('aarch64' on Arm)."""
        if self.arch in ('aarch64', 'arm64'):
            return 'aarch64' + ''.join(f'+{f}' for f in ('dotprod', 'i8mm', 'bf16')
                                       if f in self.features)
        best = 'generic'
        for name, needed in CLASSES.items():
            if needed <= self.features and len(needed) >= len(CLASSES[best]):
                best = name
        return best


@dataclass(frozen=True)
class CudaDevice:
    """A CUDA GPU as torch sees it."""

    index: int
    name: str
    capability: tuple

    @property
    def native_bf16(self):
        """bf16 tensor-core maths needs compute capability 8.0 (Ampere) or newer."""
        return tuple(self.capability) >= (8, 0)


@dataclass(frozen=True)
class Hardware:
    """What this machine has, and which backend x device x precision runs natively."""

    cpu: Cpu
    cuda: tuple = ()
    backends: dict = field(default_factory=dict)
    override: str = ''

    def refusal(self, backend, device, precision):
        """Return why ``precision`` on ``backend``/``device`` does not run natively, or None."""
        if backend not in self.backends:
            extra = _EXTRAS.get(backend, backend)
            return (f'backend {backend} needs the {backend} package '
                    f"(pip install 'bisenet_ros[{extra}]')")
        if device == 'cpu' and precision == 'fp16':
            return ('fp16 on a CPU would be emulated (no backend here has a native CPU fp16 '
                    'path), far slower than fp32; use fp32 (bf16 where the CPU has native '
                    'bf16), or fp16 on device cuda')
        supported = BACKEND_PRECISIONS.get((backend, device), ())
        if precision not in supported:
            if not supported:
                return f'backend {backend} has no {device} path; {_BETTER[backend]}'
            return (f'{backend} on {device} supports precision {", ".join(supported)}, not '
                    f'{precision}; {_BETTER[backend]}')
        if device == 'cpu':
            if precision == 'bf16' and not self.cpu.native_bf16:
                return (f'this CPU ({self.cpu.model}, class {self.cpu.cpu_class}) has no '
                        'native bf16 (AVX512_BF16, AMX or Arm BF16): bf16 would be emulated, far '
                        'slower than fp32 (torch: 7x on AMD Zen 3); use fp32, or int8 with '
                        'onnxruntime or openvino')
        # ONNX Runtime finds its own GPU providers (and falls back with a log);
        # the CUDA devices listed here are the ones torch sees.
        elif backend == 'torch':
            if not self.cuda:
                return f'device cuda requested but {self._no_gpu_reason()}; use device cpu'
            gpu = self.cuda[0]
            if precision == 'bf16' and not gpu.native_bf16:
                return (f'{gpu.name} (compute capability {gpu.capability[0]}.'
                        f'{gpu.capability[1]}) has no native bf16 (needs 8.0+); use fp16')
        return None

    def require(self, backend, device, precision):
        """Raise BackendUnavailableError with the reason unless the combination runs natively."""
        reason = self.refusal(backend, device, precision)
        if reason:
            raise BackendUnavailableError(reason)

    def pairs(self):
        """Return [(backend, device, precision, refusal or None)]; cuda rows only with a GPU."""
        devices = DEVICES if self.cuda else ('cpu',)
        return [(backend, device, precision, self.refusal(backend, device, precision))
                for backend in BACKENDS for device in devices for precision in PRECISIONS
                if precision in BACKEND_PRECISIONS.get((backend, device), ())]

    def native_pairs(self):
        """Return ['backend:device:precision'] of what runs natively here."""
        return [f'{b}:{d}:{p}' for b, d, p, why in self.pairs() if why is None]

    def summary(self):
        """Return one line: CPU, class, features, GPUs, backends, any override."""
        cpu = self.cpu
        features = ' '.join(f for f in FEATURES if f in cpu.features) or 'none'
        gpus = ', '.join(f'{d.name} (sm {d.capability[0]}.{d.capability[1]})'
                         for d in self.cuda) or 'none'
        backends = ', '.join(f'{name} {version}' for name, version in self.backends.items())
        line = (f'{cpu.model} ({cpu.arch}, {cpu.cores} cores, class {cpu.cpu_class}; '
                f'{features}); CUDA: {gpus}; backends: {backends}')
        if self.override:
            line += f'; {ENV_OVERRIDE}={self.override}'
        return line

    def _no_gpu_reason(self):
        if 'cuda' in self.override:
            return f'{ENV_OVERRIDE}={self.override} hides the GPUs'
        return 'torch sees no CUDA GPU'


def parse_cpuinfo(text, arch, cores=1, board=''):
    """
    Return a Cpu from the text of /proc/cpuinfo for architecture ``arch``.

    x86 lists 'flags' and 'model name'; Arm lists 'Features' and often no model
    (Jetson), which then comes from ``board`` (/proc/device-tree/model), a
    'Model' line (Raspberry Pi) or the core's 'CPU part'.
    """
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    x86 = arch in ('x86_64', 'amd64', 'i686', 'i386')
    flags = set(fields.get('flags' if x86 else 'Features', '').split())
    table = _X86_FLAGS if x86 else _ARM_FLAGS
    features = frozenset(name for name, shown_by in table.items()
                         if any(flag in flags for flag in shown_by))
    if x86:
        model = fields.get('model name')
    else:  # Arm kernels print a generic 'model name', if any: the board says more
        model = (board or fields.get('Model')
                 or _ARM_PARTS.get(fields.get('CPU part', '').lower()) or fields.get('model name'))
    model = model or platform.processor() or arch
    return Cpu(model=' '.join(model.split()), arch=arch, cores=max(1, int(cores)),
               features=features)


def apply_override(cpu, cuda, override):
    """Return (cpu, cuda) with the features ``override`` masks taken away."""
    features = set(cpu.features)
    for item in (part.strip() for part in override.split(',')):
        if not item:
            continue
        if item in CLASSES:
            features &= CLASSES[item]
        elif item == '-cuda':
            cuda = ()
        elif item.startswith('-') and item[1:] in FEATURES:
            features.discard(item[1:])
        else:
            raise ValueError(f'{ENV_OVERRIDE}: unknown item {item!r}; use a class '
                             f'({", ".join(CLASSES)}), -cuda or -feature '
                             f'({", ".join(FEATURES)})')
    return Cpu(cpu.model, cpu.arch, cpu.cores, frozenset(features)), cuda


def _read(path):
    try:
        return Path(path).read_text(errors='replace').replace('\x00', '')
    except OSError:
        return ''


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cuda_devices():
    import torch
    if not torch.cuda.is_available():
        return ()
    return tuple(CudaDevice(i, torch.cuda.get_device_name(i),
                            tuple(torch.cuda.get_device_capability(i)))
                 for i in range(torch.cuda.device_count()))


def _installed_backends():
    import torch
    found = {'torch': torch.__version__.split('+')[0]}
    for module, distributions in _DISTRIBUTIONS.items():
        if importlib.util.find_spec(module) is None:
            continue
        for name in distributions:
            try:
                found[module] = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        else:
            found[module] = 'unknown version'
    return found


@functools.lru_cache(maxsize=None)
def _probe(override):
    arch = platform.machine().lower()
    cpu = parse_cpuinfo(_read('/proc/cpuinfo'), arch, _cores(),
                        _read('/proc/device-tree/model'))
    cpu, cuda = apply_override(cpu, _cuda_devices(), override)
    return Hardware(cpu=cpu, cuda=cuda, backends=_installed_backends(), override=override)


def probe():
    """Return this machine's Hardware (cached per value of BISENET_ROS_HARDWARE)."""
    return _probe(os.environ.get(ENV_OVERRIDE, '').strip())
