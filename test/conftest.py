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


"""Pytest setup: test/helpers.py importable, torch on the 2 cores, shared fixtures."""

import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(2)

from helpers import reference_state_dict  # noqa: E402, I100 (needs the path above)

# The node tests' fixtures (a node process and a ROS client beside it).
pytest_plugins = ['node_rig']

REPO = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).with_name('colcon')


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    """Return a per-module cache directory for ONNX exports."""
    return tmp_path_factory.mktemp('cache')


@pytest.fixture(scope='session')
def checkpoint(tmp_path_factory):
    """Return a CoinCheung V2 checkpoint with the reference fixtures' weights."""
    path = tmp_path_factory.mktemp('ckpt') / 'v2.pth'
    torch.save(reference_state_dict('coincheung_v2'), path)
    return path


@pytest.fixture(scope='session')
def small_v2(tmp_path_factory):
    """Return a small random-weight V2 checkpoint (input 128x64): quick on a busy CPU."""
    from bisenet_ros.checkpoint import save_checkpoint
    from bisenet_ros.models import build_model
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('small_v2') / 'v2.safetensors'
    save_checkpoint(path, build_model('bisenetv2', aux=False).eval(),
                    {'arch': 'bisenetv2', 'input_size': [128, 64]})
    return path


@pytest.fixture(scope='session')
def colcon_workspace(tmp_path_factory):
    """Return (workspace root, `colcon list` output) with bisenet_ros built and installed."""
    if not COLCON.exists():
        pytest.skip(f'colcon is not installed beside {sys.executable} (pip install '
                    'colcon-common-extensions)')
    root = tmp_path_factory.mktemp('ws')
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            target = root / 'src' / 'bisenet_ros' / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target)
    env = dict(os.environ, PATH=f'{COLCON.parent}:{os.environ["PATH"]}')
    listed = subprocess.run([str(COLCON), 'list'], cwd=root, env=env, capture_output=True,
                            text=True, timeout=120)
    build = subprocess.run([str(COLCON), 'build', '--packages-select', 'bisenet_ros'],
                           cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return root, listed.stdout
