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
Helpers for tests that talk to a node process over real DDS.

Every ROS participant the tests create (this process and the node processes)
uses LOCALHOST discovery and one random domain per test run, so nothing leaves
loopback and parallel runs do not see each other. Waits poll the ROS graph or
the received messages instead of sleeping for fixed times.
"""

import os
from pathlib import Path
import random
import re
import signal
import subprocess
import sys
import threading
import time

from bisenet_ros.tools.processes import stop_process
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TIMEOUT = 20.0


def random_domain_id():
    """Return a ROS domain id for one test run (1..101, the range safe on Linux)."""
    return random.SystemRandom().randint(1, 101)


def ros_environment(domain_id, **extra):
    """Return os.environ plus the settings every ROS process in the tests needs."""
    env = dict(os.environ)
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=str(domain_id),
               PYTHONUNBUFFERED='1', RCUTILS_COLORIZED_OUTPUT='0', OMP_NUM_THREADS='1')
    env.pop('ROS_LOCALHOST_ONLY', None)
    env.update({key: str(value) for key, value in extra.items()})
    return env


def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02, what='condition'):
    """Poll ``predicate`` until it returns a true value, which is returned; fail on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}')
        time.sleep(interval)


class LoggedProcess:
    """A ``python -m <module> <args>`` process with its output in a log file."""

    def __init__(self, argv, env, log_path):
        """Start ``python -m *argv``; stdout and stderr both go to ``log_path``."""
        self._start([sys.executable, '-m', *argv], env, log_path)

    def _start(self, command, env, log_path, **popen):
        self.log_path = Path(log_path)
        self._log_file = open(self.log_path, 'wb')
        self.process = subprocess.Popen(
            [str(a) for a in command], cwd=REPO, env=env, stdout=self._log_file,
            stderr=subprocess.STDOUT, **popen)
        self.pid = self.process.pid

    def log(self):
        """Return everything the process has written so far."""
        return self.log_path.read_text(errors='replace')

    def wait_for_log(self, pattern, timeout=DEFAULT_TIMEOUT):
        """Return the first match of regex ``pattern`` in the log; fail on timeout or exit."""
        def found():
            match = re.search(pattern, self.log())
            if match is None and self.process.poll() is not None:
                raise AssertionError(f'process exited ({self.process.returncode}) before '
                                     f'logging {pattern!r}:\n{self.log()}')
            return match
        return wait_until(found, timeout, 0.05, f'{pattern!r} in the log')

    def wait(self, timeout):
        """Wait for the process to exit by itself; return its exit code."""
        return self.process.wait(timeout)

    def interrupt(self, timeout=30.0):
        """Send SIGINT (Ctrl-C) to this process only and return its exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def stop(self):
        """End the process if it still runs (SIGINT, then SIGKILL), and close the log."""
        stop_process(self.process, 15)
        self._log_file.close()


def _default_sigint():
    # A test run started as a background job inherits SIGINT ignored; a command typed in a
    # terminal always has it, and `ros2 launch` only ends its processes on it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class LoggedCommand(LoggedProcess):
    """A command as typed in a terminal (``ros2 launch ...``), its output in a log file."""

    def __init__(self, command, env, log_path):
        """Start ``command`` with SIGINT as in a terminal; its output goes to ``log_path``."""
        self._start(command, env, log_path, preexec_fn=_default_sigint)


def activated_environment(domain_id, venv=None):
    """
    Return the environment ``. <venv>/bin/activate`` gives, in LOCALHOST discovery on a domain.

    The venv's own activate script is sourced, as a user does, so its
    AMENT_PREFIX_PATH is the one the ``ros2`` commands see.
    """
    venv = Path(venv or sys.prefix)
    env = ros_environment(domain_id)
    for name in ('AMENT_PREFIX_PATH', 'VIRTUAL_ENV'):
        env.pop(name, None)
    done = subprocess.run(['bash', '-c', f'. "{venv}/bin/activate" && env -0'], env=env,
                          capture_output=True, check=True)
    return dict(item.split('=', 1) for item in done.stdout.decode().split('\0') if '=' in item)


class NodeProcess(LoggedProcess):
    """A ``python -m bisenet_ros.node --ros-args ...`` process."""

    def __init__(self, ros_args, env, log_path, module='bisenet_ros.node'):
        """Start the node; stdout and stderr both go to ``log_path``."""
        super().__init__([module, '--ros-args', *ros_args], env, log_path)

    def shared_memory_files(self):
        """Return the /dev/shm files the running process has mapped."""
        files = set()
        with open(f'/proc/{self.pid}/maps') as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip() if len(line.split()) >= 6 else ''
                if path.startswith('/dev/shm/'):
                    files.add(path)
        return files


def run_node_to_exit(ros_args, env, timeout=120.0):
    """Run the node expecting it to exit by itself; return (exit code, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, '-m', 'bisenet_ros.node', '--ros-args', *ros_args], cwd=REPO,
        env=env, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


