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


"""Shipped files are found wherever the package is installed from."""

from bisenet_ros.checkpoint import load_checkpoint
from bisenet_ros.resources import config_path, demo_model_path
import pytest
import yaml


def test_configs_are_found_and_parse():
    for name in ('segmentation.yaml', 'train_camvid_v2.yaml'):
        assert isinstance(yaml.safe_load(config_path(name).read_text()), dict)
    with pytest.raises(FileNotFoundError, match='nope.yaml'):
        config_path('nope.yaml')


def test_the_demonstration_model_ships_with_its_card_and_licence():
    path = demo_model_path()
    assert path is not None, 'bisenet_ros/weights/bisenetv2_camvid_demo.safetensors is missing'
    assert path.stat().st_size <= 15 * 1024 * 1024
    assert (path.parent / 'MODEL_CARD.md').is_file() and (path.parent / 'LICENSE').is_file()
    model, info = load_checkpoint(path)
    assert (info.arch, info.source, info.num_classes) == ('bisenetv2', 'bisenet_ros', 19)
    assert info.input_size and all(v % 32 == 0 for v in info.input_size)
    assert 'training' in info.metadata
