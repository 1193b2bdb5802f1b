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
Node processes of their own: without vision_msgs, signals at any moment, start-up failures.

Each start-up failure is one line and an exit status: parameter values from
every source, model files, rcl arguments and environment.
"""

import os
from pathlib import Path
import secrets
import signal
import time

from helpers import street_like
from node_rig import fastdds_segments, image_msg, left_behind, REPO, Rig
import pytest
from ros_helpers import NodeProcess, ros_environment, run_node_to_exit, wait_until


def test_without_vision_msgs_the_node_says_so_once_and_serves_frames(
        client, workdir, model_path, domain_id, subscriptions):
    # A pip-only install has no vision_msgs: a package on PYTHONPATH that fails to
    # import stands for it, whatever this machine has installed.
    hidden = workdir / 'no_vision_msgs'
    (hidden / 'vision_msgs').mkdir(parents=True, exist_ok=True)
    (hidden / 'vision_msgs' / '__init__.py').write_text(
        "raise ImportError('vision_msgs is not installed here')\n")
    namespace = f'/pip_only_{secrets.token_hex(3)}'
    env = ros_environment(domain_id, PYTHONPATH=os.pathsep.join(
        [str(hidden), *filter(None, [os.environ.get('PYTHONPATH')])]))
    node = NodeProcess(['-p', f'model_path:={model_path}', '-p', 'threads:=1',
                        '-p', 'backend:=torch', '-r', f'__ns:={namespace}'],
                       env, workdir / 'pip_only.log')
    try:
        node.wait_for_log('active: segmenting', timeout=90)
        rig = Rig(client, subscriptions, namespace, f'{namespace}/image')
        assert rig.send(image_msg(street_like(48, 64)))['labels'].height == 48
        warnings = [line for line in node.log().splitlines() if 'vision_msgs' in line]
        assert len(warnings) == 1 and 'label_info (vision_msgs/LabelInfo) is not published' \
            in warnings[0] and 'WARN' in warnings[0]
        assert client.node.get_publishers_info_by_topic(f'{namespace}/label_info') == []
    finally:
        node.stop()


@pytest.mark.parametrize('second, gap', [
    (signal.SIGINT, 0.0), (signal.SIGINT, 0.05), (signal.SIGINT, 0.3), (signal.SIGINT, 1.5),
    (signal.SIGTERM, 0.15)])
def test_a_second_signal_while_frames_flow_still_exits_0_and_leaves_nothing(
        client, workdir, model_path, domain_id, subscriptions, second, gap):
    namespace = f'/signals_{secrets.token_hex(3)}'
    node = NodeProcess(['-p', f'model_path:={model_path}', '-p', 'threads:=1',
                        '-r', f'__ns:={namespace}'],
                       ros_environment(domain_id), workdir / f'{namespace[1:]}.log')
    try:
        node.wait_for_log('active: segmenting', timeout=90)
        rig = Rig(client, subscriptions, namespace, f'{namespace}/image')
        rig.send(image_msg(street_like(48, 64)))
        segments = fastdds_segments(node)
        for seed in range(3):  # frames in flight when the signals land
            rig.publisher.publish(image_msg(street_like(48, 64, seed)))
        node.process.send_signal(signal.SIGINT)
        time.sleep(gap)
        node.process.send_signal(second)
        assert node.wait(timeout=60) == 0, node.log()[-2000:]
        assert 'Traceback' not in node.log() and 'terminate called' not in node.log()
        assert not left_behind(segments), 'shared memory left behind'
    finally:
        node.stop()


def _catches_sigterm(pid):
    """Return whether the process has its own SIGTERM handler (the node installs it first)."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('SigCgt:'):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


@pytest.mark.parametrize('after', [0.0, 0.8, 2.0])
def test_signals_during_start_up_and_model_load_exit_0(workdir, model_path, domain_id, after):
    node = NodeProcess(['-p', f'model_path:={model_path}', '-p', 'threads:=1',
                        '-r', f'__ns:=/load_{secrets.token_hex(3)}'],
                       ros_environment(domain_id), workdir / f'load_{after}.log')
    try:
        # From the moment the node's handlers exist (before Python has even run the
        # node's main, no program can handle a signal): importing torch, loading the
        # model, configuring.
        wait_until(lambda: _catches_sigterm(node.pid), 60, 0.005, "the node's handlers")
        time.sleep(after)
        for number in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
            node.process.send_signal(number)
            time.sleep(0.05)
        assert node.wait(timeout=60) == 0, node.log()[-2000:]
        assert 'Traceback' not in node.log() and 'terminate called' not in node.log()
    finally:
        node.stop()


# -- start-up failures -------------------------------------------------------------------

