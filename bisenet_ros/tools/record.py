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
Record ROS 2 topics into a rosbag2 (MCAP) without ``ros2 bag`` (``bisenet record``).

Each topic is subscribed once a publisher appears, with its type taken from
the graph and a QoS that matches every publisher: reliable only if all are
reliable, transient-local only if all are. Messages are written as the
serialized bytes that arrived, stamped with the receive time (the ROS clock,
so ``--ros-args -p use_sim_time:=true`` records bag time from /clock), and
the publishers' QoS profiles go into the metadata as ``ros2 bag`` writes them.
Recording stops on Ctrl-C (SIGINT) or SIGTERM, after ``--duration`` seconds, or
once every topic has ``--count`` messages; then the per-topic counts are printed.

Example::

    bisenet record /camera/image_raw /bisenet_segmentation/overlay -o run1 --duration 30
"""

import argparse
import datetime
import functools
import sys
import time

from bisenet_ros.media.bags import adapt_qos, BagError, BagWriter, message_class, qos_from_profile
from bisenet_ros.media.bags import STORAGE_PLUGINS
from bisenet_ros.tools.arguments import int_within, new_parser, positive_number
from bisenet_ros.tools.processes import ros_context

from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidTopicNameException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from rclpy.validate_full_topic_name import validate_full_topic_name
from rclpy.validate_topic_name import validate_topic_name

# How often the graph is looked at for topics that have no publisher yet.
GRAPH_POLL_S = 0.5


class Recorder(Node):
    """
    Subscribes to the wanted topics as their publishers appear; writes what arrives.

    ``topics`` are names as given (relative ones resolve against the node's
    namespace), ``bag`` a :class:`bisenet_ros.bags.BagWriter`, ``depth`` the
    subscription queue length, ``context`` the rclpy context (None: the global one).
    """

    def __init__(self, topics, bag, depth=10, context=None):
        super().__init__('bisenet_record', context=context)
        self._bag = bag
        self._depth = depth
        self._waiting = [self.resolve_topic_name(t) for t in topics]
        self._recording = {}
        self.skipped = {}
        self._check_graph()
        # Steady clock: with use_sim_time and no /clock yet, a ROS-time timer never fires
        # and a publisher that appears later would never be subscribed.
        self._graph_timer = self.create_timer(GRAPH_POLL_S, self._check_graph,
                                              clock=Clock(clock_type=ClockType.STEADY_TIME))

    @property
    def topics(self):
        """Return the resolved names of every wanted topic, recorded or not."""
        return list(self._recording) + self._waiting + list(self.skipped)

    @property
    def counts(self):
        """Return {topic: messages written} for the topics subscribed so far."""
        return dict(self._bag.counts)

    def reached(self, count):
        """Return whether every recordable topic has at least ``count`` messages."""
        counts = self._bag.counts
        return (not self._waiting and bool(self._recording)
                and all(counts[t] >= count for t in self._recording))

    def _check_graph(self):
        if not self._waiting:
            return
        types = dict(self.get_topic_names_and_types())
        for topic in list(self._waiting):
            publishers = self.get_publishers_info_by_topic(topic) if topic in types else []
            # Without a publisher there is no offer to adapt to: wait for one.
            if publishers:
                self._subscribe(topic, types[topic], publishers)

    def _subscribe(self, topic, msgtypes, publishers):
        msgtype = msgtypes[0]
        if len(msgtypes) > 1:
            self.get_logger().warning(
                f'{topic} carries several types ({", ".join(msgtypes)}); recording {msgtype}')
        offers = [qos_from_profile(p.qos_profile) for p in publishers if p.topic_type == msgtype]
        adapted = adapt_qos(offers)
        try:
            cls = message_class(msgtype)
            self._bag.add_topic(topic, msgtype, offers)
        except BagError as error:
            self._waiting.remove(topic)
            self.skipped[topic] = str(error)
            self.get_logger().error(f'cannot record {topic}: {error}')
            return
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=self._depth,
            reliability=(ReliabilityPolicy.RELIABLE if adapted.reliable
                         else ReliabilityPolicy.BEST_EFFORT),
            durability=(DurabilityPolicy.TRANSIENT_LOCAL if adapted.transient_local
                        else DurabilityPolicy.VOLATILE))
        # raw=True hands the callback the CDR bytes, which go to the bag untouched.
        self._recording[topic] = self.create_subscription(
            cls, topic, functools.partial(self._write, topic), qos, raw=True)
        self._waiting.remove(topic)
        print(f'recording {topic} ({msgtype}, {qos.reliability.name.lower()}, '
              f'{qos.durability.name.lower()}) from {len(offers)} publisher(s)', flush=True)

    def _write(self, topic, data):
        self._bag.write(topic, self.get_clock().now().nanoseconds, data)


def default_bag_name():
    """Return 'rosbag2_YYYY_MM_DD-HH_MM_SS', the name ``ros2 bag record`` would choose."""
    return datetime.datetime.now().strftime('rosbag2_%Y_%m_%d-%H_%M_%S')


def topic_argument(text):
    """Return ``text`` if rcl takes it as a topic name (argparse type); else say why."""
    try:
        validate_topic_name(text)
        if not any(mark in text for mark in '~{'):  # substitutions resolve at the node
            validate_full_topic_name(text if text.startswith('/') else '/' + text)
    except InvalidTopicNameException as exc:
        reason = str(exc).splitlines()[0].removeprefix('Invalid topic name: ').rstrip(':')
        raise argparse.ArgumentTypeError(f'{text!r}: {reason}') from None
    return text


def parse_args(argv=None, prog=None):
    """Parse the command line (ROS arguments after ``--ros-args`` are left to rclpy)."""
    parser = new_parser(prog or 'bisenet record', __doc__)
    parser.add_argument('topics', nargs='+', type=topic_argument, help='topics to record')
    parser.add_argument('-o', '--output', default=None,
                        help='bag directory to create (default: rosbag2_<date>-<time>)')
    parser.add_argument('-s', '--storage', choices=sorted(STORAGE_PLUGINS), default='mcap',
                        help='storage format (default: mcap)')
    parser.add_argument('--duration', type=positive_number, default=None,
                        help='stop after this many seconds')
    parser.add_argument('--count', type=int_within(1), default=None,
                        help='stop once every topic has this many messages')
    parser.add_argument('--qos-depth', type=int_within(1), default=10,
                        help='subscription queue length (default: 10)')
    return parser.parse_args(remove_ros_args(sys.argv[1:] if argv is None else argv))


def main(argv=None, prog='bisenet record'):
    """Record until stopped; print the counts; return 0, or 1 if no topic was found."""
    args = parse_args(argv, prog)
    with ros_context('bisenet record', argv) as (context, stop):
        return _record(args, context, stop)


def _record(args, context, stop):
    """Record with ``args`` until done or a signal lands in ``stop``; return the status."""
    recorder = None
    executor = SingleThreadedExecutor(context=context)
    try:
        try:
            bag = BagWriter(args.output or default_bag_name(), storage=args.storage)
        except BagError as error:
            print(f'bisenet record: {error}', file=sys.stderr)
            return 2
        with bag:
            recorder = Recorder(args.topics, bag, depth=args.qos_depth, context=context)
            executor.add_node(recorder)
            print(f'writing {bag.path} ({args.storage}); waiting for '
                  f'{", ".join(recorder.topics)}', flush=True)
            deadline = None if args.duration is None else time.monotonic() + args.duration
            while not stop and context.ok():
                executor.spin_once(timeout_sec=0.1)
                if args.count is not None and recorder.reached(args.count):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
            counts = recorder.counts
            skipped = recorder.skipped
            missing = [t for t in recorder.topics if t not in counts and t not in skipped]
    finally:
        executor.shutdown()
        if recorder is not None:
            recorder.destroy_node()

    print(f'bag {bag.path}:')
    for topic, count in counts.items():
        print(f'  {topic}: {count} messages')
    for topic in missing:
        print(f'  {topic}: no publisher appeared, not recorded')
    for topic, reason in skipped.items():
        print(f'  {topic}: not recorded: {reason}')
    return 1 if not counts else 0


if __name__ == '__main__':
    sys.exit(main())
