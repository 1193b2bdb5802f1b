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
Segment several cameras with ONE node (one model in memory, frames batched).

    ros2 launch bisenet_ros multi_camera.launch.py cameras:='[front, left]'
    ros2 launch bisenet_ros multi_camera.launch.py cameras:='[front, left]' image_name:=image_raw

For each camera ``<cam>`` the node reads ``<cam>/image`` (remapped to
``<cam>/<image_name>``, e.g. a driver's ``front/image_raw``) and
``<cam>/camera_info``, and publishes ``<cam>/labels``, ``<cam>/color``,
``<cam>/overlay``, ``<cam>/confidence``, ``<cam>/labels/camera_info`` and
``<cam>/label_info``, all inside ``namespace``. It takes the node arguments of
segmentation.launch.py (precision, threads, ...), gives the node the same
large-image Fast DDS profile (``large_images``, ``dds_profile``) and ends as it
does.
"""

from bisenet_ros.launch_support import (check_arguments, configuration, dds_profile_actions,
                                        declare_dds_arguments, declare_node_arguments,
                                        end_launch_with, node_overrides, require_file)
from bisenet_ros.node.interface import EXECUTABLE, IMAGE_INPUT, NODE_NAME, PACKAGE
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.logging import get_logger
from launch.substitutions import PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

import yaml


def _share(*parts):
    return PathJoinSubstitution([FindPackageShare(PACKAGE), *parts])


def parse_cameras(text):
    """Return the camera names of ``'[front, left]'`` (or ``'front,left'``) as a list."""
    value = yaml.safe_load(text) if text.strip().startswith('[') else text.split(',')
    if not isinstance(value, list):
        raise RuntimeError(f"cameras must be a list like '[front, left]', got {text!r}")
    cameras = [str(c).strip().strip('/') for c in value if str(c).strip()]
    if not cameras:
        raise RuntimeError(f'cameras names no camera: {text!r}')
    return cameras


def declare_arguments():
    """Return the DeclareLaunchArgument actions of this launch file."""
    return [
        DeclareLaunchArgument('cameras', default_value='[front, left]',
                              description="camera names, e.g. '[front, left]'"),
        DeclareLaunchArgument('image_name', default_value=IMAGE_INPUT,
                              description="image topic name inside each camera's namespace"),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the node'),
        DeclareLaunchArgument('params_file',
                              default_value=_share('config', 'segmentation.yaml'),
                              description='parameter file of the node; the arguments of '
                                          'node parameters override it'),
        *declare_node_arguments(),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              choices=['true', 'false'], description='follow /clock'),
        *declare_dds_arguments(),
    ]


def launch_setup(context):
    """Build the node for the cameras given."""
    arg = configuration(context)
    check_arguments(context, [a.name for a in declare_arguments()],
                    get_logger('bisenet_ros.launch'))
    require_file(arg('params_file'), 'params_file')
    cameras = parse_cameras(arg('cameras'))
    overrides = node_overrides(arg)
    overrides.update(cameras=cameras, use_sim_time=arg('use_sim_time') == 'true')
    remappings = []
    if arg('image_name') != IMAGE_INPUT:
        remappings = [(f'{cam}/{IMAGE_INPUT}', f'{cam}/{arg("image_name")}')
                      for cam in cameras]
    node = Node(
        package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME,
        namespace=arg('namespace').strip('/') or None,
        parameters=[arg('params_file'), overrides], remappings=remappings,
        ros_arguments=['--log-level', arg('log_level')],
        output='screen', emulate_tty=True)
    return [*dds_profile_actions(context), node, end_launch_with(node)]


def generate_launch_description():
    """Return the launch description of the multi-camera example."""
    return LaunchDescription([*declare_arguments(), OpaqueFunction(function=launch_setup)])
