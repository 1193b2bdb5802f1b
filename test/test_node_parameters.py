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

from bisenet_ros.node.parameters import (check_parameter, CHOICES, command_line_values,
                                         dropped_value, emulated_precision, LIVE_PARAMETERS,
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


def test_command_line_values_are_read_as_rcl_reads_them():
    argv = ['node', '-p', 'not_ros:=1', '--ros-args', '-p', 'overlay_alpha:=abc',
            '--param', 'publish_color:=5', '-p', 'bisenet_segmentation:max_rate:=2.5',
            '-p', 'other_node:threads:=3', '-p', 'cameras:=[front, left]', '-r', 'a:=b',
            '-p', 'model_path:=/m/v2.pth', '--', '-p', 'after:=1']
    assert command_line_values(argv) == {
        'overlay_alpha': 'abc', 'publish_color': 5, 'max_rate': 2.5,
        'cameras': ['front', 'left'], 'model_path': '/m/v2.pth'}


@pytest.mark.parametrize('given, effective, dropped', [
    ('abc', 0.5, True), (5, True, True), (True, True, False), (0.3, 0.3, False),
    (1, 1.0, False), (['a'], ['a'], False), ('torch', 'openvino', True), (1, True, True)])
def test_a_value_the_params_file_kept_is_named(given, effective, dropped):
    reason = dropped_value('overlay_alpha', given, effective)
    assert (reason is not None) == dropped
    if dropped:
        assert reason.startswith(f'parameter overlay_alpha: the command line value {given!r}')