SEGMENTATION_YAML = str(REPO / 'config' / 'segmentation.yaml')
# Written into the test's folder by test_cannot_start_gives_one_line: name -> text.
HOSTILE_PARAMS_FILES = {
    'second.yaml': '/**:\n  ros__parameters:\n    overlay_alpha: abc\n    max_batch: 2.5\n',
    'batch.yaml': 'bisenet_segmentation:\n  ros__parameters:\n    max_batch: 2.5\n',
    # What launch writes for an integer past int64: rcl reads a double.
    'launch.yaml': '/**:\n  ros__parameters:\n    input_width: 1.0e+23\n',
    'nested.yaml': ('ns:\n  bisenet_segmentation:\n    ros__parameters:\n'
                    '      max_rate: 5\n'),
    'anchors.yaml': '/**:\n  ros__parameters:\n    a: &x 0.5\n    overlay_alpha: *x\n',
}


@pytest.mark.parametrize('args, hardware_override, code, expected', [
    (['-p', 'model_path:=/nonexistent/model.pth'], '', 1, '/nonexistent/model.pth'),
    (['-p', 'backend:=tensorrt'], '', 1, 'tensorrt'),
    (['-p', 'precision:=fp16'], '', 1, 'fp16 on a CPU would be emulated'),
    (['-p', 'precision:=bf16'], 'avx2', 1, 'no native bf16'),
    (['-p', 'precision:=bf16', '-p', 'backend:=openvino'], '-bf16', 1, 'no native bf16'),
    # rcl keeps the first source's type: each value given is checked, naming its source.
    (['--params-file', SEGMENTATION_YAML, '-p', 'overlay_alpha:=abc'], '', 1,
     "parameter overlay_alpha from the command line (-p): 'abc' is a string; it takes a "
     'double'),
    (['--params-file', SEGMENTATION_YAML, '-p', 'publish_color:=5'], '', 1,
     'parameter publish_color from the command line (-p): 5 is an integer; it takes a bool'),
    (['--params-file', SEGMENTATION_YAML, '--params-file', '{dir}/second.yaml'], '', 1,
     "parameter overlay_alpha from params file {dir}/second.yaml: 'abc' is a string"),
    (['--params-file', SEGMENTATION_YAML, '--params-file', '{dir}/batch.yaml'], '', 1,
     'parameter max_batch from params file {dir}/batch.yaml: 2.5 is a double; it takes an '
     'integer'),
    (['--params-file', SEGMENTATION_YAML, '--params-file', '{dir}/launch.yaml'], '', 1,
     'parameter input_width from params file {dir}/launch.yaml: 1e+23 is a double'),
    (['--params-file', SEGMENTATION_YAML, '--params-file', '{dir}/nested.yaml', '-r',
      '__ns:=/ns'], '', 1, 'parameter max_rate from params file {dir}/nested.yaml: 5 is an '
     'integer; it takes a double (write 5.0)'),
    (['-p', 'max_batch:=99999999999999999999999'], '', 1,
     'parameter max_batch from the command line (-p): 99999999999999999999999 is out of its '
     'range 1..64'),
    (['-p', 'input_width:=100'], '', 1, '100 is not a multiple of 32'),
    # What rcl cannot parse: one line, exit 2, rcl's own log lines held back.
    (['-r', 'image:=/a//b'], '', 2,
     "invalid ROS arguments: Couldn't parse remap rule: '-r image:=/a//b'"),
    (['-r', '__ns:=/a//b'], '', 2, "Couldn't parse remap rule: '-r __ns:=/a//b'"),
    (['--params-file', '{dir}/anchors.yaml'], '', 2,
     "Couldn't parse params file: '--params-file {dir}/anchors.yaml'"),
    (['--params-file', '{dir}/missing.yaml'], '', 2,
     "Couldn't parse params file: '--params-file {dir}/missing.yaml'"),
    (['--log-level', 'loud'], '', 2, "Couldn't parse log level: '--log-level loud'"),
    (['ROS_DOMAIN_ID=abc'], '', 2, 'cannot start ROS: ROS_DOMAIN_ID is not an integral number'),
    (['ROS_DOMAIN_ID=300'], '', 2, 'cannot start ROS: ROS_DOMAIN_ID 300 is out of range'),
])
def test_cannot_start_gives_one_line(domain_id, model_path, tmp_path, args, hardware_override,
                                     code, expected):
    for name, text in HOSTILE_PARAMS_FILES.items():
        (tmp_path / name).write_text(text)
    environment = dict(arg.split('=', 1) for arg in args if arg.startswith('ROS_'))
    args = [arg.format(dir=tmp_path) for arg in args if not arg.startswith('ROS_')]
    if 'model_path' not in ''.join(args):
        args = args + ['-p', f'model_path:={model_path}']
    env = ros_environment(domain_id, BISENET_ROS_HARDWARE=hardware_override)
    env.update(environment)
    exit_code, stdout, stderr = run_node_to_exit(args, env)
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    assert exit_code == code
    assert len(lines) == 1, lines
    assert expected.format(dir=tmp_path) in lines[0] and 'Traceback' not in lines[0]
