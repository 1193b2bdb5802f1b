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


"""Helpers shared by the tests: where ../shared is, capability skips, the reference weights."""

import importlib
import math
import os
from pathlib import Path
import zlib

from bisenet_ros.runtime import hardware
import cv2
import numpy as np
import pytest
import torch

DATA = Path(__file__).resolve().parent / 'data'
# ../shared beside the repository, found from the source tree, not the working directory.
SHARED = Path(__file__).resolve().parents[2] / 'shared'


def shared_path(*parts):
    """Return a path under ../shared, skipping the test (saying why) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f'{path} is absent: the team data in ../shared is needed for this test')
    return path


def needs_ros_extra(module):
    """
    Return ``module`` (e.g. 'vision_msgs.msg', 'launch_ros.actions') once it imports.

    These come from a ROS install, or here from ../shared/ros through
    test/install_ros_extras.py (run by ``make test``). Without them the test
    skips saying so; with CI=true, where they must be there, it fails.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = (f'{module} is not importable ({exc}): it comes with a ROS install, or from '
                  '../shared/ros via `make test` (test/install_ros_extras.py)')
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(reason)
        pytest.skip(reason)


def needs(backend, precision='fp32', device='cpu'):
    """Skip the calling test, with the probe's reason, unless the combination runs natively."""
    reason = hardware.probe().refusal(backend, device, precision)
    if reason:
        pytest.skip(f'needs {backend} {precision} on {device}: {reason}')


def simulated_class(override='avx2'):
    """Return the CPU class this machine reports under ``BISENET_ROS_HARDWARE=override``."""
    cpu = hardware.apply_override(hardware.probe().cpu, (), override)[0]
    return cpu.cpu_class  # 'avx2' on x86 with AVX2; an Arm CPU stays 'aarch64'


def needs_no_gpu():
    """Skip the calling test where the probe finds a CUDA GPU (it tests the CPU fallback)."""
    if hardware.probe().cuda:
        pytest.skip(f'this machine has a GPU ({hardware.probe().cuda[0].name})')


def reference_tensor(key, shape):
    """
    Return the tensor the parity fixtures' fill recipe assigns to ``key``.

    The recipe (documented with the fixtures): a generator seeded with
    crc32(key) per tensor; BN statistics, 1-D weights/biases and N-D weights
    each drawn from their own distribution. None for num_batches_tracked.
    """
    if key.endswith('num_batches_tracked'):
        return None
    gen = torch.Generator().manual_seed(zlib.crc32(key.encode('utf-8')))
    shape = tuple(shape)
    if key.endswith('running_mean'):
        return torch.randn(shape, generator=gen) * 0.1
    if key.endswith('running_var'):
        return torch.rand(shape, generator=gen) + 0.5
    if len(shape) == 1 and key.endswith('weight'):
        return torch.rand(shape, generator=gen) + 0.5
    if len(shape) == 1 and key.endswith('bias'):
        return torch.randn(shape, generator=gen) * 0.1
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
    raise ValueError(f'no fill rule for {key} {shape}')


def reference_state_dict(name):
    """Return the filled state_dict of reference set ``name`` (e.g. 'mmseg_v2')."""
    state_dict = {}
    for line in (DATA / f'keys_{name}.txt').read_text().splitlines():
        key, shape, dtype = line.split('\t')
        shape = tuple(int(s) for s in shape.split(',')) if shape else ()
        value = reference_tensor(key, shape)
        state_dict[key] = (torch.zeros(shape, dtype=getattr(torch, dtype)) if value is None
                           else value.to(getattr(torch, dtype)))
    return state_dict


def reference_input(case):
    """Return the normalised input tensor of a fixture case ('128x256', 'b2_128x256', ...)."""
    seed, batch = (99, 2) if case.startswith('b2_') else (1234, 1)
    height, width = (int(v) for v in case.split('_')[-1].split('x'))
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch, 3, height, width), generator=gen, dtype=torch.float32)


def street_like(height, width, seed=0):
    """Return a smooth RGB image: the network then predicts several classes (noise ties them)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def claiming(ext, width, height):
    """
    Return a small real image (JPEG, PNG or BMP) whose header claims ``width`` x ``height``.

    The pixels are those of a 16x16 image: a decoder that trusts the header
    allocates for the claim, one that reads it first refuses at once.
    """
    ok, data = cv2.imencode(ext, np.full((16, 16, 3), 90, np.uint8))
    assert ok
    data = bytearray(data.tobytes())
    if ext == '.png':
        data[16:24] = width.to_bytes(4, 'big') + height.to_bytes(4, 'big')
    elif ext == '.bmp':
        data[18:26] = width.to_bytes(4, 'little') + height.to_bytes(4, 'little')
    else:  # JPEG: the size sits in the start-of-frame segment
        sof = next(i for i in range(2, len(data) - 1)
                   if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
        data[sof + 5:sof + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
    return bytes(data)
