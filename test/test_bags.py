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
Bags without ROS: bisenet_ros.bags, the recorder and the player.

The recorder and the player run as their own processes (``python -m``) and
talk to a client node in the test process over loopback DDS; bags are read
back with rosbags and, independently, with the mcap library.
"""

import time

from bag_helpers import camera_info_msg, image_msg, ToolProcess, write_camera_bag
from bisenet_ros.media.bags import adapt_qos, BagError, BagWriter, camera_topics
from bisenet_ros.media.bags import (qos_from_profile, read_image_messages, read_messages,
                                    read_topics)
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
import pytest
from rclpy.duration import Duration, Infinite
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from ros_helpers import random_domain_id, ros_environment, TestClient, wait_until
from rosbags.interfaces import QosDurability, QosReliability
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
import yaml

RELIABLE_LATCHED = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
BEST_EFFORT = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.fixture
def domain_id():
    return random_domain_id()


@pytest.fixture
def client(domain_id):
    client = TestClient(domain_id, name='bisenet_bag_test')
    yield client
    client.close()


def _offer(reliability, durability):
    return qos_from_profile(QoSProfile(depth=1, reliability=reliability, durability=durability))


def _mcap_messages(bag_dir):
    """Return [(topic, schema name, decoded message, raw bytes)] read with the mcap library."""
    (path,) = sorted(bag_dir.glob('*.mcap'))
    with open(path, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        return [(channel.topic, schema.name, decoded, bytes(message.data))
                for schema, channel, message, decoded in reader.iter_decoded_messages()]


# --- bisenet_ros.bags without any ROS communication -------------------------------------------

def test_adapted_qos_is_reliable_only_if_every_publisher_is():
    reliable = _offer(ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE)
    best_effort = _offer(ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE)
    assert adapt_qos([reliable, reliable]).reliable
    assert not adapt_qos([reliable, best_effort]).reliable


def test_adapted_qos_is_transient_local_only_if_every_publisher_is():
    latched = _offer(ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL)
    volatile = _offer(ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE)
    assert adapt_qos([latched]).transient_local
    assert not adapt_qos([latched, volatile]).transient_local


def test_adapted_qos_without_publishers_is_reliable_volatile():
    assert adapt_qos([]) == (True, False)


def test_offered_qos_keeps_policies_and_infinite_durations_as_ros2_bag_writes_them():
    qos = qos_from_profile(QoSProfile(depth=3, reliability=ReliabilityPolicy.BEST_EFFORT,
                                      durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                      lifespan=Duration(seconds=2, nanoseconds=5),
                                      deadline=Infinite))
    assert qos.reliability == QosReliability.BEST_EFFORT
    assert qos.durability == QosDurability.TRANSIENT_LOCAL
    assert qos.depth == 3
    assert tuple(qos.lifespan) == (2, 5)
    # What endpoints report for no deadline: rmw's infinite, which ros2 bag stores like this.
    assert tuple(qos.deadline) == (9223372036, 854775807)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_written_bag_reads_back_byte_for_byte(tmp_path, storage):
    images = write_camera_bag(tmp_path / 'bag', storage=storage)
    stored = [m for m in read_messages(tmp_path / 'bag') if m.topic == '/cam/image_raw']
    assert [m.data for m in stored] == [data for _, data in images]
    assert [deserialize_message(m.data, Image) for m in stored] == [msg for msg, _ in images]
    assert [m.msgtype for m in stored] == ['sensor_msgs/msg/Image'] * len(images)
    assert [m.timestamp for m in stored] == sorted(m.timestamp for m in stored)


def test_topic_summary_counts_messages_and_keeps_offered_qos(tmp_path):
    offer = _offer(ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL)
    with BagWriter(tmp_path / 'bag') as bag:
        bag.add_topic('/cam/image_raw', 'sensor_msgs/msg/Image', [offer])
        for i in range(4):
            bag.write('/cam/image_raw', 10 + i, serialize_message(image_msg(i)))
    (summary,) = read_topics(tmp_path / 'bag').values()
    assert (summary.name, summary.msgtype, summary.count) == (
        '/cam/image_raw', 'sensor_msgs/msg/Image', 4)
    assert summary.offered_qos == [offer]


def test_metadata_stores_offered_qos_by_policy_name_as_ros2_bag_reads_it(tmp_path):
    offer = _offer(ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE)
    with BagWriter(tmp_path / 'bag') as bag:
        bag.add_topic('/cam/image_raw', 'sensor_msgs/msg/Image', [offer])
    info = yaml.safe_load((tmp_path / 'bag' / 'metadata.yaml').read_text())
    info = info['rosbag2_bagfile_information']
    assert info['version'] == 9 and info['storage_identifier'] == 'mcap'
    topic = info['topics_with_message_count'][0]['topic_metadata']
    (profile,) = topic['offered_qos_profiles']
    assert (profile['reliability'], profile['durability']) == ('best_effort', 'volatile')
    assert topic['type_description_hash'].startswith('RIHS01_')


def test_camera_topics_are_images_and_camera_infos(tmp_path):
    write_camera_bag(tmp_path / 'bag')
    assert camera_topics(tmp_path / 'bag') == ['/cam/camera_info', '/cam/image_raw']


def test_image_messages_deserialize_with_their_headers(tmp_path):
    images = write_camera_bag(tmp_path / 'bag')
    read = list(read_image_messages(tmp_path / 'bag'))
    assert [(t, m.header.stamp.sec, bytes(m.data)) for t, _, m in read] == [
        ('/cam/image_raw', i.header.stamp.sec, bytes(i.data)) for i, _ in images]


def test_writer_refuses_an_existing_directory(tmp_path):
    with pytest.raises(BagError, match='exists already'):
        BagWriter(tmp_path)


def test_writer_refuses_a_type_the_typestore_lacks(tmp_path):
    with BagWriter(tmp_path / 'bag') as bag:
        with pytest.raises(BagError, match='my_msgs/msg/Thing'):
            bag.add_topic('/thing', 'my_msgs/msg/Thing')


def test_reading_names_missing_topics(tmp_path):
    write_camera_bag(tmp_path / 'bag')
    with pytest.raises(BagError, match='/nope'):
        list(read_messages(tmp_path / 'bag', ['/nope']))


# --- the recorder (bisenet record) in its own process ------------------------------------------

def test_recorder_writes_messages_as_published(tmp_path, domain_id, client):
    publisher = client.publisher(Image, '/cam/image_raw', RELIABLE_LATCHED)
    # What DDS delivers, undecoded, to compare with what the recorder stored.
    delivered = []
    client.node.create_subscription(Image, '/cam/image_raw', delivered.append,
                                    RELIABLE_LATCHED, raw=True)
    bag_dir = tmp_path / 'recorded'
    recorder = ToolProcess('bisenet_ros.tools.record',
                           ['/cam/image_raw', '-o', bag_dir, '--count', 5, '--duration', 40],
                           ros_environment(domain_id), tmp_path / 'record.log')
    try:
        client.wait_for_subscribers(publisher, count=2, timeout=30)
        published = [image_msg(i) for i in range(5)]
        for msg in published:
            publisher.publish(msg)
        assert recorder.wait(40) == 0, recorder.log()
    finally:
        recorder.stop()
    wait_until(lambda: len(delivered) == 5, 10, what='the images in the test client')
    log = recorder.log()
    assert 'recording /cam/image_raw (sensor_msgs/msg/Image, reliable, transient_local)' in log
    assert '/cam/image_raw: 5 messages' in log

    # rosbags: type, count, the exact CDR bytes and the publisher's QoS.
    (summary,) = read_topics(bag_dir).values()
    assert (summary.msgtype, summary.count) == ('sensor_msgs/msg/Image', 5)
    assert [q.durability for q in summary.offered_qos] == [QosDurability.TRANSIENT_LOCAL]
    stored = [m.data for m in read_messages(bag_dir)]
    assert stored == delivered
    assert [deserialize_message(data, Image) for data in stored] == published

    # mcap with its own ROS 2 decoder: the headers and pixels as published.
    decoded = _mcap_messages(bag_dir)
    assert {(topic, schema) for topic, schema, _, _ in decoded} == {
        ('/cam/image_raw', 'sensor_msgs/msg/Image')}
    assert [(d.header.frame_id, d.header.stamp.sec, d.header.stamp.nanosec, bytes(d.data))
            for _, _, d, _ in decoded] == [
        (m.header.frame_id, m.header.stamp.sec, m.header.stamp.nanosec, bytes(m.data))
        for m in published]


def test_recorder_with_sim_time_and_no_clock_subscribes_a_late_publisher(
        tmp_path, domain_id, client):
    bag_dir = tmp_path / 'recorded'
    recorder = ToolProcess('bisenet_ros.tools.record',
                           ['/late/image_raw', '-o', bag_dir, '--count', 3, '--duration', 40,
                            '--ros-args', '-p', 'use_sim_time:=true'],
                           ros_environment(domain_id), tmp_path / 'record.log')
    try:
        recorder.wait_for_log('waiting for')  # started before any publisher exists
        publisher = client.publisher(Image, '/late/image_raw', RELIABLE_LATCHED)
        client.wait_for_subscribers(publisher, count=1, timeout=30)
        for index in range(3):
            publisher.publish(image_msg(index))
        assert recorder.wait(40) == 0, recorder.log()
    finally:
        recorder.stop()
    assert '/late/image_raw: 3 messages' in recorder.log()
    assert read_topics(bag_dir)['/late/image_raw'].count == 3


def test_recorder_follows_best_effort_publishers_and_closes_the_bag_on_ctrl_c(
        tmp_path, domain_id, client):
    publisher = client.publisher(Image, '/cam/image_raw', BEST_EFFORT)
    bag_dir = tmp_path / 'recorded'
    recorder = ToolProcess('bisenet_ros.tools.record', ['/cam/image_raw', '-o', bag_dir],
                           ros_environment(domain_id), tmp_path / 'record.log')
    try:
        client.wait_for_subscribers(publisher, timeout=30)
        # Best effort has no handshake: resend until the recorder has clearly been fed.
        for i in range(10):
            publisher.publish(image_msg(i))
            time.sleep(0.05)
        assert recorder.interrupt() == 0, recorder.log()
    finally:
        recorder.stop()
    assert 'best_effort, volatile' in recorder.log()
    (summary,) = read_topics(bag_dir).values()
    assert [q.reliability for q in summary.offered_qos] == [QosReliability.BEST_EFFORT]
    assert summary.count >= 1
    assert len(_mcap_messages(bag_dir)) == summary.count


def test_recorder_reports_a_topic_that_never_appears(tmp_path, domain_id):
    recorder = ToolProcess('bisenet_ros.tools.record',
                           ['/nobody/publishes', '-o', tmp_path / 'bag', '--duration', 1],
                           ros_environment(domain_id), tmp_path / 'record.log')
    try:
        assert recorder.wait(30) == 1
    finally:
        recorder.stop()
    assert '/nobody/publishes: no publisher appeared' in recorder.log()


# --- the player (bisenet play) in its own process ----------------------------------------------

def test_player_publishes_stored_images_with_their_original_headers_and_clock(
        tmp_path, domain_id, client):
    images = write_camera_bag(tmp_path / 'bag')
    inbox = client.subscribe(Image, '/cam/image_raw', 10)
    clock = client.subscribe(Clock, '/clock', BEST_EFFORT)
    player = ToolProcess('bisenet_ros.tools.play',
                         [tmp_path / 'bag', '--topics', '/cam/image_raw', '--clock', 50,
                          '--wait-for-subscribers', 1, '--wait-timeout', 30],
                         ros_environment(domain_id), tmp_path / 'play.log')
    try:
        assert player.wait(40) == 0, player.log()
    finally:
        player.stop()
    wait_until(lambda: len(inbox.messages) >= len(images), 5, what='the played images')
    assert inbox.messages == [msg for msg, _ in images]
    # /clock follows the bag's own time line (5.0 s to 5.2 s), not the wall clock.
    times = [c.clock.sec + c.clock.nanosec * 1e-9 for c in clock.messages]
    assert times and all(4.99 < t < 5.3 for t in times)
    assert times == sorted(times)


def test_player_plays_camera_topics_by_default(tmp_path, domain_id, client):
    write_camera_bag(tmp_path / 'bag', count=2)
    info = client.subscribe(CameraInfo, '/cam/camera_info', RELIABLE_LATCHED)
    images = client.subscribe(Image, '/cam/image_raw', RELIABLE_LATCHED)
    # Transient local: a subscriber matched a little late still gets what was sent.
    player = ToolProcess('bisenet_ros.tools.play',
                         [tmp_path / 'bag', '--rate', 0, '--durability', 'transient_local',
                          '--wait-for-subscribers', 1, '--wait-timeout', 30],
                         ros_environment(domain_id), tmp_path / 'play.log')
    try:
        wait_until(lambda: len(info.messages) >= 2 and len(images.messages) >= 2, 40,
                   what='the camera topics')
        assert player.wait(30) == 0, player.log()
    finally:
        player.stop()
    log = player.log()
    assert 'playing /cam/camera_info, /cam/image_raw from' in log
    assert '/chatter' not in log
    assert [m.header.stamp for m in info.messages] == [
        camera_info_msg(i).header.stamp for i in range(2)]


def test_player_stepping_on_an_answer_topic_loses_no_frame_to_a_slow_subscriber(
        tmp_path, domain_id, client):
    images = write_camera_bag(tmp_path / 'bag', count=5, period_ns=1_000_000)
    answers = client.publisher(String, '/answer', 10)
    processed = []

    def slow_node(msg):
        # A one-frame queue and 0.2 s per frame: untimed playback would overrun it.
        time.sleep(0.2)
        processed.append(msg)
        answers.publish(String(data='done'))

    client.node.create_subscription(Image, '/cam/image_raw', slow_node,
                                    QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    player = ToolProcess('bisenet_ros.tools.play',
                         [tmp_path / 'bag', '--topics', '/cam/image_raw', '--step-on', '/answer',
                          '--wait-for-subscribers', 1, '--wait-timeout', 30],
                         ros_environment(domain_id), tmp_path / 'play.log')
    try:
        assert player.wait(60) == 0, player.log()
    finally:
        player.stop()
    assert processed == [msg for msg, _ in images]


def _damaged_bag(tmp_path, case):
    """Return the path of a bag damaged as ``case`` says."""
    bag = tmp_path / 'bag'
    write_camera_bag(bag, 3, storage='sqlite3' if case == 'truncated db3' else 'mcap')
    if case == 'truncated mcap':
        data = next(bag.glob('*.mcap'))
        data.write_bytes(data.read_bytes()[:300])
    elif case == 'truncated db3':
        data = next(bag.glob('*.db3'))
        data.write_bytes(data.read_bytes()[:1000])
    elif case == 'malformed metadata.yaml':
        (bag / 'metadata.yaml').write_text('rosbag2_bagfile_information: [unclosed')
    elif case == 'missing metadata.yaml':
        (bag / 'metadata.yaml').unlink()
    elif case == 'empty .mcap':
        bag = tmp_path / 'empty.mcap'
        bag.write_bytes(b'')
    return bag


DAMAGE = ['truncated mcap', 'truncated db3', 'malformed metadata.yaml',
          'missing metadata.yaml', 'empty .mcap']


@pytest.mark.parametrize('case', DAMAGE)
def test_a_damaged_bag_is_one_bag_read_error_for_every_reader(tmp_path, case):
    from bisenet_ros.media.bags import BagReadError
    bag = _damaged_bag(tmp_path, case)
    with pytest.raises(BagReadError, match=f'{bag}: not a readable rosbag2'):
        read_topics(bag)
    with pytest.raises(BagReadError, match='not a readable rosbag2'):
        list(read_messages(bag))


@pytest.mark.parametrize('case', ['truncated mcap', 'malformed metadata.yaml', 'empty .mcap'])
def test_the_player_refuses_a_damaged_bag_in_one_line(tmp_path, domain_id, case):
    bag = _damaged_bag(tmp_path, case)
    player = ToolProcess('bisenet_ros.tools.play', [bag], ros_environment(domain_id),
                         tmp_path / 'play.log')
    try:
        assert player.wait(60) == 1, player.log()
    finally:
        player.stop()
    lines = [line for line in player.log().splitlines() if line.strip()]
    assert lines[-1].startswith('bisenet play: ') and 'not a readable rosbag2' in lines[-1]
    assert 'Traceback' not in player.log() and 'AttributeError' not in player.log()
