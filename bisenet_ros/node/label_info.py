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
The class table as vision_msgs/LabelInfo, the convention Nav2 and vision_msgs users read.

vision_msgs comes with a ROS install (ros-<distro>-vision-msgs), not from
pip: without it the node publishes no LabelInfo and says so at configure.
"""

from bisenet_ros.cityscapes import IGNORE_ID


def label_info_type():
    """Return (LabelInfo class, None), or (None, why it is missing)."""
    try:
        from vision_msgs.msg import LabelInfo
    except ImportError as exc:
        return None, (f'vision_msgs is not importable ({exc}): label_info '
                      '(vision_msgs/LabelInfo) is not published; install '
                      'ros-$ROS_DISTRO-vision-msgs. The class table stays on class_info.')
    return LabelInfo, None


def label_info_message(label_info_class, class_names, stamp):
    """
    Return a LabelInfo with one VisionClass per class id (= label pixel value).

    The ignore id (255, vision_msgs' UNLABELED for uint8 ids) is never listed,
    and ``threshold`` is 0.0: labels are a plain argmax, no pixel is set to 255
    for low confidence.
    """
    from vision_msgs.msg import VisionClass
    if len(class_names) > IGNORE_ID:
        raise ValueError(f'{len(class_names)} classes do not fit mono8 labels below '
                         f'the ignore id {IGNORE_ID}')
    message = label_info_class(threshold=0.0)
    message.header.stamp = stamp
    message.class_map = [VisionClass(class_id=index, class_name=str(name))
                         for index, name in enumerate(class_names)]
    return message
