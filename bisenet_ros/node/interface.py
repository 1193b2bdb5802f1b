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
The node's public contract: its names, topics and the values its choice parameters take.

Light on purpose (no rclpy, torch or OpenCV): the node, its parameter checks,
both launch files and the tests read this one table, so a launch file cannot
refuse what the node accepts, nor name a topic the node does not publish.
"""

from bisenet_ros.runtime.options import (AUTO, BACKENDS, DEVICES, LABEL_RESIZE, OUTPUTS,
                                         PRECISIONS, RESIZE_POLICIES)

PACKAGE = 'bisenet_ros'
EXECUTABLE = 'segmentation_node'
NODE_NAME = 'bisenet_segmentation'

TRANSPORTS = ('raw', 'compressed')
# Every string parameter with a fixed set of values.
# 'auto' picks the fastest path that keeps the accuracy bar (runtime.auto); '' precision is
# the model file's own.
CHOICES = {'backend': (AUTO, *BACKENDS), 'device': (AUTO, *DEVICES),
           'precision': ('', AUTO, *PRECISIONS),
           'resize': RESIZE_POLICIES, 'label_resize': LABEL_RESIZE,
           'image_transport': TRANSPORTS}

# Topics, relative to the node (and to '<cam>/' when cameras are listed).
IMAGE_INPUT = 'image'
CAMERA_INFO_INPUT = 'camera_info'
IMAGE_OUTPUTS = OUTPUTS  # labels, color, overlay, confidence
CAMERA_INFO_OUTPUT = 'labels/camera_info'
LABEL_INFO = 'label_info'  # vision_msgs/LabelInfo, latched
CAMERA_OUTPUTS = (*IMAGE_OUTPUTS, CAMERA_INFO_OUTPUT, LABEL_INFO)
CLASS_INFO = 'class_info'  # std_msgs/String JSON with the palette, latched, one per node

# What rcl's --log-level accepts.
LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')

# Launch arguments that, when not empty, set the node parameter of the same purpose:
# argument -> (parameter, type of its value).
LAUNCH_PARAMETERS = {
    'model': ('model_path', str),
    'backend': ('backend', str),
    'device': ('device', str),
    'precision': ('precision', str),
    'threads': ('threads', int),
    'input_width': ('input_width', int),
    'input_height': ('input_height', int),
    'resize': ('resize', str),
    'label_resize': ('label_resize', str),
    'max_batch': ('max_batch', int),
    'publish_confidence': ('publish_confidence', bool),
    'max_rate': ('max_rate', float),
    'image_transport': ('image_transport', str),
    'class_table': ('class_table', str),
}
