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
    ros2 launch bisenet_ros segmentation.launch.py record:=true

``ros2 launch bisenet_ros segmentation.launch.py --show-args`` lists every
argument. The node's arguments (model, backend, precision, threads, ...) left
empty keep the values of params_file. The node (``bisenet_segmentation``)
publishes labels, color, overlay, confidence, labels/camera_info and
label_info in ``namespace``. Every process it starts gets a Fast DDS profile
with a large shared-memory segment, so camera-size images arrive
(``large_images:=false`` opts out, ``dds_profile:=FILE`` gives another, and a
profile already set in the environment is kept). What cannot run (a misspelt argument, a missing
params file, camera driver, RViz or ``ros2``) is refused before anything
starts; when the node, the camera or the recorder ends, the launch ends, with
status 1 unless it exited cleanly.
"""

from bisenet_ros.launch_support import (check_arguments, configuration, dds_profile_actions,
                                        declare_dds_arguments, declare_node_arguments,
                                        end_launch_with, node_overrides, require_executable,
                                        require_file, require_ros2_verb)
from bisenet_ros.node.interface import (CAMERA_INFO_INPUT, CAMERA_OUTPUTS, EXECUTABLE,
                                        IMAGE_INPUT, NODE_NAME, PACKAGE)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.logging import get_logger
from launch.substitutions import PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

# Camera drivers that can be started alongside: (package, executable). Both
# publish 'image_raw' and 'camera_info' in their namespace.
CAMERA_DRIVERS = {
    'v4l2_camera': ('v4l2_camera', 'v4l2_camera_node'),
    'usb_cam': ('usb_cam', 'usb_cam_node_exe'),
}


def _share(*parts):
    return PathJoinSubstitution([FindPackageShare(PACKAGE), *parts])


def declare_arguments():
    """Return the DeclareLaunchArgument actions of this launch file."""
    return [
        *declare_node_arguments(),
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
            'params_file', default_value=_share('config', 'segmentation.yaml'),
            description='parameter file of the node; the arguments above override it'),
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
        *declare_dds_arguments(),
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


def _check(arg, context):
    """Refuse, before anything starts, what would fail or be ignored once running."""
    check_arguments(context, [a.name for a in declare_arguments()],
                    get_logger('bisenet_ros.launch'))
    require_file(arg('params_file'), 'params_file')
    if arg('camera') != 'none':
        require_executable(*CAMERA_DRIVERS[arg('camera')], f'camera:={arg("camera")}')
        if arg('camera_params_file'):
            require_file(arg('camera_params_file'), 'camera_params_file')
    if arg('rviz') == 'true':
        require_executable('rviz2', 'rviz2', 'rviz:=true')
        require_file(arg('rviz_config'), 'rviz_config')
    if arg('record') == 'true':
        require_ros2_verb('bag', 'rosbag2', 'record:=true')


def launch_setup(context):
    """Build the node, the camera driver, RViz and the recorder from the arguments."""
    arg = configuration(context)
    _check(arg, context)
    namespace = arg('namespace').strip('/')
    camera = arg('camera')
    use_sim_time = arg('use_sim_time') == 'true'
    image = arg('image') or ('image_raw' if camera != 'none' else IMAGE_INPUT)
    camera_info = arg('camera_info') or _sibling(image, CAMERA_INFO_INPUT)

    overrides = node_overrides(arg)
    overrides['use_sim_time'] = use_sim_time
    node = Node(
        package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME,
        namespace=namespace or None,
        # The parameter file first: arguments given on the command line win.
        parameters=[arg('params_file'), overrides],
        remappings=[(IMAGE_INPUT, image), (CAMERA_INFO_INPUT, camera_info)],
        ros_arguments=['--log-level', arg('log_level')],
        output='screen', emulate_tty=True)
    # The profile first, so the camera driver, the node, RViz and the recorder all get it:
    # every process that publishes images needs the larger segment.
    actions = dds_profile_actions(context)
    # The segmentation node, camera and recorder are the launch: when one of them ends,
    # everything ends, with status 1 unless it exited cleanly.
    actions += [node, end_launch_with(node)]

    if camera != 'none':
        package, executable = CAMERA_DRIVERS[camera]
        camera_parameters = [{'use_sim_time': use_sim_time}]
        if arg('camera_params_file'):
            camera_parameters.insert(0, arg('camera_params_file'))
        driver = Node(
            package=package, executable=executable, name='camera',
            namespace=namespace or None, parameters=camera_parameters, output='screen')
        actions += [driver, end_launch_with(driver)]

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
        topics = [_absolute(namespace, t) for t in CAMERA_OUTPUTS]
        command = ['ros2', 'bag', 'record', '--storage', 'mcap', '--topics', *topics]
        if arg('record_path'):
            command += ['--output', arg('record_path')]
        if use_sim_time:
            command.append('--use-sim-time')
        recorder = ExecuteProcess(cmd=command, name='record', output='screen')
        actions += [recorder, end_launch_with(recorder)]
    return actions


def generate_launch_description():
    """Return the launch description (arguments, then the DDS profile and the processes)."""
    return LaunchDescription([*declare_arguments(), OpaqueFunction(function=launch_setup)])
