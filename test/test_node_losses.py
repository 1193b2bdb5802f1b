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
Frames lost on the wire are never silent: counted, shown in /diagnostics, said once.

A camera-like publisher process (``bisenet dds-check``'s publisher) sends
1280x720 rgb8 frames best effort for a few seconds to a node process, both
with Fast DDS as it comes (most frames are lost on fragmented UDP) and both
with the large-image profile (they arrive). The node's diagnostics are read
over DDS; its log is read for the warning and the note at configure.
"""

from pathlib import Path
import subprocess
import sys

from bisenet_ros.node.stats import CameraStats, diagnostic_status, OK, WARN
from bisenet_ros.node.transport import default_transport_note, lost_warning
from diagnostic_msgs.msg import DiagnosticArray
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import NodeProcess, random_domain_id, ros_environment, TestClient, wait_until

PROFILE = Path(__file__).resolve().parents[1] / 'config' / 'fastdds_large_images_localhost.xml'
VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE',
             'FASTDDS_BUILTIN_TRANSPORTS')
COUNT, RATE = 50, 12.5  # four seconds of 1280x720 rgb8
ACTIVE = r'bisenet_segmentation\]: active: segmenting'
WARNING = 'lost on the wire before reaching this node'
NOTE = 'Fast DDS runs on its default transports here'


@pytest.fixture(scope='module')
def domain():
    """Return the ROS domain of this module."""
    return random_domain_id()


@pytest.fixture(scope='module')
def client(domain):
    """Return this process's ROS node, spinning in the background."""
    ros = TestClient(domain, name='losses_test_client')
    yield ros
    ros.close()


def _environment(domain, profile):
    env = ros_environment(domain)
    for name in VARIABLES:
        env.pop(name, None)
    if profile:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(PROFILE)
    return env


def _send(env, tmp_path):
    """Send COUNT frames best effort from a publisher process; return when it is done."""
    command = [sys.executable, '-m', 'bisenet_ros.tools.dds_check', '--role', 'publisher',
               '--topic', '/image', '--count', str(COUNT), '--rate', str(RATE), '--width',
               '1280', '--height', '720', '--reliability', 'best_effort', '--timeout', '60']
    with open(tmp_path / 'publisher.log', 'w') as log:
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=120)
    assert done.returncode == 0, (tmp_path / 'publisher.log').read_text()


def _counts(inbox, timeout=20):
    """Return the node's (received, lost, level, message) once two reports agree."""
    seen, read = [], [0]

    def settled():
        arrays = inbox.messages[read[0]:]
        read[0] += len(arrays)
        for array in arrays:
            for status in array.status:
                if status.name.endswith(': /image'):
                    values = {kv.key: kv.value for kv in status.values}
                    seen.append((int(values['frames received']),
                                 int(values['frames lost on the wire']),
                                 status.level, status.message))
        return len(seen) >= 2 and seen[-1][:2] == seen[-2][:2]
    wait_until(settled, timeout, 0.1, 'two agreeing /diagnostics reports')
    # The level and message of the period in which the frames came, not of the quiet ones.
    level, message = next(((lv, m) for _, lost, lv, m in seen if 'lost' in m), seen[-1][2:])
    return (*seen[-1][:2], level, message)


def _run(domain, client, small_v2, tmp_path, profile):
    env = _environment(domain, profile)
    node = NodeProcess(['-p', f'model_path:={small_v2}', '-p', 'threads:=1',
                        '-p', 'diagnostics_period:=0.5'], env, tmp_path / 'node.log')
    inbox = client.subscribe(DiagnosticArray, '/diagnostics',
                             QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    try:
        node.wait_for_log(ACTIVE, timeout=120)
        client.wait_for_publishers(inbox, timeout=60)
        _send(env, tmp_path)
        received, lost, level, message = _counts(inbox)
        assert node.interrupt() == 0
        return received, lost, level, message, node.log()
    finally:
        client.unsubscribe(inbox)
        node.stop()


def test_with_fast_dds_defaults_losses_are_counted_and_said_once(
        domain, client, small_v2, tmp_path):
    received, lost, level, message, log = _run(domain, client, small_v2, tmp_path, False)
    missing = COUNT - received
    if missing < COUNT // 2:
        pytest.skip(f'{received} of {COUNT} HD frames arrived on Fast DDS defaults here: '
                    'there is no loss to count')
    assert abs(lost - missing) <= 0.1 * missing, (received, lost)
    assert level == b'\x01' and 'frames lost on the wire' in message, message
    assert log.count(WARNING) == 1, log
    assert 'bisenet dds-check' in log and 'fastdds_large_images.xml' in log
    assert log.count(NOTE) == 1


def test_with_the_large_image_profile_on_both_sides_frames_arrive(
        domain, client, small_v2, tmp_path):
    received, lost, _, _, log = _run(domain, client, small_v2, tmp_path, True)
    assert received >= 0.95 * COUNT, (received, lost)
    assert WARNING not in log and NOTE not in log


def test_the_note_and_warning_name_the_fix():
    assert NOTE in default_transport_note('rmw_fastrtps_cpp', {}, '/nonexistent')
    assert default_transport_note('rmw_fastrtps_cpp', {VARIABLES[0]: '/p.xml'}, '/') is None
    assert default_transport_note('rmw_cyclonedds_cpp', {}, '/') is None
    warning = lost_warning('/cam/image', 3, 'rmw_fastrtps_cpp')
    assert warning.startswith('/cam/image: 3 frames lost on the wire')
    assert 'FASTDDS_DEFAULT_PROFILES_FILE' in warning and 'bisenet dds-check' in warning


def test_lost_frames_are_counted_per_period_and_warn():
    stats = CameraStats(now=0.0)
    for _ in range(2):
        stats.received()
    stats.lost(6)
    level, message, values = diagnostic_status(stats.snapshot(now=2.0))
    values = dict(values)
    assert (level, message) == (WARN, '6 of 8 frames lost on the wire (DDS transport: see '
                                      'bisenet dds-check)')
    assert values['frames lost on the wire'] == '6' and values['lost rate (Hz)'] == '3.00'
    stats.received()
    level, _, values = diagnostic_status(stats.snapshot(now=3.0))
    assert level == OK and dict(values)['frames lost on the wire'] == '6'  # a total
    snap = stats.snapshot(now=4.0)
    snap.counts_lost = False  # an RMW that does not report losses
    assert dict(diagnostic_status(snap)[2])['frames lost on the wire'] == 'not reported'
