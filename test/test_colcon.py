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
The package builds with colcon as ament_python and its installed node serves frames.

colcon-common-extensions comes from PyPI; the workspace is a temporary copy
of the tracked sources. The node is started as a ROS 2 workspace starts it:
``source install/setup.bash`` then ``install/bisenet_ros/lib/bisenet_ros/
segmentation_node`` (what ``ros2 run`` and launch_ros execute).
"""

import os
from pathlib import Path
import signal
import subprocess

from bisenet_ros.checkpoint import save_checkpoint
from bisenet_ros.image_msgs import fill_image
from bisenet_ros.models import build_model
import numpy as np
import pytest
from ros_helpers import random_domain_id, ros_environment, TestClient, wait_until
from sensor_msgs.msg import Image
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def workspace(colcon_workspace):
    """Return (workspace root, `colcon list` output) with bisenet_ros built and installed."""
    return colcon_workspace


def test_colcon_identifies_an_ament_python_package(workspace):
    _, listing = workspace
    assert 'bisenet_ros' in listing and '(ros.ament_python)' in listing


def test_install_has_the_executable_index_marker_and_share_files(workspace):
    prefix = workspace[0] / 'install' / 'bisenet_ros'
    assert os.access(prefix / 'lib' / 'bisenet_ros' / 'segmentation_node', os.X_OK)
    share = prefix / 'share'
    assert (share / 'ament_index' / 'resource_index' / 'packages' / 'bisenet_ros').exists()
    for name in ('package.xml', 'config/segmentation.yaml', 'launch/segmentation.launch.py',
                 'config/fastdds_large_images.xml', 'config/segmentation.rviz'):
        assert (share / 'bisenet_ros' / name).exists(), name


def test_the_installed_node_serves_a_frame(workspace, tmp_path):
    torch.manual_seed(0)
    model = tmp_path / 'small.safetensors'
    save_checkpoint(model, build_model('bisenetv2', aux=False).eval(),
                    {'arch': 'bisenetv2', 'input_size': [128, 64]})
    domain = random_domain_id()
    env = ros_environment(domain)
    command = ('source install/setup.bash && exec install/bisenet_ros/lib/bisenet_ros/'
               f'segmentation_node --ros-args -p model_path:={model} -p threads:=1 '
               '-r __ns:=/installed')
    log = open(tmp_path / 'node.log', 'wb')
    node = subprocess.Popen(['bash', '-c', command], cwd=workspace[0], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    client = TestClient(domain)
    try:
        labels = client.subscribe(Image, '/installed/labels')
        publisher = client.publisher(Image, '/installed/image')
        client.wait_for_subscribers(publisher, timeout=120)
        rgb = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
        msg = fill_image(Image(), rgb, 'rgb8')
        msg.header.frame_id = 'installed_camera'
        msg.header.stamp.sec = 42

        def served():
            publisher.publish(msg)
            return labels.wait_for(lambda m: m.header.stamp.sec == 42, timeout=2.0)
        reply = wait_until(served, timeout=60, what='labels from the installed node')
        assert (reply.height, reply.width, reply.header.frame_id) == (48, 80,
                                                                      'installed_camera')
    finally:
        client.close()
        node.send_signal(signal.SIGINT)
        try:
            node.wait(30)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        log.close()
    assert node.returncode == 0, (tmp_path / 'node.log').read_text()[-2000:]