class Inbox:
    """Messages received on one subscription, with waits."""

    def __init__(self):
        """Start empty."""
        self.messages = []
        self._changed = threading.Condition()

    def __call__(self, msg):
        """Store ``msg`` (the subscription callback)."""
        with self._changed:
            self.messages.append(msg)
            self._changed.notify_all()

    def wait_for(self, predicate, timeout=DEFAULT_TIMEOUT):
        """Return the first message satisfying ``predicate``, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for msg in self.messages:
                    if predicate(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def with_stamp(self, stamp, timeout=DEFAULT_TIMEOUT):
        """Return the first message whose header stamp equals ``stamp``, or None."""
        return self.wait_for(lambda m: (m.header.stamp.sec, m.header.stamp.nanosec)
                             == (stamp.sec, stamp.nanosec), timeout)

    def clear(self):
        """Forget received messages."""
        with self._changed:
            self.messages.clear()


class TestClient:
    """A node in the test process, spinning in a background thread."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, domain_id, name='bisenet_test_client'):
        """Join ``domain_id`` with LOCALHOST discovery, without touching signal handlers."""
        os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._clients = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # the context was shut down under it
            pass

    def subscribe(self, msg_type, topic, qos=10):
        """Return an Inbox filled by a new subscription to ``topic``."""
        inbox = Inbox()
        inbox.subscription = self.node.create_subscription(msg_type, topic, inbox, qos)
        return inbox

    def unsubscribe(self, inbox):
        """Destroy the subscription that fills ``inbox``."""
        self.node.destroy_subscription(inbox.subscription)

    def publisher(self, msg_type, topic, qos=10):
        """Return a publisher on ``topic``."""
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher, count=1, timeout=DEFAULT_TIMEOUT):
        """Wait until ``publisher`` has matched ``count`` subscriptions."""
        wait_until(lambda: publisher.get_subscription_count() >= count, timeout,
                   what=f'{count} subscriber(s) on {publisher.topic_name}')

    def wait_for_publishers(self, inbox, count=1, timeout=DEFAULT_TIMEOUT):
        """Wait until the subscription of ``inbox`` has matched ``count`` publishers."""
        wait_until(lambda: inbox.subscription.get_publisher_count() >= count, timeout,
                   what=f'{count} publisher(s) on {inbox.subscription.topic_name}')

    def call(self, srv_type, name, request, timeout=DEFAULT_TIMEOUT, attempt=3.0):
        """
        Call service ``name`` and return its response, or None when none came in time.

        The request is sent again every ``attempt`` seconds: a server can drop a
        response while it has not yet discovered the client's reply reader.
        Pass ``attempt=None`` for requests that must not be repeated.
        """
        client = self._clients.get((srv_type, name))
        if client is None:
            client = self._clients[(srv_type, name)] = self.node.create_client(srv_type, name)
        deadline = time.monotonic() + timeout
        if not client.wait_for_service(timeout_sec=timeout):
            raise AssertionError(f'service {name} did not appear within {timeout:.0f} s')
        while time.monotonic() < deadline:
            future = client.call_async(request)
            attempt_end = min(deadline, time.monotonic() + (attempt or timeout))
            while not future.done() and time.monotonic() < attempt_end:
                time.sleep(0.02)
            if future.done():
                return future.result()
            client.remove_pending_request(future)
            if attempt is None:
                return None
        return None

    def close(self):
        """Stop spinning and leave the ROS graph."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(10)
