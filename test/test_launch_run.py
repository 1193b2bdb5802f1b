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
The launch files, really launched: launch + launch_ros run them on the colcon-installed package.

Each launch runs in its own process (``python -m launch_runner``, what
``ros2 launch`` does) against a colcon install of this tree, and is checked
over DDS from this process: frames in, labels out, the latched tables, the
exit status. The pieces that are not installed here (rviz2, camera drivers,
``ros2``) must be refused before anything starts; ``ros2 bag record`` is
replaced by a script on PATH that notes its command line, so the recorder's
arguments and life cycle are checked as launch runs them.
"""

import os
from pathlib import Path
import re
import signal
import sys
import sysconfig

from bisenet_ros.image_msgs import fill_image
import cv2
from helpers import needs_ros_extra
import numpy as np
import pytest
from rcl_interfaces.srv import GetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_helpers import LoggedProcess, random_domain_id, ros_environment, TestClient, wait_until
from sensor_msgs.msg import CompressedImage, Image

TEST_DIR = Path(__file__).resolve().parent
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
STARTED = r'process started with pid \[(\d+)\]'
ACTIVE = r'bisenet_segmentation\]: active: segmenting'
RECORDER = """#!/bin/sh
# Stands in for ros2 bag (not installable here): has the verb (--help), notes the command
# line, then records "forever".
[ "$2" = --help ] && exit 0
printf '%s\\n' "$@" > "$ROS2_STUB_ARGS"
exec sleep 600
"""


@pytest.fixture(scope='module')
def installed(colcon_workspace):
    """Return the install prefix of bisenet_ros, with launch and launch_ros importable."""
    needs_ros_extra('launch_ros.actions')
    needs_ros_extra('ros2launch.api')
    needs_ros_extra('vision_msgs.msg')
    return colcon_workspace[0] / 'install' / 'bisenet_ros'


@pytest.fixture(scope='module')
def model(small_v2):
    """Return the session's small random-weight V2 checkpoint (input 128x64)."""
    return small_v2


@pytest.fixture(scope='module')
def domain():
    """Return the ROS domain of this module's launches."""
    return random_domain_id()


@pytest.fixture(scope='module')
def client(domain):
    """Return this process's ROS node, spinning in the background."""
    ros = TestClient(domain, name='launch_test_client')
    yield ros
    ros.close()


@pytest.fixture()
def recorder(tmp_path):
    """Return (folder to put first on PATH, file the stand-in ros2 writes its arguments to)."""
    folder = tmp_path / 'bin'
    folder.mkdir()
    (folder / 'ros2').write_text(RECORDER)
    (folder / 'ros2').chmod(0o755)
    return folder, tmp_path / 'ros2_args.txt'


class Launch(LoggedProcess):
    """One ``python -m launch_runner`` process."""

    def __init__(self, prefix, launch_file, arguments, env, log_path):
        """Launch ``launch_file`` of the installed package with ``name:=value`` arguments."""
        path = prefix / 'share' / 'bisenet_ros' / 'launch' / launch_file
        super().__init__(['launch_runner', path, *arguments], env, log_path)

    def started(self):
        """Return the PIDs of the processes launch has started so far."""
        return [int(pid) for pid in re.findall(STARTED, self.log())]


