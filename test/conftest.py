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

from pathlib import Path
import sys

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(2)

from helpers import reference_state_dict  # noqa: E402, I100 (needs the path above)


@pytest.fixture(scope='session')
def checkpoint(tmp_path_factory):
    """Return a CoinCheung V2 checkpoint with the reference fixtures' weights."""
    path = tmp_path_factory.mktemp('ckpt') / 'v2.pth'
    torch.save(reference_state_dict('coincheung_v2'), path)
    return path
