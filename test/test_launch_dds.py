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
The launch files give every process they start the large-image Fast DDS profile by default.

The choice is a plain function (checked case by case); then ``ros2 launch``
runs for real and the node's own environment (/proc/PID/environ) shows what
it was given.
"""

import os
from pathlib import Path
import re
import subprocess
import sys

from diagnostic_msgs.msg import DiagnosticArray
from helpers import needs_ros_extra
import pytest
from rclpy.qos import qos_profile_sensor_data
from ros_helpers import (activated_environment, LoggedCommand, random_domain_id, TestClient,
                         wait_until)
from sensor_msgs.msg import Image

CONFIG = Path(__file__).resolve().parents[1] / 'config'
FASTDDS = 'FASTDDS_DEFAULT_PROFILES_FILE'
FASTRTPS = 'FASTRTPS_DEFAULT_PROFILES_FILE'
BIG_SHM = 64 * 2 ** 30
STARTED = r'process started with pid \[(\d+)\]'


def _support():
    return needs_ros_extra('bisenet_ros.launch_support')


@pytest.mark.parametrize('large, given, environ, shm, expected', [
    (True, '', {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}, BIG_SHM,
     '/c/fastdds_large_images_localhost.xml'),
    (True, '', {'ROS_LOCALHOST_ONLY': '1'}, BIG_SHM, '/c/fastdds_large_images_localhost.xml'),
    (True, '', {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET'}, BIG_SHM,
     '/c/fastdds_large_images.xml'),
    (True, '', {}, 64 * 2 ** 20, '/c/fastdds_large_images_docker.xml'),
    (True, '', {FASTDDS: '/mine.xml'}, BIG_SHM, None),
    (True, '', {FASTRTPS: '/mine.xml'}, BIG_SHM, None),
    (True, '/given.xml', {FASTDDS: '/mine.xml'}, BIG_SHM, '/given.xml'),
    (False, '', {}, BIG_SHM, None),
    (False, '/given.xml', {}, BIG_SHM, '/given.xml'),
    (True, '', {'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'}, BIG_SHM, None),
])
def test_the_profile_chosen_and_why(large, given, environ, shm, expected):
    profile, why = _support().choose_dds_profile(large, given, environ, '/c', shm)
    assert profile == expected
    assert why and '\n' not in why
    if FASTDDS in environ and not given:
        assert why == f'Fast DDS profile from the environment: {FASTDDS}=/mine.xml'


def test_fast_dds_2_distributions_read_the_older_variable():
    support = _support()
    assert support.profile_variable({'ROS_DISTRO': 'jazzy'}) == FASTRTPS
    assert support.profile_variable({'ROS_DISTRO': 'kilted'}) == FASTDDS
    assert support.profile_variable({}) == FASTDDS


@pytest.fixture(scope='module')
def domain():
    """Return the ROS domain of this module's launches."""
    return random_domain_id()


@pytest.fixture(scope='module')
def env(domain):
    """Return the activated venv's environment, with no Fast DDS profile of its own."""
    needs_ros_extra('ros2launch.command.launch')
    environment = activated_environment(domain)
    for name in (FASTDDS, FASTRTPS):
        environment.pop(name, None)
    return environment


def _node_environment(env, tmp_path, launch_file, *arguments, **extra):
    """Launch, return the node process's environment, then end the launch with Ctrl-C."""
    process = LoggedCommand(['ros2', 'launch', 'bisenet_ros', launch_file, *arguments],
                            {**env, **extra}, tmp_path / 'launch.log')
    try:
        pid = int(process.wait_for_log(STARTED, timeout=60).group(1))
        environ = Path(f'/proc/{pid}/environ').read_bytes().decode()
        assert process.interrupt(timeout=60) == 0, process.log()[-3000:]
        wait_until(lambda: not Path(f'/proc/{pid}').exists(), 20, what='the node to end')
    finally:
        process.stop()
    return dict(item.split('=', 1) for item in environ.split('\0') if '=' in item), \
        process.log()


