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
The single-camera node in its own process, driven over real DDS from this one.

Outputs and their headers, class tables, camera info, every encoding, bad
frames, diagnostics, live parameters, and last a SIGINT that ends the shared
node (the rig: test/node_rig.py).
"""

import json
from pathlib import Path
import time

from bisenet_ros.image_msgs import image_to_rgb, SUPPORTED_ENCODINGS
from bisenet_ros.runtime import auto, hardware
from builtin_interfaces.msg import Time
import cv2
from helpers import street_like
from node_rig import (as_array, counted, diagnostics_values, fastdds_segments, FRAMES_DROPPED,
                      image_msg, LATCHED, latched_class_names, latched_label_info, left_behind,
                      next_stamp, NODE, NUM_CLASSES, publish_until_counted, RELIABLE, Rig,
                      set_parameter)
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import wait_until
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String


# -- the single-camera node --------------------------------------------------------------

def test_unknown_yaml_key_is_reported_in_the_log(single):
    single.wait_for_log(r"WARN.*unknown parameter 'overlay_alpah'")


def test_qos_overrides_apply_to_their_own_topic_only(client, single):
    def reliability(topic):
        infos = wait_until(lambda: [info for info in
                                    client.node.get_subscriptions_info_by_topic(topic)
                                    if info.node_name == NODE], what=f'{NODE} on {topic}')
        return infos[0].qos_profile.reliability

    assert reliability(f'{single.namespace}/camera_info') == ReliabilityPolicy.RELIABLE
    assert reliability(single.topic) == ReliabilityPolicy.BEST_EFFORT
    assert "unknown parameter 'qos_overrides" not in single.log()


def test_labels_keep_the_input_header_size_and_encoding(rig):
    for height, width in ((64, 128), (45, 77)):
        msg = image_msg(street_like(height, width))
        labels = rig.send(msg)['labels']
        assert labels.header.stamp == msg.header.stamp
        assert labels.header.frame_id == msg.header.frame_id
        assert (labels.height, labels.width, labels.encoding) == (height, width, 'mono8')
        ids = as_array(labels)
        assert np.all((ids < NUM_CLASSES) | (ids == 255))
        assert len(np.unique(ids)) > 1


def test_class_names_and_palette_are_latched(client, single, subscriptions):
    inbox = client.subscribe(String, f'{single.namespace}/class_info', LATCHED)
    subscriptions.append(inbox)
    msg = inbox.wait_for(lambda m: True)
    assert msg is not None, 'class_info was not latched'
    info = json.loads(msg.data)
    assert len(info['class_names']) == NUM_CLASSES == len(info['palette'])
    assert info['class_names'][0] == 'road' and info['palette'][0] == [128, 64, 128]
    assert info['ignore_label'] == 255


def test_label_info_reaches_a_late_subscriber_with_the_checkpoint_classes(
        client, single, subscriptions):
    msg = latched_label_info(client, f'{single.namespace}/label_info', subscriptions)
    names = latched_class_names(client, single.namespace, subscriptions)
    assert [(c.class_id, c.class_name) for c in msg.class_map] == list(enumerate(names))
    assert len(names) == NUM_CLASSES and names[0] == 'road'
    assert 255 not in [c.class_id for c in msg.class_map]  # the ignore id is no class
    assert msg.threshold == 0.0
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) != (0, 0)  # stamped at activation


def test_color_overlay_and_confidence_are_computed_only_when_subscribed(
        client, single, rig, subscriptions, diagnostics):
    wait_until(lambda: client.node.count_subscribers(f'{single.namespace}/overlay') == 0)
    rig.send(image_msg(street_like(64, 128, seed=1)))
    before = diagnostics_values(diagnostics, single.topic)
    rig.send(image_msg(street_like(64, 128, seed=2)))
    after = diagnostics_values(diagnostics, single.topic,
                               lambda v: counted(v, 'frames published')
                               > counted(before, 'frames published'))
    for output in ('color', 'overlay', 'confidence'):
        assert counted(after, f'published: {output}') == counted(before, f'published: {output}')

    for output in ('color', 'overlay', 'confidence'):
        rig.subscribe(output, subscriptions)
    rgb = street_like(64, 128, seed=3)
    got = rig.send(image_msg(rgb))
    assert [got[o].encoding for o in ('color', 'overlay', 'confidence')] == \
        ['rgb8', 'rgb8', 'mono8']
    for reply in got.values():
        assert (reply.height, reply.width) == (64, 128)
        assert reply.header == got['labels'].header
    assert np.any(as_array(got['confidence']) > 0)


def test_color_and_overlay_are_the_palette_and_its_blend(client, single, rig, subscriptions):
    info = client.subscribe(String, f'{single.namespace}/class_info', LATCHED)
    subscriptions.append(info)
    palette = np.zeros((256, 3), dtype=np.uint8)
    colours = json.loads(info.wait_for(lambda m: True).data)['palette']
    palette[:len(colours)] = colours
    rig.subscribe('color', subscriptions)
    rig.subscribe('overlay', subscriptions)
    for alpha in (0.5, 0.8):
        assert set_parameter(client, single, 'overlay_alpha', alpha).successful
        rgb = street_like(64, 128, seed=4)
        got = rig.send(image_msg(rgb))
        mask = palette[as_array(got['labels'])]
        np.testing.assert_array_equal(as_array(got['color']), mask)
        blend = cv2.addWeighted(rgb, 1 - alpha, mask, alpha, 0)
        assert np.abs(as_array(got['overlay']).astype(int) - blend).max() <= 1
    assert set_parameter(client, single, 'overlay_alpha', 0.5).successful


def test_camera_info_is_republished_with_the_frame_header(client, single, rig, subscriptions):
    info_pub = client.publisher(CameraInfo, f'{single.namespace}/camera_info', RELIABLE)
    client.wait_for_subscribers(info_pub)
    info = CameraInfo(width=128, height=64, distortion_model='plumb_bob')
    info.header.stamp = Time(sec=5)
    info.header.frame_id = 'info_frame'
    info.k = [100.0, 0.0, 64.0, 0.0, 100.0, 32.0, 0.0, 0.0, 1.0]
    rig.subscribe('labels/camera_info', subscriptions)
    msg = image_msg(street_like(64, 128))

    def send_both():
        info_pub.publish(info)
        return rig.send(msg, timeout=3.0)

    got = None
    deadline = time.monotonic() + 30
    while got is None and time.monotonic() < deadline:
        try:
            got = send_both()
        except AssertionError:  # camera_info not there yet: send both again
            msg = image_msg(street_like(64, 128))
    assert got is not None
    republished = got['labels/camera_info']
    assert republished.header == msg.header
    assert list(republished.k) == list(info.k)
    assert (republished.width, republished.height) == (128, 64)


@pytest.mark.parametrize('width, height', [(0, 4294967295), (64, 32)])
def test_camera_info_of_another_size_is_republished_as_received_and_warned_once(
        client, single, rig, subscriptions, width, height):
    info_pub = client.publisher(CameraInfo, f'{single.namespace}/camera_info', RELIABLE)
    client.wait_for_subscribers(info_pub)
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.k = [float(width), 0.0, 1.0, 0.0, float(height), 2.0, 0.0, 0.0, 1.0]
    rig.subscribe('labels/camera_info', subscriptions)
    republished = None
    deadline = time.monotonic() + 30
    while republished is None and time.monotonic() < deadline:
        info_pub.publish(info)
        try:
            got = rig.send(image_msg(street_like(64, 128)), timeout=3.0)
        except AssertionError:  # camera_info not there yet: send both again
            continue
        out = got['labels/camera_info']
        if (out.width, out.height) == (width, height):  # not an earlier test's CameraInfo
            republished = out
    assert republished is not None and list(republished.k) == list(info.k)
    rig.send(image_msg(street_like(64, 128)))
    warnings = [line for line in single.log().splitlines()
                if 'describes' in line and 'but they are 128x64' in line]
    assert len(warnings) == 1, warnings  # once per camera, whatever follows


def _raw_bytes(encoding, height, width, seed):
    """Return random row bytes for ``encoding`` (any bytes are a valid image)."""
    channels = {'rgb': 3, 'bgr': 3, 'rgba': 4, 'bgra': 4, 'mono': 1}
    depth = 2 if encoding.endswith('16') else 1
    if encoding.startswith(('yuv', 'uyvy', 'yuyv')):
        per_pixel = 2
    elif encoding.startswith('bayer'):
        per_pixel = depth
    else:
        per_pixel = channels[encoding.rstrip('0123456789')] * depth
    rows = street_like(height, width * per_pixel, seed)[:, :, 0]
    return np.ascontiguousarray(rows), width * per_pixel


@pytest.mark.parametrize('bigendian', [0, 1])
def test_every_supported_encoding_is_segmented_like_its_rgb_conversion(rig, bigendian):
    height, width = 48, 64
    encodings = [e for e in SUPPORTED_ENCODINGS if e.endswith('16')] if bigendian \
        else SUPPORTED_ENCODINGS
    for index, encoding in enumerate(encodings):
        rows, row_bytes = _raw_bytes(encoding, height, width, seed=index)
        step = row_bytes + 8  # padded rows must be honoured too
        padded = np.full((height, step), 0xAB, dtype=np.uint8)
        padded[:, :row_bytes] = rows
        msg = Image(height=height, width=width, encoding=encoding, step=step,
                    is_bigendian=bigendian, data=padded.tobytes())
        msg.header.stamp = next_stamp()
        reference = image_msg(image_to_rgb(msg))
        served = as_array(rig.send(msg)['labels'])
        expected = as_array(rig.send(reference)['labels'])
        np.testing.assert_array_equal(served, expected, err_msg=encoding)


@pytest.mark.parametrize('reliability', [ReliabilityPolicy.RELIABLE,
                                         ReliabilityPolicy.BEST_EFFORT])
def test_reliable_and_best_effort_publishers_are_served(
        client, single, subscriptions, reliability):
    qos = QoSProfile(depth=10, reliability=reliability)
    rig = Rig(client, subscriptions, single.namespace, single.topic, input_qos=qos)
    msg = image_msg(street_like(64, 128))
    assert rig.send(msg)['labels'].header.stamp == msg.header.stamp


def _bad(kind):
    rgb = street_like(64, 128)
    msg = image_msg(rgb)
    if kind == 'unsupported_encoding':
        msg.encoding = '32FC1'
    elif kind == 'data_size_short':
        msg.data = rgb.tobytes()[:-5]
    elif kind == 'data_size_long':
        msg.data = rgb.tobytes() + b'\0' * 128
    elif kind == 'bad_step':
        msg.step = 128 * 3 - 1
    elif kind == 'zero_size':
        msg.width, msg.step, msg.data = 0, 0, b''
    elif kind == 'absurd_size':
        msg.width, msg.height, msg.step = 100000, 100000, 300000
    elif kind == 'frame_id':  # every output would copy it: refused, and the log shows 64
        msg.header.frame_id = 'f' * 100_000
    return msg


def test_bad_frame_error_names_topic_stamp_and_problem(single, rig):
    rig.send(image_msg(street_like(64, 128)))  # the path is up: the bad frame will arrive
    bad = image_msg(street_like(64, 128), encoding='16UC1')
    bad.header.stamp = Time(sec=1234, nanosec=5678)
    rig.publisher.publish(bad)
    single.wait_for_log(rf'ERROR.*{single.topic} stamp 1234\.000005678.*'
                        r"unsupported encoding '16UC1'")


@pytest.mark.parametrize('case', ['unsupported_encoding', 'data_size_short', 'data_size_long',
                                  'bad_step', 'zero_size', 'absurd_size', 'frame_id'])
def test_bad_frame_is_counted_and_the_next_good_frame_served(single, rig, diagnostics, case):
    kind = case.replace('_short', '').replace('_long', '')
    rig.send(image_msg(street_like(64, 128)))
    before = counted(diagnostics_values(diagnostics, single.topic), f'errors: {kind}')
    bad = _bad(case)
    after = publish_until_counted(rig.publisher, bad, diagnostics, single.topic,
                                  f'errors: {kind}', before)
    assert after['_message']
    good = image_msg(street_like(64, 128))
    assert rig.send(good)['labels'].header.stamp == good.header.stamp
    assert rig.outputs['labels'].with_stamp(bad.header.stamp, timeout=0) is None


@pytest.mark.parametrize('sec, nanosec', [
    (-1, 0), (-2_000_000_000, 999_999_999), (2_147_483_647, 999_999_999), (0, 1)])
def test_any_stamp_a_header_can_hold_is_served_and_kept(single, rig, sec, nanosec):
    msg = image_msg(street_like(48, 64))
    msg.header.stamp = Time(sec=sec, nanosec=nanosec)
    assert rig.send(msg)['labels'].header == msg.header
    assert 'unexpected' not in single.log()


def test_diagnostics_report_rates_latency_errors_and_backend(single, rig, diagnostics):
    for seed in range(3):
        rig.send(image_msg(street_like(64, 128, seed)))
    values = diagnostics_values(diagnostics, single.topic,
                                lambda v: v['processing time p50 / p95 (ms)'] != 'n/a')
    p50, p95 = (float(v) for v in values['processing time p50 / p95 (ms)'].split(' / '))
    assert 0 < p50 <= p95
    inference = float(values['inference time p50 / p95 (ms)'].split(' / ')[0])
    assert 0 < inference <= p50  # the segmenter's share of receive-to-publish
    # The params file says backend, device and precision auto: the rule's first choice runs.
    chosen = auto.candidates(hardware.probe(), auto.ModelFacts(), device='cpu')[0]
    assert values['backend'].startswith(chosen.backend) and values['device'] == 'cpu'
    assert chosen.precision in values['backend']
    assert values['hardware'].startswith(hardware.probe().cpu.model)
    for key in ('input rate (Hz)', 'output rate (Hz)', FRAMES_DROPPED, 'age p50 / p95 (ms)',
                'errors'):
        assert key in values


def test_frames_arriving_faster_than_the_network_are_dropped_and_counted(
        single, rig, diagnostics):
    rig.send(image_msg(street_like(64, 128)))
    before = counted(diagnostics_values(diagnostics, single.topic), FRAMES_DROPPED)
    burst = [image_msg(street_like(64, 128, seed)) for seed in range(30)]
    for msg in burst:
        rig.publisher.publish(msg)
    # The newest frame is always served; most of the burst was replaced unseen.
    assert rig.send(burst[-1])['labels'].header == burst[-1].header
    served = sum(rig.outputs['labels'].with_stamp(m.header.stamp, timeout=0) is not None
                 for m in burst)
    after = diagnostics_values(diagnostics, single.topic,
                               lambda v: counted(v, FRAMES_DROPPED) > before)
    assert served < len(burst)
    assert counted(after, FRAMES_DROPPED) - before <= len(burst) - served


def test_live_parameter_change_is_accepted(client, single):
    assert set_parameter(client, single, 'publish_overlay', False).successful
    assert set_parameter(client, single, 'publish_overlay', True).successful


@pytest.mark.parametrize('name, value, reason', [
    ('overlay_alpha', 1.5, ''),
    ('model_path', '/elsewhere/model.pth', 'clean up'),
    ('backend', 'tensorrt', 'clean up'),
    ('precision', 'bf16', 'clean up'),
])
def test_invalid_parameter_change_is_rejected_with_a_reason(client, single, name, value,
                                                            reason):
    result = set_parameter(client, single, name, value)
    assert not result.successful
    assert reason in result.reason and result.reason


def test_sigint_exits_0_and_leaves_no_process_or_shared_memory(single):
    segments = fastdds_segments(single)
    assert single.interrupt(timeout=30) == 0
    assert not Path(f'/proc/{single.pid}').exists()
    assert not left_behind(segments), 'shared memory left behind'
