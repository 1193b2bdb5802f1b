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
Helpers for the bag tests: tool processes and small camera messages.

Shared ROS set-up (domains, environment, the in-process client) lives in
ros_helpers.py; this adds what the recorder and player tests need besides.
"""

from bisenet_ros.media.bags import BagWriter
from rclpy.serialization import serialize_message
from ros_helpers import LoggedProcess
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String


class ToolProcess(LoggedProcess):
    """``python -m <module> <args>`` (a console-script module), output in a log file."""

    def __init__(self, module, args, env, log_path):
        """Start the tool; stdout and stderr both go to ``log_path``."""
        super().__init__([module, *args], env, log_path)


def image_msg(index, width=4, height=2, frame_id='camera_optical'):
    """Return a small rgb8 Image whose stamp and pixels are unique to ``index``."""
    msg = Image(height=height, width=width, encoding='rgb8', step=width * 3)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec = 1_700_000_000 + index
    msg.header.stamp.nanosec = 1000 * index + 7
    msg.data = bytes((index * 17 + i) % 256 for i in range(height * width * 3))
    return msg


def camera_info_msg(index, frame_id='camera_optical'):
    """Return a CameraInfo matching :func:`image_msg` ``index``."""
    msg = CameraInfo(height=2, width=4, distortion_model='plumb_bob')
    msg.header.frame_id = frame_id
    msg.header.stamp = image_msg(index).header.stamp
    return msg


def write_camera_bag(path, count=3, start_ns=5_000_000_000, period_ns=100_000_000,
                     storage='mcap'):
    """
    Write a bag with ``count`` images, camera infos and strings.

    Topics: /cam/image_raw (Image), /cam/camera_info (CameraInfo) and
    /chatter (String, which the player must leave out by default). Returns
    [(image message, the CDR bytes written for it)]: serializing again may
    not give the same bytes, as CDR padding is left uninitialised.
    """
    images = [(msg, serialize_message(msg)) for msg in (image_msg(i) for i in range(count))]
    with BagWriter(path, storage=storage) as bag:
        bag.add_topic('/cam/image_raw', 'sensor_msgs/msg/Image')
        bag.add_topic('/cam/camera_info', 'sensor_msgs/msg/CameraInfo')
        bag.add_topic('/chatter', 'std_msgs/msg/String')
        for i, (_, data) in enumerate(images):
            time_ns = start_ns + i * period_ns
            bag.write('/cam/camera_info', time_ns, serialize_message(camera_info_msg(i)))
            bag.write('/cam/image_raw', time_ns + 1, data)
            bag.write('/chatter', time_ns + 2, serialize_message(String(data=f'{i}')))
    return images
