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

"""The node's parameter tables and checks, without DDS (the wiring is test_node's)."""

import subprocess
import sys

from bisenet_ros.node.parameter_sources import given_values, section_applies
from bisenet_ros.node.parameters import (check_parameter, CHOICES, emulated_precision,
                                         given_value_problem, LIVE_PARAMETERS,
                                         STRUCTURAL_PARAMETERS, unknown_parameter_warning)
from bisenet_ros.runtime import hardware
import pytest


def test_every_choice_parameter_declares_its_choices():
    for name, choices in CHOICES.items():
        _, descriptor = STRUCTURAL_PARAMETERS[name]
        shown = ', '.join(choice or "''" for choice in choices)  # '' stays visible
        assert descriptor.additional_constraints == 'one of: ' + shown
    assert 'openvino' in CHOICES['backend'] and '' in CHOICES['precision']
    assert STRUCTURAL_PARAMETERS['precision'][1].additional_constraints.startswith(
        "one of: '', auto")


@pytest.mark.parametrize('name, value, state, reason', [
    ('backend', 'tensorrt', 'unconfigured', "backend 'tensorrt' is not one of: 'auto', 'torch'"),
    ('resize', 'crop', 'unconfigured', 'is not one of'),
    ('precision', 'fp8', 'unconfigured', "'', 'auto', 'fp32'"),
    ('model_path', '/m.pth', 'active', 'deactivate and clean up the node first'),
    ('model_path', '/m.pth', 'inactive', 'clean up the node first (lifecycle cleanup)'),
    ('backend', 'torch', 'finalized', 'shut down and configures no more: start the node'),
    ('cameras', ['front', 'front'], 'unconfigured', 'must be unique'),
    ('cameras', ['9front'], 'unconfigured', 'not a valid namespace'),
    ('cameras', ['front/', 'left'], 'unconfigured', 'not a valid namespace'),
    ('publish_confidence', True, 'active', 'outputs labels only'),
])
def test_invalid_values_are_refused_with_a_reason_for_the_state(name, value, state, reason):
    assert reason in check_parameter(name, value, state, confidence_available=False)


@pytest.mark.parametrize('name, value, state', [
    ('backend', 'openvino', 'unconfigured'), ('precision', '', 'unconfigured'),
    ('cameras', ['front', 'rear/left'], 'unconfigured'), ('cameras', [], 'unconfigured'),
    ('publish_confidence', True, 'unconfigured'), ('overlay_alpha', 0.2, 'active'),
    ('max_rate', 5.0, 'inactive'),
])
def test_valid_values_pass(name, value, state):
    assert check_parameter(name, value, state, confidence_available=False) is None


def test_live_parameters_are_never_refused_for_being_configured():
    for name, (default, _) in LIVE_PARAMETERS.items():
        for state in ('inactive', 'active'):
            assert check_parameter(name, default, state, confidence_available=True) is None


def test_emulated_precisions_are_named_by_the_probe(monkeypatch):
    monkeypatch.setenv(hardware.ENV_OVERRIDE, 'avx2')
    assert 'no native bf16' in emulated_precision('torch', 'cpu', 'bf16')
    assert 'fp16 on a CPU' in emulated_precision('openvino', 'cpu', 'fp16')
    assert emulated_precision('torch', 'cpu', '') is None
    assert emulated_precision('onnxruntime', 'cpu', 'int8') is None
    monkeypatch.setenv(hardware.ENV_OVERRIDE, 'avx3')
    assert "unknown item 'avx3'" in emulated_precision('torch', 'cpu', 'fp32')


def test_unknown_keys_are_named_with_what_exists():
    typo = unknown_parameter_warning('overlay_alpah', ['image'])
    assert "unknown parameter 'overlay_alpah' ignored" in typo and 'overlay_alpha' in typo
    qos = unknown_parameter_warning('qos_overrides./x.subscription.depth', ['/a', '/b'])
    assert 'QoS can be overridden for: /a, /b' in qos


def test_the_table_loads_without_torch_or_opencv_for_the_launch_files():
    code = ('import sys, bisenet_ros.node.parameters; '
            "sys.exit(sorted({'torch', 'cv2'} & set(sys.modules)) or None)")
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


NODE = '/cams/front/bisenet_segmentation'


def _values(given):
    return [(g.source, g.name, g.value) for g in given]


