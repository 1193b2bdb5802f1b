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
Process plumbing shared by the tools that start or are ROS processes.

``stop_process`` ends a child we started (SIGINT first, so it can close bags
and free shared memory; SIGKILL only if it does not exit). ``ros_context``
gives a console script an rclpy context whose SIGINT/SIGTERM only set a flag,
so the tool's loop ends and it cleans up (a bag is closed, counts printed).
``local_ros_env`` is the environment of every ROS process a tool starts.
"""

import contextlib
import os
import random
import signal
import subprocess
import sys


def local_ros_env(profile=None, own_domain=True):
    """
    Return a copy of the environment for ROS processes that must stay on this machine.

    Discovery is limited to loopback; ``own_domain`` draws a random
    ROS_DOMAIN_ID (else one the user set is kept) so a tool's traffic never
    meets the user's running nodes; ``profile`` (a Fast DDS XML file) becomes
    FASTDDS_DEFAULT_PROFILES_FILE, None removes any.
    """
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', PYTHONUNBUFFERED='1')
    env.pop('ROS_LOCALHOST_ONLY', None)  # deprecated; it would override the range
    if own_domain or 'ROS_DOMAIN_ID' not in env:
        env['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, 101))
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    if profile is not None:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(profile)
    return env


def stop_process(process, timeout=20.0):
    """Interrupt ``process`` (a Popen we started) and return its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextlib.contextmanager
def ros_context(program, argv=None):
    """
    Yield ``(context, stop)``: an initialised rclpy context and a list signals land in.

    ``argv`` is the tool's argument list (None: sys.argv); ``--ros-args`` in it
    reach rcl. The previous signal handlers are restored on exit.
    """
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    stop = []
    context = rclpy.Context()
    # rcl reads the first argument as the program name.
    ros_args = [program, *(sys.argv[1:] if argv is None else argv)]
    rclpy.init(args=ros_args, context=context, signal_handler_options=SignalHandlerOptions.NO)
    previous = {s: signal.signal(s, lambda signum, _frame: stop.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield context, stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        context.try_shutdown()
