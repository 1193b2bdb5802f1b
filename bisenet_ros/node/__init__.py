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
The ROS 2 segmentation node: camera images in; labels, colour mask, overlay out.

Run it with ``python -m bisenet_ros.node --ros-args --params-file
config/segmentation.yaml`` (or the ``segmentation_node`` executable). It is a
lifecycle node that configures and activates itself unless ``autostart`` is
false:

- configure: load the model, create publishers, subscriptions and diagnostics;
- activate: publish the class table and start the inference worker;
- deactivate: stop the worker (waiting for the frame in flight);
- cleanup: destroy the topics and release the model. Python and CUDA memory
  of the model is released, but a CUDA context, once created, stays with the
  process until it exits.

Topics, relative to the node's namespace, with ``<cam>/`` in front of each
per-camera name when ``cameras`` lists cameras:

- in: ``<cam>/image`` (sensor_msgs/Image) or, with image_transport
  'compressed', ``<resolved image topic>/compressed``
  (sensor_msgs/CompressedImage); ``<cam>/camera_info``;
- out: ``<cam>/labels`` (mono8 trainIds, 255 = ignore), ``<cam>/color`` and
  ``<cam>/overlay`` (rgb8), ``<cam>/confidence`` (mono8, 255 x max class
  probability), ``<cam>/labels/camera_info`` (the camera's latest CameraInfo
  with the segmented frame's header, for exact time synchronisation), and
  ``class_info`` (std_msgs/String, JSON class names and palette, latched);
- ``/diagnostics`` (diagnostic_msgs/DiagnosticArray), one status per camera.

Rooms: ``parameters`` (declarations, one table of choices, checks),
``segmentation_node`` (lifecycle and wiring), ``topics`` (QoS, one camera's
topics, the class table), ``worker`` (what each frame goes through),
``diagnostics`` (/diagnostics), ``run`` (the process: main), and the ROS-free
``frame_queue`` (latest-frame hand-over) and ``stats`` (per-camera figures). Importing this
package imports no ROS: ``main`` loads the node when it runs.
"""

from bisenet_ros.node.interface import NODE_NAME


def main(args=None, prog=None):
    """
    Run the node until SIGINT/SIGTERM; return 0, 1 when it cannot start, 2 on bad arguments.

    ``args`` is a whole command line, program name first (``sys.argv`` when
    None), as rclpy takes it. ``--help`` prints the usage, parameters and
    topics and returns 0 without starting ROS; another argument outside
    ``--ros-args`` returns 2.
    """
    import signal
    import sys
    from bisenet_ros.node.usage import check_command_line
    code = check_command_line(sys.argv if args is None else args, prog)
    if code is not None:
        return code
    received = []
    # From the first moment (the imports below load torch) to the last, a signal
    # is only noted: none becomes an exception, so no second Ctrl-C can cut the
    # cleanup short (a KeyboardInterrupt in the worker's join aborted the
    # process, exit -6, and left Fast DDS files in /dev/shm).
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda signum, frame: received.append(signum))
    from bisenet_ros.node.run import run
    return run(args, received)


__all__ = ['NODE_NAME', 'main']
