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
The node's /diagnostics: one DiagnosticStatus per camera from its statistics.

What the figures mean and when they warn lives in ``stats.diagnostic_status``
(ROS-free); this module only wraps them in diagnostic_msgs.
"""

from bisenet_ros.node.stats import diagnostic_status
from bisenet_ros.runtime import hardware
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.qos import QoSProfile

DIAGNOSTICS_QOS = QoSProfile(depth=10)


def diagnostics_array(stamp, node_name, cameras, active, backend, device, now):
    """Return a DiagnosticArray stamped ``stamp`` with one status per camera."""
    array = DiagnosticArray()
    array.header.stamp = stamp
    machine = hardware.probe().summary()
    for camera in cameras:
        snap = camera.stats.snapshot(now)
        snap.counts_lost = camera.counts_lost
        level, message, values = diagnostic_status(snap, active)
        status = DiagnosticStatus(level=bytes([level]),
                                  name=f'{node_name}: {camera.input_topic}',
                                  message=message, hardware_id=device)
        values += [('backend', backend), ('device', device), ('hardware', machine),
                   ('camera', camera.name or '(single)')]
        status.values = [KeyValue(key=key, value=value) for key, value in values]
        array.status.append(status)
    return array
