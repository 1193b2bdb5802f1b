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
The node's topics: QoS profiles, one camera's subscriptions and publishers, the class table.

Topic names are relative, so they follow the node's namespace; with cameras,
each camera's names sit under ``<cam>/``.
"""

import copy
import functools
import json

from bisenet_ros.cityscapes import IGNORE_ID
from bisenet_ros.image_msgs import compressed_to_rgb, image_to_rgb
from bisenet_ros.node.interface import (CAMERA_INFO_INPUT, CAMERA_INFO_OUTPUT, IMAGE_INPUT,
                                        IMAGE_OUTPUTS, LABEL_INFO)
from bisenet_ros.node.stats import CameraStats
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data, QoSProfile,
                       ReliabilityPolicy)
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

# Outputs: reliable and volatile so RViz and `ros2 bag record` connect with their
# defaults; a small depth so a slow consumer cannot make memory grow.
OUTPUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
# Latched (as vision_msgs asks for LabelInfo): a consumer that starts later still gets the
# class table.
CLASS_INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Camera:
    """Topics and state of one camera."""

    def __init__(self, name, now):
        self.name = name
        self.prefix = f'{name}/' if name else ''
        self.stats = CameraStats(now)
        self.input_topic = ''
        self.camera_info = None
        self.info_size_warned = False  # a CameraInfo for another image size is said once
        self.decode = image_to_rgb  # or compressed_to_rgb: chosen at configure
        self.counts_lost = False  # whether the RMW reports frames lost on the wire
        self.lost_warned = False  # the first loss is said once
        self.subscriptions = []
        self.publishers = {}

    def create_topics(self, node, transport, on_image, on_camera_info, label_info_class=None,
                      on_lost=None):
        """
        Create this camera's subscriptions and publishers on ``node``.

        ``label_info_class`` (vision_msgs' LabelInfo, when importable) adds the
        latched 'label_info' beside the masks. ``on_lost(camera, info)`` is
        called with the RMW's count of images lost on the wire, where the RMW
        reports it (``counts_lost`` says whether).
        """
        overrides = QoSOverridingOptions.with_default_policies()

        # rclpy writes a topic's qos_overrides into the profile it is given: each
        # topic gets its own copy so an override does not leak to the next.
        def sensor_qos():
            return copy.copy(qos_profile_sensor_data)

        def output_qos():
            return copy.copy(OUTPUT_QOS)

        if transport == 'compressed':
            # As image_transport does: remap the base name, then add the transport.
            self.input_topic = (node.resolve_topic_name(self.prefix + IMAGE_INPUT)
                                + '/compressed')
            self.decode = compressed_to_rgb
            msg_type = CompressedImage
        else:
            self.input_topic = node.resolve_topic_name(self.prefix + IMAGE_INPUT)
            msg_type = Image
        self.subscriptions.append(self._image_subscription(
            node, msg_type, functools.partial(on_image, self), sensor_qos(), overrides,
            on_lost and functools.partial(on_lost, self)))
        self.subscriptions.append(node.create_subscription(
            CameraInfo, self.prefix + CAMERA_INFO_INPUT,
            functools.partial(on_camera_info, self), sensor_qos(),
            qos_overriding_options=overrides))
        for output in IMAGE_OUTPUTS:
            self.publishers[output] = node.create_publisher(
                Image, self.prefix + output, output_qos(), qos_overriding_options=overrides)
        self.publishers['camera_info'] = node.create_publisher(
            CameraInfo, self.prefix + CAMERA_INFO_OUTPUT, output_qos(),
            qos_overriding_options=overrides)
        if label_info_class is not None:
            self.publishers['label_info'] = node.create_publisher(
                label_info_class, self.prefix + LABEL_INFO, copy.copy(CLASS_INFO_QOS))

    def _image_subscription(self, node, msg_type, callback, qos, overrides, on_lost):
        events = SubscriptionEventCallbacks(message_lost=on_lost) if on_lost else None
        try:
            subscription = node.create_subscription(
                msg_type, self.input_topic, callback, qos, qos_overriding_options=overrides,
                event_callbacks=events)
        except UnsupportedEventTypeError:  # an RMW that does not count lost messages
            # rclpy destroyed the half-made subscription; its QoS parameters stay declared.
            subscription = node.create_subscription(
                msg_type, self.input_topic, callback, qos, qos_overriding_options=overrides)
            events = None
        self.counts_lost = events is not None
        return subscription

    def destroy_topics(self, node):
        """Destroy this camera's subscriptions and publishers."""
        for subscription in self.subscriptions:
            node.destroy_subscription(subscription)
        for publisher in self.publishers.values():
            node.destroy_publisher(publisher)
        self.subscriptions, self.publishers = [], {}


def class_info_json(segmenter):
    """Return the class table the node latches on 'class_info'."""
    info = segmenter.info
    return json.dumps({
        'class_names': list(info.class_names),
        'palette': [list(colour) for colour in info.palette],
        'ignore_label': IGNORE_ID,
        'labels_encoding': 'mono8, pixel value = class index',
        'arch': info.arch,
        'model': str(segmenter.model_path.name),
    })
