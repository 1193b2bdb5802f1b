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
rosbag2 bags without a ROS install: writing, reading and QoS, on ``rosbags``.

Bags are written in rosbag2 format 9 (what ``ros2 bag`` of Jazzy and Kilted
writes) with the message definitions of rosbags' ROS 2 Kilted typestore, whose
type hashes match rclpy's. Messages are stored as the serialized CDR bytes
they arrived in, so nothing is re-encoded on the way. Reading accepts MCAP
and sqlite3 bags alike.

Nothing here imports rclpy: QoS profiles are read by attribute, so an rclpy
``QoSProfile`` and anything shaped like one are accepted.
"""

import collections
import contextlib
import functools
import importlib
from pathlib import Path

from rosbags.interfaces import Qos
from rosbags.interfaces import QosDurability
from rosbags.interfaces import QosHistory
from rosbags.interfaces import QosLiveliness
from rosbags.interfaces import QosReliability
from rosbags.interfaces import QosTime
from rosbags.rosbag2 import Reader
from rosbags.rosbag2 import ReaderError
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer
from rosbags.typesys import get_typestore
from rosbags.typesys import Stores

__all__ = [
    'AdaptedQos',
    'BagError',
    'BagMessage',
    'BagReadError',
    'BagWriter',
    'CAMERA_TYPES',
    'IMAGE_TYPES',
    'STORAGE_PLUGINS',
    'TopicSummary',
    'adapt_qos',
    'camera_topics',
    'message_class',
    'qos_from_profile',
    'read_image_messages',
    'read_messages',
    'read_topics',
    'time_span',
    'typestore',
]

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
# What a camera driver publishes beside its images: played together by default.
CAMERA_TYPES = IMAGE_TYPES + ('sensor_msgs/msg/CameraInfo',)

STORAGE_PLUGINS = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}

# rosbag2 format 9 stores QoS policies by name; ros2 bag of Jazzy and later reads it.
BAG_VERSION = 9

TopicSummary = collections.namedtuple('TopicSummary', 'name msgtype count offered_qos')
TopicSummary.__doc__ = 'One topic of a bag: name, type, message count, offered QoS profiles.'

BagMessage = collections.namedtuple('BagMessage', 'topic msgtype timestamp data')
BagMessage.__doc__ = 'One stored message: topic, type, bag time (ns) and its CDR bytes.'

AdaptedQos = collections.namedtuple('AdaptedQos', 'reliable transient_local')
AdaptedQos.__doc__ = 'Reliability and durability that match every offered profile.'


class BagError(RuntimeError):
    """A bag cannot be written or read as asked."""


class BagReadError(BagError):
    """The bag itself is unreadable: damaged, empty, or its metadata.yaml missing or broken."""


@contextlib.contextmanager
def _reading(path):
    """Open the bag at ``path`` with rosbags; its errors become one BagReadError each."""
    try:
        with Reader(Path(path)) as reader:
            yield reader
    except (ReaderError, FileNotFoundError) as exc:  # rosbags says what is wrong
        cause = ' '.join(str(exc).split())  # YAML errors span lines
        raise BagReadError(f'{path}: not a readable rosbag2 ({cause})') from exc


@functools.lru_cache(maxsize=1)
def typestore():
    """Return the shared rosbags typestore of ROS 2 Kilted (built once, it takes ~0.1 s)."""
    return get_typestore(Stores.ROS2_KILTED)


def message_class(msgtype):
    """
    Return the generated Python class of ``msgtype`` ('sensor_msgs/msg/Image').

    It comes from the installed ROS message package (``sensor_msgs.msg``).
    """
    try:
        package, kind, name = msgtype.split('/')
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except (ValueError, ImportError, AttributeError):
        raise BagError(f'message type {msgtype!r} has no Python class here; install its '
                       'ROS message package (e.g. ros-sensor-msgs)') from None


def _qos_time(duration):
    # rclpy's Duration counts nanoseconds; rmw's "infinite" (2**63 - 1 ns)
    # splits into the {9223372036, 854775807} that ros2 bag writes too.
    sec, nsec = divmod(int(duration.nanoseconds), 1_000_000_000)
    return QosTime(sec, nsec)


def qos_from_profile(profile):
    """
    Return the rosbags ``Qos`` for an rclpy ``QoSProfile`` (e.g. an endpoint's offer).

    The policy enums of rclpy, rmw and rosbags share their integer values.
    """
    return Qos(
        history=QosHistory(int(profile.history)),
        depth=int(profile.depth),
        reliability=QosReliability(int(profile.reliability)),
        durability=QosDurability(int(profile.durability)),
        deadline=_qos_time(profile.deadline),
        lifespan=_qos_time(profile.lifespan),
        liveliness=QosLiveliness(int(profile.liveliness)),
        liveliness_lease_duration=_qos_time(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def adapt_qos(offers):
    """
    Return the reliability and durability that match all of ``offers`` (rosbags ``Qos``).

    Reliable only if every publisher is reliable (a reliable reader never
    matches a best-effort writer); transient-local only if every publisher
    keeps its history for late joiners. With no offers: reliable, volatile.
    """
    offers = list(offers)
    if not offers:
        return AdaptedQos(reliable=True, transient_local=False)
    return AdaptedQos(
        reliable=all(q.reliability == QosReliability.RELIABLE for q in offers),
        transient_local=all(q.durability == QosDurability.TRANSIENT_LOCAL for q in offers))


class BagWriter:
    """
    A rosbag2 being written: topics are added once, then CDR bytes written.

    Use as a context manager; the bag (and its metadata.yaml) is complete
    once closed, also when the block ends with an exception. ``path`` is the
    bag directory to create (it must not exist yet), ``storage`` 'mcap'
    (default) or 'sqlite3'.
    """

    def __init__(self, path, storage='mcap'):
        if storage not in STORAGE_PLUGINS:
            raise BagError(f'unknown bag storage {storage!r}; use one of '
                           f'{", ".join(STORAGE_PLUGINS)}')
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'{self.path} exists already; choose a new bag directory')
        self._writer = Writer(self.path, version=BAG_VERSION,
                              storage_plugin=STORAGE_PLUGINS[storage])
        self._connections = {}
        self.counts = {}
        self._writer.open()

    def add_topic(self, topic, msgtype, offered_qos=()):
        """
        Declare ``topic`` of ``msgtype`` ('sensor_msgs/msg/Image').

        ``offered_qos`` are the publishers' profiles (rosbags ``Qos``), kept in
        the metadata so ``ros2 bag play`` offers the same QoS again.
        """
        if topic in self._connections:
            raise BagError(f'topic {topic} was already added to {self.path}')
        store = typestore()
        if msgtype not in store.fielddefs:
            raise BagError(f'message type {msgtype} of {topic} is unknown to the ROS 2 '
                           'Kilted typestore of rosbags, so it cannot be described in the bag')
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=store, offered_qos_profiles=list(offered_qos))
        self.counts[topic] = 0

    def write(self, topic, timestamp, data):
        """Write the serialized ``data`` of ``topic`` at bag time ``timestamp`` (ns)."""
        connection = self._connections.get(topic)
        if connection is None:
            raise BagError(f'topic {topic} was not added to {self.path}')
        self._writer.write(connection, int(timestamp), data)
        self.counts[topic] += 1

    def close(self):
        """Finish the bag: storage index and metadata.yaml."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def read_topics(path):
    """Return {topic: TopicSummary} of the bag at ``path`` (directory, .mcap or .db3)."""
    with _reading(path) as reader:
        summaries = {}
        for connection in reader.connections:
            previous = summaries.get(connection.topic)
            count = connection.msgcount + (previous.count if previous else 0)
            qos = list(previous.offered_qos if previous else [])
            qos += getattr(connection.ext, 'offered_qos_profiles', [])
            summaries[connection.topic] = TopicSummary(
                connection.topic, connection.msgtype, count, qos)
        return summaries


def time_span(path):
    """
    Return (start, stop): the bag time (ns) of its first message and just after its last.

    Every message lies in ``start <= time < stop``; an empty bag gives (0, 0).
    """
    with _reading(path) as reader:
        if not reader.message_count:
            return 0, 0
        return reader.start_time, reader.end_time


def camera_topics(path):
    """Return the bag's Image, CompressedImage and CameraInfo topics, sorted."""
    return sorted(t.name for t in read_topics(path).values() if t.msgtype in CAMERA_TYPES)


def read_messages(path, topics=None, start=None, stop=None):
    """
    Yield every stored message of ``topics`` (all when None) in bag-time order.

    Each is a :class:`BagMessage` with the CDR bytes exactly as stored. With
    ``start`` and ``stop`` (bag time, ns) only the messages at or after
    ``start`` and before ``stop``.
    """
    with _reading(path) as reader:
        known = {c.topic for c in reader.connections}
        if topics is not None:
            missing = sorted(set(topics) - known)
            if missing:
                raise BagError(f'topic(s) {", ".join(missing)} not in {path}; it has '
                               f'{", ".join(sorted(known)) or "no topics"}')
        connections = [c for c in reader.connections
                       if topics is None or c.topic in topics]
        if not connections:
            return
        for connection, timestamp, data in reader.messages(connections, start, stop):
            yield BagMessage(connection.topic, connection.msgtype, timestamp, bytes(data))


def read_image_messages(path, topics=None):
    """
    Yield (topic, timestamp, message) for the images in the bag, deserialized.

    ``topics`` defaults to every Image and CompressedImage topic. Messages
    are rosbags objects with the fields of sensor_msgs, which
    :mod:`bisenet_ros.image_msgs` converts like rclpy messages.
    """
    if topics is None:
        topics = [t.name for t in read_topics(path).values() if t.msgtype in IMAGE_TYPES]
        if not topics:
            raise BagError(f'{path} has no sensor_msgs Image or CompressedImage topic')
    store = typestore()
    for message in read_messages(path, topics):
        yield (message.topic, message.timestamp,
               store.deserialize_cdr(message.data, message.msgtype))
