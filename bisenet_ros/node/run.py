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

"""Run the segmentation node as a process: ``run`` and its one-line errors."""

import re
import signal
import sys

from bisenet_ros.node import NODE_NAME
from bisenet_ros.node.parameters import command_line_values, dropped_value
from bisenet_ros.node.segmentation_node import SegmentationNode, StartError
import rclpy
from rclpy.exceptions import ParameterException, ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

# rclpy words a rejected value as 'Invalid parameter value (V) for parameter.
# Reason: R: NAME'; say it as 'parameter NAME: R' instead.
_REJECTED_RE = re.compile(
    r'^Invalid parameter value \((.*)\) for parameter\. Reason: (.*): (\S+)$', re.DOTALL)


def _one_line(exc):
    text = str(exc)
    match = _REJECTED_RE.match(text) if isinstance(exc, ParameterException) else None
    if match:
        text = f'parameter {match.group(3)}: {match.group(2)}'
    return ' '.join(text.split())


def _check_command_line(node, argv):
    """Raise StartError for a ``-p`` value that rcl dropped when merging a params file."""
    for name, given in command_line_values(argv).items():
        if not node.has_parameter(name):
            continue  # reported as an unknown parameter by the node itself
        try:
            effective = node.get_parameter(name).value
        except ParameterUninitializedException:  # 'cameras: []' has no type
            continue
        reason = dropped_value(name, given, effective)
        if reason:
            raise StartError(reason)


def run(args, received):
    """
    Run the node until a signal lands in ``received``; return 0, or 1 when it cannot start.

    The caller's SIGINT/SIGTERM handlers only append to ``received`` (see
    ``bisenet_ros.node.main``); rclpy installs none of its own.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    code = 0
    try:
        if not received:
            node = SegmentationNode()
            _check_command_line(node, sys.argv if args is None else args)
            if node.autostart:
                node.start()
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            # Short waits, so the signal handlers (Python code) run soon after a signal.
            while not received and rclpy.ok():
                executor.spin_once(timeout_sec=0.2)
    except ExternalShutdownException:
        pass
    except (StartError, ParameterException) as exc:
        if not received:  # a signal during the start only asked to stop
            print(f'{NODE_NAME}: {_one_line(exc)}', file=sys.stderr)
            code = 1
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
        # Python's exit puts back the default handlers, which would kill the process
        # with the signal's status: signals after the cleanup are ignored instead.
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
    return code
