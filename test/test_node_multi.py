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


"""The multi-camera node: lifecycle services, compressed input, cameras side by side."""

from pathlib import Path
import secrets

from builtin_interfaces.msg import Time
from helpers import claiming, simulated_class, street_like
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from node_rig import (compressed_msg, counted, diagnostics_values, latched_label_info, lifecycle,
                      lifecycle_state, NODE, NUM_CLASSES, publish_until_counted, Rig,
                      set_parameter)
import pytest
from ros_helpers import NodeProcess, ros_environment
from sensor_msgs.msg import CompressedImage


def test_label_info_sits_beside_each_cameras_mask(client, active_multi, subscriptions):
    front, left = (latched_label_info(client, f'{active_multi.namespace}/{cam}/label_info',
                                      subscriptions) for cam in ('front', 'left'))
    assert front.class_map == left.class_map and len(front.class_map) == NUM_CLASSES
    assert front.header == left.header


# -- the multi-camera, compressed, lifecycle-managed node ------------------------------

def test_lifecycle_transitions_through_the_services(client, multi, subscriptions):
    _, state = lifecycle(client, multi)
    if state == 'active':  # left active by a test that ran before this one
        assert lifecycle(client, multi, Transition.TRANSITION_DEACTIVATE) == (True, 'inactive')
        state = 'inactive'
    if state == 'inactive':
        assert lifecycle(client, multi, Transition.TRANSITION_CLEANUP) == (True, 'unconfigured')
    assert lifecycle(client, multi, Transition.TRANSITION_CONFIGURE) == (True, 'inactive')
    rig = Rig(client, subscriptions, f'{multi.namespace}/left',
              f'{multi.namespace}/left/image/compressed', CompressedImage)
    idle = compressed_msg(street_like(64, 128))
    rig.publisher.publish(idle)
    assert rig.outputs['labels'].with_stamp(idle.header.stamp, timeout=1.0) is None
    assert lifecycle(client, multi, Transition.TRANSITION_ACTIVATE) == (True, 'active')
    rig.send(compressed_msg(street_like(64, 128)))
    assert lifecycle(client, multi, Transition.TRANSITION_DEACTIVATE) == (True, 'inactive')
    stopped = compressed_msg(street_like(64, 128))
    rig.publisher.publish(stopped)
    assert rig.outputs['labels'].with_stamp(stopped.header.stamp, timeout=1.0) is None
    assert lifecycle(client, multi, Transition.TRANSITION_CLEANUP) == (True, 'unconfigured')
    assert lifecycle(client, multi, Transition.TRANSITION_CONFIGURE) == (True, 'inactive')
    assert lifecycle(client, multi, Transition.TRANSITION_ACTIVATE) == (True, 'active')
    rig.send(compressed_msg(street_like(64, 128)))


def test_compressed_input_under_a_remap_is_served(client, active_multi, subscriptions):
    rig = Rig(client, subscriptions, f'{active_multi.namespace}/front',
              '/remapped_front/image_raw/compressed', CompressedImage)
    for ext in ('.png', '.jpg'):
        msg = compressed_msg(street_like(64, 128), ext)
        labels = rig.send(msg)['labels']
        assert labels.header == msg.header
        assert (labels.height, labels.width, labels.encoding) == (64, 128, 'mono8')


def test_two_cameras_of_different_sizes_publish_on_their_own_namespaces(
        client, active_multi, subscriptions):
    front = Rig(client, subscriptions, f'{active_multi.namespace}/front',
                '/remapped_front/image_raw/compressed', CompressedImage)
    left = Rig(client, subscriptions, f'{active_multi.namespace}/left',
               f'{active_multi.namespace}/left/image/compressed', CompressedImage)
    front_msg = compressed_msg(street_like(64, 128), frame_id='front')
    left_msg = compressed_msg(street_like(48, 96), frame_id='left')
    front.publisher.publish(front_msg)
    left_labels = left.send(left_msg)['labels']
    front_labels = front.send(front_msg)['labels']
    assert (front_labels.header.frame_id, front_labels.width) == ('front', 128)
    assert (left_labels.header.frame_id, left_labels.width) == ('left', 96)
    assert front.outputs['labels'].with_stamp(left_msg.header.stamp, timeout=0) is None


def test_odd_stamps_in_one_batch_cost_no_camera_its_frame(client, active_multi, subscriptions):
    front = Rig(client, subscriptions, f'{active_multi.namespace}/front',
                '/remapped_front/image_raw/compressed', CompressedImage)
    left = Rig(client, subscriptions, f'{active_multi.namespace}/left',
               f'{active_multi.namespace}/left/image/compressed', CompressedImage)
    for sec in (-1, -7):
        front_msg = compressed_msg(street_like(64, 128), frame_id='front')
        left_msg = compressed_msg(street_like(48, 96), frame_id='left')
        front_msg.header.stamp = Time(sec=sec, nanosec=5)
        left_msg.header.stamp = Time(sec=sec - 1, nanosec=6)
        front.publisher.publish(front_msg)  # most often in the same batch as the left frame
        assert left.send(left_msg)['labels'].header == left_msg.header
        # Inputs are best effort: a frame dropped on the way under load is sent again.
        assert front.send(front_msg)['labels'].header == front_msg.header


