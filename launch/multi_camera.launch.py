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
``<cam>/overlay``, ``<cam>/confidence`` and ``<cam>/labels/camera_info``,
all inside ``namespace``.
"""

from bisenet_ros.node import NODE_NAME
from bisenet_ros.node.parameters import CHOICES
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

import yaml

PACKAGE = 'bisenet_ros'


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


def launch_setup(context):
    """Build the node for the cameras given."""
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    cameras = parse_cameras(arg('cameras'))
    overrides = {'cameras': cameras, 'use_sim_time': arg('use_sim_time') == 'true'}
    for argument, parameter in (('model', 'model_path'), ('backend', 'backend'),
                                ('device', 'device')):
        if arg(argument):
            overrides[parameter] = ParameterValue(arg(argument), value_type=str)
    remappings = []
    if arg('image_name') != 'image':
        remappings = [(f'{cam}/image', f'{cam}/{arg("image_name")}') for cam in cameras]
    return [Node(
        package=PACKAGE, executable='segmentation_node', name=NODE_NAME,
        namespace=arg('namespace').strip('/') or None,
        parameters=[arg('params_file'), overrides], remappings=remappings,
        output='screen', emulate_tty=True)]


def generate_launch_description():
    """Return the launch description of the multi-camera example."""
    return LaunchDescription([
        DeclareLaunchArgument('cameras', default_value='[front, left]',
                              description="camera names, e.g. '[front, left]'"),
        DeclareLaunchArgument('image_name', default_value='image',
                              description="image topic name inside each camera's namespace"),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the node'),
        DeclareLaunchArgument('params_file',
                              default_value=_share('config', 'segmentation.yaml'),
                              description='parameter file of the node'),
        DeclareLaunchArgument('model', default_value='',
                              description='checkpoint or .onnx; empty: as in params_file'),
        DeclareLaunchArgument('backend', default_value='',
                              choices=['', *CHOICES['backend']],
                              description='inference backend; empty: as in params_file'),
        DeclareLaunchArgument('device', default_value='', choices=['', *CHOICES['device']],
                              description='inference device; empty: as in params_file'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              choices=['true', 'false'], description='follow /clock'),
        DeclareLaunchArgument('large_images', default_value='false',
                              choices=['true', 'false'],
                              description='use the Fast DDS profile with a 64 MiB '
                                          'shared-memory segment'),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE',
                               _share('config', 'fastdds_large_images.xml'),
                               condition=IfCondition(LaunchConfiguration('large_images'))),
        OpaqueFunction(function=launch_setup),
    ])