def test_command_line_values_are_read_as_rcl_reads_them():
    argv = ['node', '-p', 'not_ros:=1', '--ros-args', '-p', 'overlay_alpha:=abc',
            '--param', 'publish_color:=5', '-p', 'bisenet_segmentation:max_rate:=2.5',
            '-p', 'other_node:threads:=3', '-p', 'cameras:=[front, left]', '-r', 'a:=b',
            '-p', 'model_path:=/m/v2.pth', '--', '-p', 'after:=1']
    cli = 'the command line (-p)'
    assert _values(given_values(argv, 'bisenet_segmentation', NODE)) == [
        (cli, 'overlay_alpha', 'abc'), (cli, 'publish_color', 5), (cli, 'max_rate', 2.5),
        (cli, 'cameras', ['front', 'left']), (cli, 'model_path', '/m/v2.pth')]


@pytest.mark.parametrize('key, applies', [
    ('/**', True), ('**', True), ('bisenet_segmentation', False),
    ('/cams/front/bisenet_segmentation', True), ('cams/front/bisenet_segmentation', True),
    ('/**/bisenet_segmentation', True), ('/cams/*/bisenet_segmentation', True),
    ('/*/bisenet_segmentation', False), ('/cams/**', True), ('/other/**', False),
    ('/cams/front/bisenet_segmentation_2', False), ('/cams/fr.nt/bisenet_segmentation', False)])
def test_params_file_sections_match_the_node_as_rcl_matches_them(key, applies):
    assert section_applies(key, NODE) == applies


def test_every_params_file_is_read_for_every_value_it_gives(tmp_path):
    first = tmp_path / 'first.yaml'
    first.write_text('/**:\n  ros__parameters:\n    max_batch: 4\n    overlay_alpha: 0.5\n')
    second = tmp_path / 'second.yaml'
    second.write_text(
        'cams:\n  front:\n    bisenet_segmentation:\n      ros__parameters:\n'
        '        overlay_alpha: abc\n        qos_overrides:\n          /image:\n'
        '            subscription: {depth: 2}\n'
        'other_node:\n  ros__parameters:\n    max_batch: wrong\n'
        '/**/bisenet_segmentation:\n  ros__parameters:\n    max_batch: 2.5\n')
    argv = ['node', '--ros-args', '--params-file', str(first), '--params-file', str(second),
            '-p', 'max_batch:=3']
    assert _values(given_values(argv, 'bisenet_segmentation', NODE)) == [
        (f'params file {first}', 'max_batch', 4), (f'params file {first}', 'overlay_alpha', 0.5),
        (f'params file {second}', 'overlay_alpha', 'abc'),
        (f'params file {second}', 'qos_overrides./image.subscription.depth', 2),
        (f'params file {second}', 'max_batch', 2.5),
        ('the command line (-p)', 'max_batch', 3)]


@pytest.mark.parametrize('name, value, problem', [
    ('overlay_alpha', 'abc', "'abc' is a string; it takes a double"),
    ('overlay_alpha', 1, '1 is an integer; it takes a double (write 1.0)'),
    ('overlay_alpha', 1.5, '1.5 is out of its range 0.0..1.0'),
    ('overlay_alpha', float('nan'), 'nan is out of its range'),
    ('max_batch', 2.5, '2.5 is a double; it takes an integer'),
    ('max_batch', True, 'True is a bool; it takes an integer'),
    ('max_batch', 10**23, f'{10**23} is out of its range 1..64'),
    ('max_model_memory', -1, '-1 is out of its range'),
    ('input_width', 1e23, '1e+23 is a double; it takes an integer'),
    ('input_width', 100, '100 is not a multiple of 32'),
    ('publish_color', 5, '5 is an integer; it takes a bool'),
    ('backend', 'tensorrt', "backend 'tensorrt' is not one of"),
    ('backend', None, 'None is empty; it takes a string'),
    ('cameras', ['front', 3], "['front', 3] is a list; it takes a list of strings"),
    ('cameras', ['1front'], "camera name '1front' is not a valid namespace"),
    ('autostart', 'yes please', "'yes please' is a string; it takes a bool"),
])
def test_a_given_value_the_node_would_not_take_is_named_with_why(name, value, problem):
    assert problem in given_value_problem(name, value)


@pytest.mark.parametrize('name, value', [
    ('overlay_alpha', 0.25), ('max_batch', 64), ('input_width', 0), ('input_width', 8192),
    ('cameras', []), ('cameras', ['front', 'rear/left']), ('precision', ''),
    ('qos_overrides./image.subscription.depth', 'anything: not ours to judge'),
    ('overlay_alpah', 'a typo is reported as unknown, not here')])
def test_values_the_node_takes_pass(name, value):
    assert given_value_problem(name, value) is None
