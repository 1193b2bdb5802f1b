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
Launch the BiSeNet segmentation node, optionally with a camera, RViz and a recorder.

    ros2 launch bisenet_ros segmentation.launch.py image:=/camera/image_raw
    ros2 launch bisenet_ros segmentation.launch.py camera:=v4l2_camera rviz:=true
    ros2 launch bisenet_ros segmentation.launch.py model:=/models/v2.pth device:=cuda
    ros2 launch bisenet_ros segmentation.launch.py large_images:=true record:=true

``ros2 launch bisenet_ros segmentation.launch.py --show-args`` lists every
argument. model, backend, device and image_transport left empty keep the
values of params_file. The node (``bisenet_segmentation``) publishes labels,
color, overlay, confidence and labels/camera_info in ``namespace``.
"""

from bisenet_ros.node import NODE_NAME
from bisenet_ros.node.parameters import CHOICES
from bisenet_ros.render import OUTPUTS as IMAGE_OUTPUTS
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, LogInfo, OpaqueFunction
from launch.actions import SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'bisenet_ros'
OUTPUTS = (*IMAGE_OUTPUTS, 'labels/camera_info')
# What rcl's --log-level accepts; anything else became a traceback inside the node.
LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')
# Camera drivers that can be started alongside: (package, executable). Both
# publish 'image_raw' and 'camera_info' in their namespace.
CAMERA_DRIVERS = {
    'v4l2_camera': ('v4l2_camera', 'v4l2_camera_node'),
    'usb_cam': ('usb_cam', 'usb_cam_node_exe'),
}
# Node parameters that a non-empty launch argument of the same purpose overrides.
PARAMETER_ARGUMENTS = {'model': 'model_path', 'backend': 'backend', 'device': 'device',
                       'image_transport': 'image_transport'}


def _share(*parts):
    return PathJoinSubstitution([FindPackageShare(PACKAGE), *parts])


def declare_arguments():
    """Return the DeclareLaunchArgument actions of this launch file."""
    return [
        DeclareLaunchArgument(
            'model', default_value='',
            description='checkpoint (.pth/.safetensors) or .onnx; empty: as in params_file '
                        '(by default the shipped demonstration model)'),
        DeclareLaunchArgument(
            'backend', default_value='', choices=['', *CHOICES['backend']],
            description='inference backend; empty: as in params_file'),
        DeclareLaunchArgument(
            'device', default_value='', choices=['', *CHOICES['device']],
            description='inference device; empty: as in params_file'),
        DeclareLaunchArgument(
            'namespace', default_value='',
            description='namespace of the node (and of the camera driver)'),
        DeclareLaunchArgument(
            'image', default_value='',
            description="input image topic the node's 'image' is remapped to; empty: "
                        "'image_raw' with a camera driver, else 'image'"),
        DeclareLaunchArgument(
            'camera_info', default_value='',
            description="CameraInfo topic; empty: 'camera_info' beside the image topic"),
        DeclareLaunchArgument(
            'image_transport', default_value='', choices=['', *CHOICES['image_transport']],
            description="'compressed' reads sensor_msgs/CompressedImage on "
                        "'<image>/compressed'; empty: as in params_file"),
        DeclareLaunchArgument(
            'params_file', default_value=_share('config', 'segmentation.yaml'),
            description='parameter file of the node'),
        DeclareLaunchArgument(
            'camera', default_value='none', choices=['none', *CAMERA_DRIVERS],
            description='camera driver to start alongside, in the same namespace'),
        DeclareLaunchArgument(
            'camera_params_file', default_value='',
            description="parameter file of the camera driver; empty: the driver's defaults"),
        DeclareLaunchArgument(
            'rviz', default_value='false', choices=['true', 'false'],
            description='start RViz with the input, overlay and colour mask'),
        DeclareLaunchArgument(
            'rviz_config', default_value=_share('config', 'segmentation.rviz'),
            description='RViz configuration'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', choices=['true', 'false'],
            description='follow /clock (e.g. when playing a bag with --clock)'),
        DeclareLaunchArgument(
            'record', default_value='false', choices=['true', 'false'],
            description='record the output topics with ros2 bag record (MCAP)'),
        DeclareLaunchArgument(
            'record_path', default_value='',
            description="bag directory for record:=true; empty: ros2 bag's rosbag2_<time>"),
        DeclareLaunchArgument(
            'large_images', default_value='false', choices=['true', 'false'],
            description='use the Fast DDS profile with a 64 MiB shared-memory segment '
                        '(FASTDDS_DEFAULT_PROFILES_FILE) for every process of this launch'),
        DeclareLaunchArgument(
            'dds_profile', default_value=_share('config', 'fastdds_large_images.xml'),
            description='Fast DDS profile for large_images:=true'),
        DeclareLaunchArgument(
            'log_level', default_value='info', choices=list(LOG_LEVELS),
            description='log level of the segmentation node'),
    ]


def _absolute(namespace, topic):
    """Return ``topic`` resolved against ``namespace`` as ROS does for relative names."""
    if topic.startswith('/'):
        return topic
    return '/'.join(['', *[p for p in namespace.split('/') if p], topic])


def _sibling(topic, name):
    """Return the topic ``name`` next to ``topic`` ('/cam/image_raw' -> '/cam/name')."""
    parent, _, _ = topic.rpartition('/')
    return f'{parent}/{name}' if parent or topic.startswith('/') else name


def launch_setup(context):
    """Build the node, the camera driver, RViz and the recorder from the arguments."""
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    namespace = arg('namespace').strip('/')
    camera = arg('camera')
    use_sim_time = arg('use_sim_time') == 'true'
    image = arg('image') or ('image_raw' if camera != 'none' else 'image')
    camera_info = arg('camera_info') or _sibling(image, 'camera_info')

    # Typed as strings, so a value is never read as YAML (a path stays a path).
    overrides = {parameter: ParameterValue(arg(argument), value_type=str)
                 for argument, parameter in PARAMETER_ARGUMENTS.items() if arg(argument)}
    overrides['use_sim_time'] = use_sim_time
    actions = [Node(
        package=PACKAGE, executable='segmentation_node', name=NODE_NAME,
        namespace=namespace or None,
        # The parameter file first: arguments given on the command line win.
        parameters=[arg('params_file'), overrides],
        remappings=[('image', image), ('camera_info', camera_info)],
        ros_arguments=['--log-level', arg('log_level')],
        output='screen', emulate_tty=True)]

    if camera != 'none':
        package, executable = CAMERA_DRIVERS[camera]
        camera_parameters = [{'use_sim_time': use_sim_time}]
        if arg('camera_params_file'):
            camera_parameters.insert(0, arg('camera_params_file'))
        actions.append(Node(
            package=package, executable=executable, name='camera',
            namespace=namespace or None, parameters=camera_parameters, output='screen'))

    if arg('rviz') == 'true':
        # The RViz file names fixed topics; remapping points them at this launch's.
        displayed = {'/bisenet/input': _absolute(namespace, image),
                     '/bisenet/overlay': _absolute(namespace, 'overlay'),
                     '/bisenet/color': _absolute(namespace, 'color')}
        actions.append(Node(
            package='rviz2', executable='rviz2', name='rviz2',
            arguments=['-d', arg('rviz_config')],
            parameters=[{'use_sim_time': use_sim_time}],
            remappings=list(displayed.items()), output='screen'))

    if arg('record') == 'true':
        topics = [_absolute(namespace, t) for t in OUTPUTS]
        command = ['ros2', 'bag', 'record', '--storage', 'mcap', '--topics', *topics]
        if arg('record_path'):
            command += ['--output', arg('record_path')]
        if use_sim_time:
            command.append('--use-sim-time')
        actions.append(ExecuteProcess(cmd=command, name='record', output='screen'))
    return actions


def generate_launch_description():
    """Return the launch description (arguments, DDS profile, then the processes)."""
    large_images = IfCondition(LaunchConfiguration('large_images'))
    return LaunchDescription([
        *declare_arguments(),
        # Before any process starts, so the camera driver, the node and RViz all get it:
        # every publishing process needs the larger segment.
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE',
                               LaunchConfiguration('dds_profile'), condition=large_images),
        LogInfo(msg=['Fast DDS profile: ', LaunchConfiguration('dds_profile')],
                condition=large_images),
        OpaqueFunction(function=launch_setup),
    ])