@pytest.mark.parametrize('launch_file', ['segmentation.launch.py', 'multi_camera.launch.py'])
def test_by_default_the_node_gets_the_large_image_profile(env, tmp_path, launch_file):
    environ, log = _node_environment(env, tmp_path, launch_file, 'threads:=1')
    profile = environ[FASTDDS]
    assert Path(profile).name == 'fastdds_large_images_localhost.xml' and Path(profile).is_file()
    assert FASTRTPS not in environ  # Fast DDS 3 would load the file twice and refuse it
    assert f'Fast DDS profile for every process: {profile} (large_images:=true)' in log
    assert 'XMLPARSER' not in log, log


def test_large_images_false_sets_none(env, tmp_path):
    environ, log = _node_environment(env, tmp_path, 'segmentation.launch.py', 'threads:=1',
                                     'large_images:=false')
    assert FASTDDS not in environ and FASTRTPS not in environ
    assert 'large_images:=false: Fast DDS default transports' in log


def test_a_profile_in_the_environment_wins_over_the_default(env, tmp_path):
    mine = str(CONFIG / 'fastdds_large_images.xml')
    environ, log = _node_environment(env, tmp_path, 'segmentation.launch.py', 'threads:=1',
                                     **{FASTDDS: mine})
    assert environ[FASTDDS] == mine
    assert f'Fast DDS profile from the environment: {FASTDDS}={mine}' in log


def test_dds_profile_gives_another_and_a_missing_one_is_refused_before_start(env, tmp_path):
    docker = str(CONFIG / 'fastdds_large_images_docker.xml')
    environ, _ = _node_environment(env, tmp_path, 'segmentation.launch.py', 'threads:=1',
                                   f'dds_profile:={docker}')
    assert os.path.samefile(environ[FASTDDS], docker)
    process = LoggedCommand(['ros2', 'launch', 'bisenet_ros', 'segmentation.launch.py',
                             'dds_profile:=/nonexistent/profile.xml'], env,
                            tmp_path / 'refused.log')
    try:
        assert process.wait(timeout=60) == 1
        assert 'dds_profile /nonexistent/profile.xml is not a readable file' in process.log()
        assert not re.search(STARTED, process.log())
    finally:
        process.stop()


def test_hd_outputs_of_a_launched_node_reach_a_default_configured_subscriber(
        env, domain, tmp_path, small_v2):
    # This process has no profile, like RViz started on its own; it takes the overlay best
    # effort, the QoS that loses frames on fragmented UDP.
    assert FASTDDS not in os.environ and FASTRTPS not in os.environ
    client = TestClient(domain, name='default_configured_viewer')
    process = LoggedCommand(['ros2', 'launch', 'bisenet_ros', 'segmentation.launch.py',
                             f'model:={small_v2}', 'threads:=1'], env, tmp_path / 'launch.log')
    try:
        process.wait_for_log(r'active: segmenting', timeout=120)
        overlays = client.subscribe(Image, '/overlay', qos_profile_sensor_data)
        diagnostics = client.subscribe(DiagnosticArray, '/diagnostics')
        client.wait_for_publishers(overlays, timeout=60)
        camera = {**env, FASTDDS: str(CONFIG / 'fastdds_large_images_localhost.xml')}
        subprocess.run([sys.executable, '-m', 'bisenet_ros.tools.dds_check', '--role',
                        'publisher', '--topic', '/image', '--count', '30', '--rate', '10',
                        '--width', '1280', '--height', '720', '--timeout', '60'],
                       env=camera, check=True, capture_output=True, timeout=120)

        def published():
            for array in reversed(diagnostics.messages):
                values = {kv.key: kv.value for s in array.status for kv in s.values}
                if int(values.get('frames published', 0)) >= 10:
                    return int(values['frames published'])
            return None
        served = wait_until(published, 30, 0.2, 'the node to serve the frames')
        wait_until(lambda: len(overlays.messages) >= 0.9 * served, 10, 0.2,
                   f'90 % of {served} overlays')
        assert {(m.width, m.height) for m in overlays.messages} == {(1280, 720)}
        assert process.interrupt(timeout=60) == 0
    finally:
        process.stop()
        client.close()