@pytest.fixture()
def launch(installed, domain, tmp_path):
    """Return a function that starts a launch; every launch is stopped afterwards."""
    launches = []
    site_packages = Path(sysconfig.get_path('purelib', vars={'base': str(installed)}))

    def start(launch_file, *arguments, path_first=None, **extra_env):
        # What `source install/setup.bash` sets, plus this folder for launch_runner.
        env = ros_environment(
            domain, AMENT_PREFIX_PATH=f'{installed}{os.pathsep}{sys.prefix}',
            PYTHONPATH=os.pathsep.join([str(site_packages), str(TEST_DIR)]), **extra_env)
        if path_first:
            env['PATH'] = f'{path_first}{os.pathsep}{env["PATH"]}'
        process = Launch(installed, launch_file, arguments, env,
                         tmp_path / f'launch_{len(launches)}.log')
        launches.append(process)
        return process

    yield start
    for process in launches:
        children = process.started()
        process.stop()
        for pid in children:  # launch ends its children; this only cleans up after a failure
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().split(')')[-1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def _all_ended(process):
    gone = [pid for pid in process.started() if not _alive(pid)]
    return gone == process.started()


def _image(height=48, width=80, frame_id='launch_camera', sec=7):
    rgb = np.random.default_rng(sec).integers(0, 255, (height, width, 3), dtype=np.uint8)
    msg = fill_image(Image(), rgb, 'rgb8')
    msg.header.frame_id, msg.header.stamp.sec = frame_id, sec
    return msg


def _compressed(frame_id='launch_camera', sec=8):
    rgb = np.random.default_rng(sec).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    msg = CompressedImage(format='png', data=cv2.imencode('.png', rgb)[1].tobytes())
    msg.header.frame_id, msg.header.stamp.sec = frame_id, sec
    return msg


def _served(client, msg, image_topic, labels_topic):
    """Publish ``msg`` until its labels come back on ``labels_topic``; return them."""
    inbox = client.subscribe(Image, labels_topic)
    publisher = client.publisher(type(msg), image_topic)
    try:
        client.wait_for_subscribers(publisher, timeout=90)

        def reply():
            publisher.publish(msg)
            return inbox.with_stamp(msg.header.stamp, timeout=2.0)
        return wait_until(reply, timeout=60, what=f'labels on {labels_topic}')
    finally:
        client.unsubscribe(inbox)


def _label_info(client, topic):
    label_info = needs_ros_extra('vision_msgs.msg').LabelInfo
    inbox = client.subscribe(label_info, topic, LATCHED)
    try:
        msg = inbox.wait_for(lambda m: True, timeout=30)
        assert msg is not None, f'no LabelInfo latched on {topic}'
        return msg
    finally:
        client.unsubscribe(inbox)


def _parameters(client, node, names):
    request = GetParameters.Request(names=names)
    response = client.call(GetParameters, f'{node}/get_parameters', request, timeout=30)
    assert response is not None, f'{node}/get_parameters did not answer'
    return dict(zip(names, response.values))


def _interrupt(process):
    """Ctrl-C the launch; return its exit status once every process it started is gone."""
    code = process.interrupt(timeout=60)
    wait_until(lambda: _all_ended(process), timeout=10, what='the launched processes to end')
    return code


# -- running launches --------------------------------------------------------------------------

def test_defaults_serve_frames_and_latch_both_class_tables(launch, client, model):
    process = launch('segmentation.launch.py', f'model:={model}', 'threads:=1')
    process.wait_for_log(ACTIVE, timeout=120)
    reply = _served(client, _image(), '/image', '/labels')
    assert (reply.width, reply.height, reply.encoding) == (80, 48, 'mono8')
    assert reply.header.frame_id == 'launch_camera'
    assert len(_label_info(client, '/label_info').class_map) == 19
    assert re.search(r'auto chose \S+ cpu \S+: ', process.log())  # the params file's default
    assert _interrupt(process) == 0, process.log()[-3000:]


@pytest.mark.parametrize('backend', ['torch', 'onnxruntime', 'openvino'])
def test_each_backend_and_the_tuning_arguments_reach_the_node(launch, client, model, backend):
    process = launch('segmentation.launch.py', f'model:={model}', f'backend:={backend}',
                     'threads:=1', 'input_width:=64', 'input_height:=32', 'resize:=letterbox',
                     'max_batch:=2', 'publish_confidence:=true', 'max_rate:=5.5',
                     'precision:=fp32', 'label_resize:=logits')
    process.wait_for_log(ACTIVE, timeout=180)
    assert re.search(rf'configured: bisenetv2 on {backend} .*input 64x32 \(letterbox\)',
                     process.log()), process.log()[-3000:]
    values = _parameters(client, '/bisenet_segmentation',
                         ['backend', 'threads', 'max_batch', 'publish_confidence', 'max_rate',
                          'label_resize', 'precision'])
    assert values['backend'].string_value == backend
    assert (values['threads'].integer_value, values['max_batch'].integer_value) == (1, 2)
    assert values['publish_confidence'].bool_value is True
    assert values['max_rate'].double_value == 5.5
    assert values['label_resize'].string_value == 'logits'
    assert values['precision'].string_value == 'fp32'
    assert _served(client, _image(sec=9), '/image', '/labels').header.stamp.sec == 9
    assert _interrupt(process) == 0, process.log()[-3000:]


def test_namespace_and_remapped_image_topic(launch, client, model):
    process = launch('segmentation.launch.py', f'model:={model}', 'threads:=1',
                     'namespace:=robot', 'image:=/cam/image_raw')
    process.wait_for_log(ACTIVE, timeout=120)
    assert 'reading /cam/image_raw' in process.log()
    reply = _served(client, _image(sec=11), '/cam/image_raw', '/robot/labels')
    assert reply.header.stamp.sec == 11
    assert _label_info(client, '/robot/label_info').class_map
    assert _interrupt(process) == 0


def test_compressed_input(launch, client, model):
    process = launch('segmentation.launch.py', f'model:={model}', 'threads:=1',
                     'image:=/cam/image_raw', 'image_transport:=compressed')
    process.wait_for_log(ACTIVE, timeout=120)
    reply = _served(client, _compressed(sec=12), '/cam/image_raw/compressed', '/labels')
    assert (reply.width, reply.height, reply.header.stamp.sec) == (80, 48, 12)
    assert _interrupt(process) == 0


def test_multi_camera_launch_serves_each_camera(launch, client, model):
    process = launch('multi_camera.launch.py', f'model:={model}', 'threads:=1',
                     'cameras:=[front, left]', 'namespace:=cars')
    process.wait_for_log(ACTIVE, timeout=120)
    reply = _served(client, _image(sec=13), '/cars/front/image', '/cars/front/labels')
    assert reply.header.stamp.sec == 13
    front, left = (_label_info(client, f'/cars/{cam}/label_info') for cam in ('front', 'left'))
    assert front.class_map == left.class_map
    assert _interrupt(process) == 0


def test_recorder_command_line_and_ctrl_c(launch, model, recorder):
    folder, arguments = recorder
    process = launch('segmentation.launch.py', f'model:={model}', 'threads:=1',
                     'namespace:=rec', 'record:=true', 'record_path:=/tmp/never_written',
                     path_first=folder, ROS2_STUB_ARGS=arguments)
    process.wait_for_log(ACTIVE, timeout=120)
    wait_until(arguments.exists, timeout=30, what='the recorder to start')
    command = arguments.read_text().split()
    assert command[:4] == ['bag', 'record', '--storage', 'mcap']
    topics = command[command.index('--topics') + 1:command.index('--output')]
    assert set(topics) == {'/rec/labels', '/rec/color', '/rec/overlay', '/rec/confidence',
                           '/rec/labels/camera_info', '/rec/label_info'}
    assert command[-2:] == ['--output', '/tmp/never_written']
    assert len(process.started()) == 2
    assert _interrupt(process) == 0


# -- the defects users met, each turned into a test ---------------------------------------------

REFUSED = {
    'rviz': (['rviz:=true'], "rviz:=true needs the ROS package 'rviz2', which is not installed"),
    'camera': (['camera:=v4l2_camera'],
               "camera:=v4l2_camera needs the ROS package 'v4l2_camera'"),
    'usb_cam': (['camera:=usb_cam'], "camera:=usb_cam needs the ROS package 'usb_cam'"),
    'no_ros2_bag': (['record:=true'], "record:=true needs 'ros2 bag', which the ros2 on PATH"),
    'params_file': (['params_file:=/nonexistent/params.yaml'],
                    'params_file /nonexistent/params.yaml is not a readable file'),
    'misspelt': (['bakend:=onnxruntime'],
                 "unknown launch argument 'bakend': did you mean 'backend'?"),
    'log_level': (['log_level:=verbose'], 'log_level'),
    'backend': (['backend:=tensorrt'], 'backend'),
    'threads': (['threads:=many'], 'threads:=many is not an integer'),
    'max_rate': (['max_rate:=fast'], 'max_rate:=fast is not a number'),
    # Past int64 it reached the node as a double, which rcl dropped for the file's 0.
    'input_width_huge': (['input_width:=99999999999999999999999'],
                         'input_width:=99999999999999999999999: 99999999999999999999999 is '
                         'out of its range 0..8192'),
    'input_width_step': (['input_width:=500'], 'input_width:=500: 500 is not a multiple of 32'),
    'max_batch_zero': (['max_batch:=0'], 'max_batch:=0: 0 is out of its range 1..64'),
    # Fast DDS would run on its defaults past a file it cannot read, without a word.
    'dds_profile_not_xml': ([f'dds_profile:={TEST_DIR.parent / "README.md"}'],
                            f'dds_profile {TEST_DIR.parent / "README.md"}: not a readable XML'),
    'dds_profile_not_fast_dds': ([f'dds_profile:={TEST_DIR.parent / "package.xml"}'],
                                 f'dds_profile {TEST_DIR.parent / "package.xml"}: not a Fast '
                                 'DDS profile'),
}


@pytest.mark.parametrize('case', sorted(REFUSED))
def test_what_cannot_run_is_refused_before_anything_starts(launch, model, case):
    arguments, message = REFUSED[case]
    # The venv's ros2 first: it has no bag verb, as a pip install has none.
    process = launch('segmentation.launch.py', f'model:={model}', *arguments,
                     path_first=Path(sys.executable).parent)
    assert process.wait(timeout=60) == 1, process.log()
    # One reason, said once by our checks (launch's own choice check says it twice).
    errors = [line for line in process.log().splitlines() if '[ERROR]' in line]
    assert errors and all(message in line for line in errors), process.log()
    assert len(errors) == (2 if case in ('log_level', 'backend') else 1), process.log()
    assert process.started() == [], 'a process was started before the refusal'


def test_multi_camera_launch_refuses_a_misspelt_argument(launch, model):
    process = launch('multi_camera.launch.py', f'model:={model}', 'camras:=[a]')
    assert process.wait(timeout=60) == 1
    assert "did you mean 'cameras'?" in process.log() and process.started() == []


def test_a_node_that_fails_ends_the_launch_with_status_1(launch, model, recorder):
    folder, arguments = recorder
    process = launch('segmentation.launch.py', 'model:=/nonexistent/model.pth', 'record:=true',
                     path_first=folder, ROS2_STUB_ARGS=arguments)
    code = process.wait(timeout=120)
    log = process.log()
    assert code == 1, log[-3000:]
    assert re.search(r'segmentation_node-\d+ exited with status 1: ending the launch', log), log
    wait_until(lambda: _all_ended(process), timeout=10, what='the recorder to be stopped')
    assert len(process.started()) == 2


def test_a_node_killed_by_a_signal_launch_did_not_send_ends_it_with_status_1(launch, model):
    # UDP only (and no large-image profile): a killed process cannot remove its Fast DDS
    # shared-memory files, and stale ones would be counted against the nodes of later tests.
    process = launch('segmentation.launch.py', f'model:={model}', 'threads:=1',
                     'large_images:=false', FASTDDS_BUILTIN_TRANSPORTS='UDPv4')
    process.wait_for_log(ACTIVE, timeout=120)
    (node,) = process.started()
    os.kill(node, signal.SIGKILL)
    assert process.wait(timeout=60) == 1
    assert 'was killed by signal 9' in process.log()


def test_show_args_lists_every_node_argument(installed):
    needs_ros_extra('launch')
    from bisenet_ros.node.interface import LAUNCH_PARAMETERS
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    for name in ('segmentation.launch.py', 'multi_camera.launch.py'):
        path = installed / 'share' / 'bisenet_ros' / 'launch' / name
        source = PythonLaunchDescriptionSource(str(path))
        description = source.try_get_launch_description_without_context()
        declared = {a.name for a in description.get_launch_arguments()}
        assert set(LAUNCH_PARAMETERS) | {'log_level', 'params_file', 'namespace'} <= declared
