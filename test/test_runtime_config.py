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

"""RuntimeConfig: one default, one check and one spelling per runtime option."""

import argparse
import dataclasses
from pathlib import Path

from bisenet_ros.runtime.config import parse_size, RuntimeConfig
import pytest


def test_auto_is_the_default_for_backend_device_and_precision():
    config = RuntimeConfig()
    assert (config.backend, config.device, config.precision) == ('auto', 'auto', 'auto')
    assert config.automatic and config.model is None
    assert config.cache_folder == Path.home() / '.cache' / 'bisenet_ros'


def test_the_config_is_frozen_and_replace_checks_again():
    config = RuntimeConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.backend = 'torch'
    with pytest.raises(ValueError, match='batch must be an integer within 1..64'):
        config.replace(batch=0)
    assert config.replace(backend='torch').backend == 'torch' and config.backend == 'auto'


@pytest.mark.parametrize('changes,message', [
    ({'backend': 'tensorflow'}, "backend 'tensorflow' is not one of: auto, torch"),
    ({'device': 'tpu'}, "device 'tpu' is not one of: auto, cpu, cuda"),
    ({'precision': 'fp8'}, "precision 'fp8' is not one of"),
    ({'resize': 'crop'}, "resize 'crop' is not one of"),
    ({'input_size': (1000, 512)}, 'input width 1000 must be a positive multiple of 32'),
    ({'input_size': '1024'}, "input size '1024' is not WxH"),
    ({'input_size': (32, 16384)}, 'up to 8192'),
    ({'threads': -1}, 'threads must be an integer within 0..256'),
    ({'batch': 2.5}, 'batch must be an integer'),
    ({'int8_min_agreement': 1.5}, 'within 0..1'),
])
def test_each_bad_value_is_refused_in_one_line_naming_the_option(changes, message):
    with pytest.raises(ValueError, match=message) as refused:
        RuntimeConfig(**changes)
    assert '\n' not in str(refused.value)


@pytest.mark.parametrize('text,size', [('1024x512', (1024, 512)), ('640X352', (640, 352)),
                                       ('480,352', (480, 352))])
def test_sizes_are_written_w_x_h(text, size):
    assert parse_size(text) == size
    assert RuntimeConfig(input_size=text).input_size == size


def test_the_argument_group_round_trips_every_field():
    parser = argparse.ArgumentParser()
    RuntimeConfig.add_arguments(parser)
    args = parser.parse_args(['--model', 'm.pth', '--backend', 'onnxruntime', '--input-size',
                              '512x256', '--batch', '2', '--threads', '3',
                              '--label-resize', 'logits', '--cache-dir', '/tmp/c',
                              '--class-table', 'ade20k'])
    config = RuntimeConfig.from_args(args, confidence=True)
    assert config == RuntimeConfig(model='m.pth', backend='onnxruntime', input_size=(512, 256),
                                   batch=2, threads=3, label_resize='logits',
                                   cache_dir='/tmp/c', confidence=True, class_table='ade20k')
    assert RuntimeConfig.from_args(parser.parse_args([])) == RuntimeConfig()


def test_a_bad_size_on_the_command_line_is_a_usage_error(capsys):
    parser = argparse.ArgumentParser()
    RuntimeConfig.add_arguments(parser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(['--input-size', '1024'])
    assert exit_info.value.code == 2 and 'is not WxH' in capsys.readouterr().err


def test_the_node_parameters_map_onto_the_same_fields():
    config = RuntimeConfig.from_parameters({
        'model_path': '', 'backend': 'torch', 'device': 'cpu', 'precision': '',
        'input_width': 512, 'input_height': 256, 'resize': 'letterbox',
        'label_resize': 'nearest', 'threads': 0, 'max_batch': 2, 'int8_min_agreement': 0.9,
        'publish_confidence': True, 'image_transport': 'raw'})
    assert config == RuntimeConfig(backend='torch', device='cpu', precision=None,
                                   input_size=(512, 256), resize='letterbox', batch=2,
                                   int8_min_agreement=0.9, confidence=True)
    with pytest.raises(ValueError, match='set both input_width and input_height'):
        RuntimeConfig.from_parameters({'input_width': 512, 'input_height': 0})


def test_the_node_declares_the_runtime_defaults():
    pytest.importorskip('rclpy')
    from bisenet_ros.node.parameters import STRUCTURAL_PARAMETERS
    config = RuntimeConfig()
    for parameter, field in (('backend', 'backend'), ('device', 'device'),
                             ('precision', 'precision'), ('resize', 'resize'),
                             ('label_resize', 'label_resize'), ('max_batch', 'batch'),
                             ('int8_min_agreement', 'int8_min_agreement')):
        assert STRUCTURAL_PARAMETERS[parameter][0] == getattr(config, field), parameter


def test_the_identity_names_what_decides_the_numbers_only():
    config = RuntimeConfig(backend='openvino', precision='int8', input_size=(480, 352))
    assert config.identity() == {'backend': 'openvino', 'precision': 'int8',
                                 'input_size': [480, 352], 'resize': 'stretch',
                                 'label_resize': 'nearest', 'confidence': False}
    # Where and how fast it runs is not who it is.
    faster = config.replace(device='cpu', threads=2, batch=1, cache_dir='/tmp/other')
    assert faster.identity() == config.identity()
