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

import os
import re
import signal
import sys

from bisenet_ros.native_stderr import held_native_stderr
from bisenet_ros.node import NODE_NAME
from bisenet_ros.node.segmentation_node import SegmentationNode, StartError
import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.signals import SignalHandlerOptions

RCLError = rclpy_implementation.RCLError

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


# DDS derives UDP ports from the domain: past 232 they pass 65535, and Fast DDS
# ends the process from inside node creation, with no exception to report.
MAX_DOMAIN_ID = 232


def _domain_problem(environ):
    text = environ.get('ROS_DOMAIN_ID', '').strip()
    if text.isdigit() and int(text) > MAX_DOMAIN_ID:
        return (f'ROS_DOMAIN_ID {text} is out of range: DDS computes its ports from it; use '
                f'0..101 (the range safe on Linux), at most {MAX_DOMAIN_ID}')
    return None


def _rcl_refusal(exc):
    """Return rcl's refusal of the ROS arguments as one line, without its source locations."""
    text = re.sub(r',? at /\S+:\d+', '', str(exc))
    text = text.replace('failed to initialize rcl: ', '').replace('. Error: error not set', '')
    what = 'invalid ROS arguments' if "Couldn't parse" in text else 'cannot start ROS'
    return f'{what}: {" ".join(text.split())}'


def run(args, received):
    """
    Run the node until a signal lands in ``received``; return 0, 1 or 2.

    1: the node cannot start (model, parameter values); 2: rcl refuses the ROS
    arguments (a remap rule, a params file it cannot parse) or the environment
    (ROS_DOMAIN_ID).

    The caller's SIGINT/SIGTERM handlers only append to ``received`` (see
    ``bisenet_ros.node.main``); rclpy installs none of its own.
    """
    problem = _domain_problem(os.environ)
    if problem:
        print(f'{NODE_NAME}: cannot start ROS: {problem}', file=sys.stderr)
        return 2
    try:  # rcl's own log lines about what it refuses are held back: one line is ours
        with held_native_stderr():
            rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except RCLError as exc:  # e.g. a remap rule or params file rcl cannot parse
        print(f'{NODE_NAME}: {_rcl_refusal(exc)}', file=sys.stderr)
        return 2
    node = None
    code = 0
    try:
        if not received:
            node = SegmentationNode(ros_argv=sys.argv if args is None else args)
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
