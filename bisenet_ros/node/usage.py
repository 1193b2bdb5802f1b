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
The node's own command line: ``--help`` (usage, parameters, topics) and nothing else.

Everything a node takes goes after ``--ros-args`` (rcl reads it); the only
argument of its own is ``-h``/``--help``, which prints and exits without
starting ROS. Anything else outside ``--ros-args`` is refused, so a misplaced
``-p`` cannot start a node that silently ignores it. The parameter tables are
imported only for ``--help``.
"""

import argparse
import os
import sys
import textwrap

from bisenet_ros.node.interface import (CAMERA_INFO_INPUT, CAMERA_INFO_OUTPUT, CLASS_INFO,
                                        EXECUTABLE, IMAGE_INPUT, LABEL_INFO, NODE_NAME, PACKAGE)

WIDTH = 99

DESCRIPTION = (
    f'The BiSeNet semantic segmentation node ({NODE_NAME}): camera images in; labels, colour '
    'mask, overlay and confidence out. A lifecycle node that configures (loads the model) and '
    'activates itself at start unless autostart is false. Everything it takes goes after '
    '--ros-args.')

ROS_ARGUMENTS = (
    ('--params-file FILE', 'parameters from YAML (config/segmentation.yaml documents each)'),
    ('-p NAME:=VALUE', 'one parameter; wins over the params file'),
    ('-r image:=/camera/image_raw', 'read another image topic (remap any topic alike)'),
    ('-r __ns:=/front', 'run in a namespace; every topic below is relative'),
    ('-r __node:=NAME', f'another node name (default: {NODE_NAME})'),
    ('--log-level LEVEL', 'debug, info, warn, error or fatal'),
)

# (topic, direction, type and meaning); <cam>/ in front of each per-camera name with cameras.
TOPICS = (
    (IMAGE_INPUT, 'in', 'sensor_msgs/Image, best effort (sensor data QoS); with '
     "image_transport 'compressed': sensor_msgs/CompressedImage on <image topic>/compressed"),
    (CAMERA_INFO_INPUT, 'in', 'sensor_msgs/CameraInfo'),
    ('labels', 'out', 'sensor_msgs/Image mono8, class index per pixel (255 = ignore), '
     'reliable'),
    ('color', 'out', 'sensor_msgs/Image rgb8, palette colours'),
    ('overlay', 'out', 'sensor_msgs/Image rgb8, the input blended with color'),
    ('confidence', 'out', 'sensor_msgs/Image mono8, 255 x max class probability '
     '(publish_confidence)'),
    (CAMERA_INFO_OUTPUT, 'out', "sensor_msgs/CameraInfo, the camera's with each labels header"),
    (LABEL_INFO, 'out', 'vision_msgs/LabelInfo, latched'),
    (CLASS_INFO, 'out', 'std_msgs/String, JSON class names and palette, latched (one per '
     'node)'),
    ('/diagnostics', 'out', 'diagnostic_msgs/DiagnosticArray, one status per camera: rates, '
     'lost and dropped frames, latency, errors'),
)

EXAMPLES = (
    f'ros2 run {PACKAGE} {EXECUTABLE} --ros-args -r image:=/camera/image_raw',
    f'ros2 run {PACKAGE} {EXECUTABLE} --ros-args -p model_path:=/models/v2.pth',
    'python -m bisenet_ros.node --ros-args --params-file config/segmentation.yaml',
    f'ros2 launch {PACKAGE} segmentation.launch.py   (the large-image DDS profile included)',
)


def split_ros_arguments(argv):
    """Return the tokens of ``argv`` (program name excluded) outside ``--ros-args`` sections."""
    own, ros = [], False
    for token in argv:
        if token == '--ros-args':
            ros = True
        elif ros and token == '--':
            ros = False
        elif not ros:
            own.append(token)
    return own


def _program(argv0):
    name = os.path.basename(argv0 or '')
    if name in ('__main__.py', ''):
        return 'python -m bisenet_ros.node'
    return name


def _entry(name, text, indent=2, column=30):
    """Return ``name`` and ``text`` as one wrapped, aligned help entry."""
    head = ' ' * indent + name
    hanging = ' ' * column
    if len(head) >= column - 1:
        return head + '\n' + textwrap.fill(text, WIDTH, initial_indent=hanging,
                                           subsequent_indent=hanging)
    return textwrap.fill(text, WIDTH, initial_indent=head.ljust(column),
                         subsequent_indent=hanging)


def _allowed(descriptor):
    """Return what a ParameterDescriptor accepts, in words ('' when anything of its type)."""
    if descriptor.integer_range:
        bounds = descriptor.integer_range[0]
        step = f' in steps of {bounds.step}' if bounds.step > 1 else ''
        return f'{bounds.from_value}..{bounds.to_value}{step}'
    if descriptor.floating_point_range:
        bounds = descriptor.floating_point_range[0]
        return f'{bounds.from_value:g}..{bounds.to_value:g}'
    return descriptor.additional_constraints


def _parameter_entries(table):
    from rclpy.parameter import Parameter
    lines = []
    for name, (default, descriptor) in table.items():
        if isinstance(default, Parameter.Type):  # declared by type alone: no value
            default = '[]'
        elif isinstance(default, bool):  # as YAML and `ros2 param set` write it
            default = str(default).lower()
        else:
            default = repr(default)
        allowed = _allowed(descriptor)
        # The section heading already says when these take effect.
        description = descriptor.description.split(' Takes effect at configure')[0]
        text = f'{description} (default: {default}'
        text += f'; {allowed})' if allowed else ')'
        lines.append(_entry(name, text))
    return lines


def help_epilog():
    """Return the help text after the usage: ROS arguments, parameters, topics, examples."""
    from bisenet_ros.node.parameters import AUTOSTART, LIVE_PARAMETERS, STRUCTURAL_PARAMETERS
    name, default, descriptor = AUTOSTART
    sections = [
        ['ROS arguments (after --ros-args):',
         *(_entry(flag, text) for flag, text in ROS_ARGUMENTS)],
        ['parameters read at configure (set them while unconfigured):',
         *_parameter_entries({name: (default, descriptor), **STRUCTURAL_PARAMETERS})],
        ['parameters that change the running node (ros2 param set):',
         *_parameter_entries(LIVE_PARAMETERS)],
        ["topics, relative to the node's namespace (with cameras: each per-camera name under "
         '<cam>/):',
         *(_entry(f'{topic} ({direction})', text) for topic, direction, text in TOPICS)],
        ['examples:', *('  ' + line for line in EXAMPLES)],
    ]
    return '\n\n'.join('\n'.join(section) for section in sections)


def parser(prog):
    """Return the argument parser of the node's own command line."""
    return argparse.ArgumentParser(
        prog=prog, usage=f'{prog} [-h] [--ros-args ROS_ARGUMENTS...]',
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)


def check_command_line(argv, prog=None):
    """
    Return an exit status when ``argv`` (program name first) asks for no node, else None.

    0 after printing the help for ``-h``/``--help``; 2 with one error line for
    any other argument outside ``--ros-args``.
    """
    own = split_ros_arguments(argv[1:])
    if not own:
        return None
    command = parser(prog or _program(argv[0] if argv else ''))
    if '-h' in own or '--help' in own:
        command.description = textwrap.fill(DESCRIPTION, WIDTH)
        command.epilog = help_epilog()
        command.print_help()
        return 0
    command.print_usage(sys.stderr)
    print(f'{command.prog}: error: unrecognized arguments: {" ".join(own)} (node parameters '
          'and remaps go after --ros-args; --help lists them)', file=sys.stderr)
    return 2