def test_corrupt_compressed_frame_is_counted_and_the_next_frame_served(
        client, active_multi, subscriptions, diagnostics):
    topic = f'{active_multi.namespace}/left/image/compressed'
    rig = Rig(client, subscriptions, f'{active_multi.namespace}/left', topic, CompressedImage)
    rig.send(compressed_msg(street_like(64, 128)))
    key = 'errors: corrupt_compressed'
    before = counted(diagnostics_values(diagnostics, topic), key)
    bad = compressed_msg(street_like(64, 128))
    bad.data = bytes(bad.data)[:40]
    publish_until_counted(rig.publisher, bad, diagnostics, topic, key, before)
    good = compressed_msg(street_like(64, 128))
    assert rig.send(good)['labels'].header == good.header


def _peak_rss_mib(pid):
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    raise AssertionError('no VmHWM in /proc status')


@pytest.mark.parametrize('codec, width, height', [
    ('jpg', 30000, 30000), ('jpg', 16000, 16000), ('png', 16000, 16000), ('png', 8000, 4400)])
def test_a_compressed_image_claiming_a_huge_size_is_refused_before_decoding(
        client, active_multi, subscriptions, diagnostics, codec, width, height):
    topic = f'{active_multi.namespace}/left/image/compressed'
    rig = Rig(client, subscriptions, f'{active_multi.namespace}/left', topic, CompressedImage)
    rig.send(compressed_msg(street_like(64, 128)))
    peak = _peak_rss_mib(active_multi.pid)
    key = 'errors: absurd_size'
    before = counted(diagnostics_values(diagnostics, topic), key)
    bomb = compressed_msg(street_like(16, 16), f'.{codec}')
    bomb.data = claiming(f'.{codec}', width, height)
    publish_until_counted(rig.publisher, bomb, diagnostics, topic, key, before)
    good = compressed_msg(street_like(64, 128))
    assert rig.send(good, timeout=10.0)['labels'].header == good.header
    # A decode would have taken gigabytes (30000x30000 x 3 bytes = 2.5 GiB).
    assert _peak_rss_mib(active_multi.pid) - peak < 20


@pytest.mark.parametrize('ext', ['.bmp', '.webp', '.tiff'])
def test_compressed_formats_other_than_jpeg_and_png_are_refused_by_name(
        client, active_multi, subscriptions, diagnostics, ext):
    topic = f'{active_multi.namespace}/left/image/compressed'
    rig = Rig(client, subscriptions, f'{active_multi.namespace}/left', topic, CompressedImage)
    key = 'errors: unsupported_encoding'
    before = counted(diagnostics_values(diagnostics, topic), key)
    publish_until_counted(rig.publisher, compressed_msg(street_like(32, 32), ext), diagnostics,
                          topic, key, before)
    # Logs are throttled per camera and kind: the first refusal names its format.
    active_multi.wait_for_log(r'compressed \w+ images are not accepted: send jpeg or png')
    good = compressed_msg(street_like(64, 128), '.jpg')
    assert rig.send(good)['labels'].header == good.header


# -- precisions this machine only emulates ---------------------------------------------

def test_an_emulated_precision_fails_configure_and_is_rejected_as_a_parameter(
        client, workdir, model_path, domain_id):
    # The AVX2-only class, simulated: the node sees no native bf16 on any machine.
    namespace = f'/emulated_{secrets.token_hex(3)}'
    node = NodeProcess(
        ['-p', f'model_path:={model_path}', '-p', 'autostart:=false', '-p', 'precision:=bf16',
         '-p', 'threads:=1', '-r', f'__ns:={namespace}'],
        ros_environment(domain_id, BISENET_ROS_HARDWARE='avx2'), workdir / 'emulated.log')
    node.namespace = namespace
    try:
        assert lifecycle_state(client, node) == 'unconfigured'
        assert lifecycle(client, node, Transition.TRANSITION_CONFIGURE) == (
            False, 'unconfigured')
        line = node.wait_for_log(r'ERROR.*configure.*|ERROR.*cannot run.*').group(0)
        assert 'cannot run backend auto on auto at precision bf16' in line
        assert f'class {simulated_class()}) has no native bf16' in line and 'use fp32' in line
        errors = [x for x in node.log().splitlines() if 'ERROR' in x]
        assert len(errors) == 1 and 'Traceback' not in node.log()
        for value in ('bf16', 'fp16'):  # unconfigured: the probe's reason
            result = set_parameter(client, node, 'precision', value)
            assert not result.successful and 'emulated' in result.reason
        assert set_parameter(client, node, 'precision', 'fp32').successful
        assert lifecycle(client, node, Transition.TRANSITION_CONFIGURE) == (True, 'inactive')
        node.wait_for_log(rf'hardware: .*class {simulated_class()}.*BISENET_ROS_HARDWARE=avx2')
        result = set_parameter(client, node, 'precision', 'bf16')  # configured: structural
        assert not result.successful and 'clean up the node first' in result.reason
        # After shutdown nothing configures again: the reason says so, not 'clean up'.
        request = ChangeState.Request()
        request.transition.id = Transition.TRANSITION_INACTIVE_SHUTDOWN
        client.call(ChangeState, f'{namespace}/{NODE}/change_state', request, timeout=60)
        assert lifecycle_state(client, node) == 'finalized'
        result = set_parameter(client, node, 'model_path', '/elsewhere/model.pth')
        assert not result.successful and 'shut down' in result.reason
        assert 'clean up' not in result.reason
    finally:
        node.stop()
