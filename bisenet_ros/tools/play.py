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
Publish a rosbag2's camera topics without ``ros2 bag`` (``bisenet play``).

By default every sensor_msgs Image, CompressedImage and CameraInfo topic is
played; ``--topics`` selects others. The stored serialized bytes are
published unchanged, so each message keeps its original header (stamp and
frame). Timing follows the bag (``--rate`` scales it, 0 = no pauses).
``--step-on TOPIC`` paces playback by a node's output instead: after each
image the next waits until TOPIC (e.g. ``/bisenet_segmentation/labels``) has
answered, so a bag goes through the node as fast as the node takes the
frames, without overrunning its queue. ``--clock`` publishes /clock from the
bag time, for nodes run with ``use_sim_time``. ``--wait-for-subscribers N``
holds the first message until the image topics have N subscribers, so
nothing is lost while they connect. Topics are published with the QoS their
recorded publishers offered (reliable only if all were), unless
``--reliability`` / ``--durability`` say otherwise.

Example::

    bisenet play run1 --wait-for-subscribers 1 --clock --ros-args -r /camera/image_raw:=/image
"""

import sys
import time

from bisenet_ros.media.bags import (adapt_qos, BagError, BagReadError, CAMERA_TYPES,
                                    IMAGE_TYPES, message_class)
from bisenet_ros.media.bags import qos_from_profile, read_messages, read_topics
from bisenet_ros.tools.arguments import int_within, new_parser, positive_number
from bisenet_ros.tools.processes import ros_context

from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from rosgraph_msgs.msg import Clock

# Longest single sleep, so a signal or a due /clock message is never late by more.
TICK_S = 0.05
# After the last message: time for in-flight samples to reach their readers.
LINGER_S = 0.5


class Player(Node):
    """
    Publishers for a bag's topics, and the loop that feeds them in bag order.

    ``bag`` is the bag path, ``topics`` the names to play (None: the camera
    topics), ``reliability`` / ``durability`` 'auto' (as recorded) or a policy
    name, ``depth`` the publishers' queue length, ``clock_hz`` the /clock rate
    between messages (None: no /clock), ``context`` the rclpy context.
    """

    def __init__(self, bag, topics=None, reliability='auto', durability='auto', depth=10,
                 clock_hz=None, context=None):
        # Read first: a bag that cannot be read leaves no half-built node behind.
        summaries = read_topics(bag)
        self._executor = None
        super().__init__('bisenet_play', context=context)
        self.bag = bag
        if topics is None:
            topics = [t for t, s in summaries.items() if s.msgtype in CAMERA_TYPES]
            if not topics:
                raise BagError(f'{bag} has no Image, CompressedImage or CameraInfo topic; '
                               'name the topics to play with --topics')
        unknown = sorted(set(topics) - set(summaries))
        if unknown:
            raise BagError(f'topic(s) {", ".join(unknown)} not in {bag}; it has '
                           f'{", ".join(sorted(summaries))}')
        self.topics = sorted(topics)
        self.counts = dict.fromkeys(self.topics, 0)
        # Subscribers are awaited on the image topics; CameraInfo alone is not a reason to wait.
        self.image_topics = ([t for t in self.topics if summaries[t].msgtype in IMAGE_TYPES]
                             or self.topics)
        self._publishers_by_topic = {}
        for topic in self.topics:
            summary = summaries[topic]
            qos = self._qos(summary.offered_qos, reliability, durability, depth)
            self._publishers_by_topic[topic] = self.create_publisher(
                message_class(summary.msgtype), topic, qos)
        self._step_topic = None
        self._steps = 0
        self._steps_before = 0
        self._clock = None
        self._clock_period = None
        if clock_hz:
            # Best effort with depth 1, as ros2 bag play and the rclpy/rclcpp time sources use.
            self._clock = self.create_publisher(
                Clock, '/clock', QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
            self._clock_period = 1.0 / clock_hz

    def step_on(self, topic, timeout, stopped):
        """
        Pace playback by ``topic``: each image waits for one message there.

        The topic's type and QoS come from its publishers, awaited up to
        ``timeout`` s; returns whether one appeared.
        """
        topic = self.resolve_topic_name(topic)
        deadline = time.monotonic() + timeout
        while not stopped():
            types = dict(self.get_topic_names_and_types()).get(topic)
            publishers = self.get_publishers_info_by_topic(topic) if types else []
            if publishers:
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(TICK_S)
        else:
            return False
        offers = [qos_from_profile(p.qos_profile) for p in publishers if p.topic_type == types[0]]
        # Only the arrival counts, so the bytes are never deserialized.
        self.create_subscription(message_class(types[0]), topic, self._on_step,
                                 self._qos(offers, 'auto', 'volatile', 10), raw=True)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self)
        self._step_topic = topic
        return True

    def _on_step(self, _data):
        self._steps += 1

    def _wait_for_step(self, images_sent, timeout, stopped):
        # Counting answers (not pairing them) lets a late answer catch up.
        deadline = time.monotonic() + timeout
        while self._steps < images_sent and not stopped():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.get_logger().warning(
                    f'no message on {self._step_topic} for image {images_sent} within '
                    f'{timeout:g} s; going on')
                self._steps = images_sent
                return
            self._executor.spin_once(timeout_sec=min(TICK_S, remaining))

    @staticmethod
    def _qos(offers, reliability, durability, depth):
        adapted = adapt_qos(offers)
        if reliability == 'auto':
            reliability = 'reliable' if adapted.reliable else 'best_effort'
        if durability == 'auto':
            durability = 'transient_local' if adapted.transient_local else 'volatile'
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                          reliability=ReliabilityPolicy[reliability.upper()],
                          durability=DurabilityPolicy[durability.upper()])

    def subscriber_counts(self):
        """Return {image topic: matched subscriptions}."""
        return {t: self._publishers_by_topic[t].get_subscription_count()
                for t in self.image_topics}

    def wait_for_subscribers(self, count, timeout, stopped):
        """Wait until every image topic has ``count`` subscribers; return whether it did."""
        deadline = time.monotonic() + timeout
        while not stopped():
            if all(n >= count for n in self.subscriber_counts().values()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(TICK_S)
        return False

    def publish_clock(self, nanoseconds):
        """Publish /clock at bag time ``nanoseconds`` (no-op without ``--clock``)."""
        if self._clock is not None:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(int(nanoseconds), 1_000_000_000)
            self._clock.publish(msg)

    def _sleep_until(self, bag_time, origin, rate, stopped):
        # origin pairs a wall time with the bag time it stands for.
        start_wall, start_bag = origin
        target = start_wall + (bag_time - start_bag) / 1e9 / rate
        # Between messages /clock keeps ticking, as ros2 bag play does.
        next_clock = time.monotonic()
        while not stopped():
            now = time.monotonic()
            if now >= target:
                return
            wake = target
            if self._clock is not None:
                if now >= next_clock:
                    self.publish_clock(start_bag + (now - start_wall) * rate * 1e9)
                    next_clock = now + self._clock_period
                wake = min(wake, next_clock)
            time.sleep(max(0.0, min(TICK_S, wake - now)))

    def play(self, rate=1.0, step_timeout=10.0, stopped=lambda: False):
        """
        Publish the bag once, in bag-time order; return the messages sent.

        ``rate`` scales the recorded timing (0: no pauses); after
        :meth:`step_on`, each image waits for its answer instead (at most
        ``step_timeout`` s). ``stopped()`` is polled to end early.
        """
        sent = 0
        images = 0
        origin = None
        for message in read_messages(self.bag, self.topics):
            if stopped():
                break
            if origin is None:
                origin = (time.monotonic(), message.timestamp)
            if rate > 0 and self._step_topic is None:
                self._sleep_until(message.timestamp, origin, rate, stopped)
                if stopped():
                    break
            # The clock reaches a message's time before the message itself.
            self.publish_clock(message.timestamp)
            self._publishers_by_topic[message.topic].publish(message.data)
            sent += 1
            self.counts[message.topic] += 1
            if self._step_topic is not None and message.msgtype in IMAGE_TYPES:
                images += 1
                self._wait_for_step(self._steps_before + images, step_timeout, stopped)
        self._steps_before = self._steps
        return sent

    def flush(self, timeout):
        """Wait until reliable subscribers acknowledged everything sent, then linger briefly."""
        for publisher in self._publishers_by_topic.values():
            publisher.wait_for_all_acked(Duration(seconds=timeout))
        time.sleep(LINGER_S)

    def destroy_node(self):
        """Release the pacing executor with the node."""
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        super().destroy_node()


def parse_args(argv=None, prog=None):
    """Parse the command line (ROS arguments after ``--ros-args`` are left to rclpy)."""
    parser = new_parser(prog or 'bisenet play', __doc__)
    parser.add_argument('bag', help='rosbag2 directory, .mcap or .db3 file')
    parser.add_argument('--topics', nargs='+', default=None,
                        help='topics to play (default: Image, CompressedImage, CameraInfo)')
    parser.add_argument('-r', '--rate', type=float, default=1.0,
                        help='speed factor of the recorded timing; 0 = no pauses (default: 1)')
    parser.add_argument('--step-on', metavar='TOPIC', default=None,
                        help='after each image wait for a message on TOPIC (the output of a node) '
                             'instead of following the recorded timing')
    parser.add_argument('--step-timeout', type=positive_number, default=10.0,
                        help='longest wait for the --step-on answer to one image (default: 10)')
    parser.add_argument('--clock', type=float, nargs='?', const=40.0, default=None,
                        metavar='HZ', help='publish /clock from the bag time, at HZ between '
                                           'messages (default when given: 40)')
    parser.add_argument('--wait-for-subscribers', type=int_within(0), default=0, metavar='N',
                        help='hold the first message until each image topic has N subscribers')
    parser.add_argument('--wait-timeout', type=positive_number, default=60.0,
                        help='give up waiting for subscribers after this many seconds')
    parser.add_argument('-l', '--loop', action='store_true', help='play the bag again and again')
    parser.add_argument('--reliability', choices=('auto', 'reliable', 'best_effort'),
                        default='auto', help='publisher reliability (default: as recorded)')
    parser.add_argument('--durability', choices=('auto', 'volatile', 'transient_local'),
                        default='auto', help='publisher durability (default: as recorded)')
    parser.add_argument('--qos-depth', type=int_within(1), default=10,
                        help='publisher queue length (default: 10)')
    parser.add_argument('--ack-timeout', type=positive_number, default=5.0,
                        help='longest wait at the end for reliable subscribers to acknowledge '
                             'the last messages (default: 5)')
    args = parser.parse_args(remove_ros_args(sys.argv[1:] if argv is None else argv))
    if args.rate < 0:
        parser.error(f'--rate must be 0 or positive, got {args.rate}')
    if args.clock is not None and args.clock <= 0:
        parser.error(f'--clock needs a positive rate in Hz, got {args.clock}')
    return args


def main(argv=None, prog='bisenet play'):
    """Play the bag; print the counts; return 0, or 1 if subscribers (or --step-on) never came."""
    args = parse_args(argv, prog)
    with ros_context('bisenet play', argv) as (context, stop):
        return _play(args, context, stop)


def _play(args, context, stop):
    """Play with ``args`` until done or a signal lands in ``stop``; return the status."""
    player = None
    status = 0
    try:
        try:
            player = Player(args.bag, args.topics, args.reliability, args.durability,
                            args.qos_depth, args.clock, context=context)
        except BagReadError as error:  # the input itself is damaged
            print(f'bisenet play: {error}', file=sys.stderr)
            return 1
        except (BagError, FileNotFoundError) as error:
            print(f'bisenet play: {error}', file=sys.stderr)
            return 2
        print(f'playing {", ".join(player.topics)} from {args.bag}', flush=True)
        if args.wait_for_subscribers > 0:
            if not player.wait_for_subscribers(args.wait_for_subscribers, args.wait_timeout,
                                               lambda: bool(stop)) and not stop:
                counts = ', '.join(f'{t}: {n}' for t, n in player.subscriber_counts().items())
                print(f'bisenet play: fewer than {args.wait_for_subscribers} subscriber(s) '
                      f'after {args.wait_timeout:g} s ({counts})', file=sys.stderr)
                status = 1
        if status == 0 and args.step_on:
            if not player.step_on(args.step_on, args.wait_timeout,
                                  lambda: bool(stop)) and not stop:
                print(f'bisenet play: no publisher of {args.step_on} after '
                      f'{args.wait_timeout:g} s', file=sys.stderr)
                status = 1
        try:
            while status == 0 and not stop:
                sent = player.play(args.rate, args.step_timeout, lambda: bool(stop))
                # An empty selection would make --loop spin without end.
                if not args.loop or sent == 0:
                    break
        except BagReadError as error:  # damage found past the bag's index
            print(f'bisenet play: {error}', file=sys.stderr)
            status = 1
        if status == 0:
            player.flush(args.ack_timeout)
        for topic, count in player.counts.items():
            print(f'  {topic}: {count} messages published')
        return status
    finally:
        if player is not None:
            player.destroy_node()


if __name__ == '__main__':
    sys.exit(main())
