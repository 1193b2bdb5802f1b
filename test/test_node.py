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
The segmentation node in its own process, driven over real DDS from this one.

Two node processes are shared by the tests: ``single`` (autostart, one camera,
raw images) and ``multi`` (started unconfigured, cameras front and left,
compressed transport, the front image remapped). Each test waits for the graph
or for the outputs of the frame it sent, never for a fixed time.
"""

import itertools
import json
import os
from pathlib import Path
import secrets
import signal
import time

from bisenet_ros.checkpoint import load_checkpoint, save_checkpoint
from bisenet_ros.image_msgs import image_to_rgb, SUPPORTED_ENCODINGS
from bisenet_ros.runtime import auto, hardware
from builtin_interfaces.msg import Time
import cv2
from diagnostic_msgs.msg import DiagnosticArray
from helpers import claiming, needs_ros_extra, reference_state_dict, simulated_class
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_helpers import (NodeProcess, random_domain_id, ros_environment, run_node_to_exit,
                         TestClient, wait_until)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String
import torch

REPO = Path(__file__).resolve().parents[1]
NODE = 'bisenet_segmentation'
NUM_CLASSES = 19
INPUT_SIZE = [128, 64]  # network (W, H): tiny, so each frame is quick on a busy CPU
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
FRAMES_DROPPED = 'frames dropped (newer frame arrived first)'
_stamps = itertools.count(1)


# -- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def domain_id():
    """Return this run's random ROS domain."""
    return random_domain_id()


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    """Return a directory for the model, parameter files and node logs."""
    return tmp_path_factory.mktemp('node')


@pytest.fixture(scope='module')
def model_path(workdir):
    """Return a small own-format checkpoint (reference weights, 128x64 input)."""
    torch.save(reference_state_dict('coincheung_v2'), workdir / 'reference.pth')
    model, _ = load_checkpoint(workdir / 'reference.pth')
    path = workdir / 'tiny_v2.safetensors'
    save_checkpoint(path, model, {'arch': 'bisenetv2', 'input_size': INPUT_SIZE})
    return path


@pytest.fixture(scope='module')
def client(domain_id):
    """Return the test process's ROS node, spinning in the background."""
    ros = TestClient(domain_id)
    yield ros
    ros.close()


def _params_file(workdir, name, text):
    path = workdir / name
    path.write_text(text)
    return str(path)


@pytest.fixture(scope='module')
def single(workdir, model_path, domain_id, client):
    """Start a node (one camera, raw images) with a params file holding a misspelt key."""
    namespace = f'/single_{secrets.token_hex(3)}'
    extra = _params_file(workdir, 'single.yaml', (
        '/**:\n'
        '  ros__parameters:\n'
        '    diagnostics_period: 0.2\n'
        '    publish_confidence: true\n'
        '    threads: 1\n'
        '    overlay_alpah: 0.3\n'
        '    qos_overrides:\n'
        f'      {namespace}/camera_info:\n'
        '        subscription:\n'
        '          reliability: reliable\n'))
    node = NodeProcess(
        ['--params-file', str(REPO / 'config' / 'segmentation.yaml'), '--params-file', extra,
         '-p', f'model_path:={model_path}', '-r', f'__ns:={namespace}'],
        ros_environment(domain_id), workdir / 'single.log')
    node.namespace = namespace
    node.topic = f'{namespace}/image'
    node.wait_for_log('active: segmenting', timeout=90)
    yield node
    node.stop()


@pytest.fixture(scope='module')
def multi(workdir, model_path, domain_id, client):
    """Start an unconfigured node: cameras front and left, compressed, front remapped."""
    namespace = f'/multi_{secrets.token_hex(3)}'
    node = NodeProcess(
        ['--params-file', str(REPO / 'config' / 'segmentation.yaml'),
         '-p', f'model_path:={model_path}', '-p', 'autostart:=false',
         '-p', 'cameras:=[front, left]', '-p', 'image_transport:=compressed',
         '-p', 'threads:=1', '-p', 'diagnostics_period:=0.2',
         '-r', f'__ns:={namespace}', '-r', 'front/image:=/remapped_front/image_raw'],
        ros_environment(domain_id), workdir / 'multi.log')
    node.namespace = namespace
    yield node
    node.stop()


_GOAL = {Transition.TRANSITION_CONFIGURE: 'inactive', Transition.TRANSITION_ACTIVATE: 'active',
         Transition.TRANSITION_DEACTIVATE: 'inactive',
         Transition.TRANSITION_CLEANUP: 'unconfigured'}


def _state(client, node):
    response = client.call(GetState, f'{node.namespace}/{NODE}/get_state', GetState.Request(),
                           timeout=90)
    assert response is not None, 'get_state did not answer'
    return response.current_state.label


def _lifecycle(client, node, transition=None):
    """Apply ``transition`` (if any) and return (success, state label)."""
    if transition is None:
        return True, _state(client, node)
    request = ChangeState.Request()
    request.transition.id = transition
    response = client.call(ChangeState, f'{node.namespace}/{NODE}/change_state', request,
                           timeout=60, attempt=None)
    state = _state(client, node)
    # A lost reply (see TestClient.call) is judged by the state reached instead.
    success = response.success if response is not None else state == _GOAL[transition]
    return success, state


@pytest.fixture()
def active_multi(client, multi):
    """Return the ``multi`` node, configured and activated through its services."""
    _, state = _lifecycle(client, multi)
    if state == 'unconfigured':
        assert _lifecycle(client, multi, Transition.TRANSITION_CONFIGURE) == (True, 'inactive')
        state = 'inactive'
    if state == 'inactive':
        assert _lifecycle(client, multi, Transition.TRANSITION_ACTIVATE) == (True, 'active')
    return multi


@pytest.fixture()
def subscriptions(client):
    """Yield a list to append inboxes to; their subscriptions are destroyed afterwards."""
    made = []
    yield made
    for inbox in made:
        client.unsubscribe(inbox)


# -- building and sending frames ---------------------------------------------------------

def _street_like(height, width, seed=0):
    """Return a smooth RGB image: the network then predicts several classes."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _stamp():
    n = next(_stamps)
    return Time(sec=1_700_000_000 + n, nanosec=1000 * n + 7)


def _image(rgb, encoding='rgb8', frame_id='camera_optical'):
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding,
                step=rgb.shape[1] * 3, data=rgb.tobytes())
    msg.header.stamp = _stamp()
    msg.header.frame_id = frame_id
    return msg


def _compressed(rgb, ext='.png', frame_id='camera_optical'):
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage(format=f'rgb8; {ext[1:]} compressed bgr8', data=data.tobytes())
    msg.header.stamp = _stamp()
    msg.header.frame_id = frame_id
    return msg


def _exchange(publisher, msg, inboxes, timeout=30.0, resend=2.0):
    """
    Publish ``msg`` until every inbox holds a message with its stamp; return them by name.

    Resending covers the first frames after discovery, which a best-effort
    subscription may miss; the node serves a repeated stamp again.
    """
    deadline = time.monotonic() + timeout
    found = {}
    while time.monotonic() < deadline:
        publisher.publish(msg)
        for name, inbox in inboxes.items():
            if name not in found:
                reply = inbox.with_stamp(msg.header.stamp, timeout=resend if not found else 0.5)
                if reply is not None:
                    found[name] = reply
        if len(found) == len(inboxes):
            return found
    missing = sorted(set(inboxes) - set(found))
    raise AssertionError(f'no {", ".join(missing)} for the frame stamped '
                         f'{msg.header.stamp.sec} within {timeout:.0f} s')


def _array(msg):
    channels = {'mono8': 1, 'rgb8': 3}[msg.encoding]
    assert msg.step == msg.width * channels
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, 3)
    return data.reshape(shape)


class Rig:
    """Publisher and output inboxes of one camera of a node."""

    def __init__(self, client, subscriptions, prefix, input_topic, input_type=Image,
                 input_qos=RELIABLE, outputs=('labels',)):
        self.client = client
        self.prefix = prefix
        self.publisher = client.publisher(input_type, input_topic, input_qos)
        self.outputs = {}
        for name in outputs:
            self.subscribe(name, subscriptions)
        client.wait_for_subscribers(self.publisher)

    def subscribe(self, name, subscriptions):
        msg_type = CameraInfo if name == 'labels/camera_info' else Image
        inbox = self.client.subscribe(msg_type, f'{self.prefix}/{name}', RELIABLE)
        subscriptions.append(inbox)
        self.client.wait_for_publishers(inbox)
        self.outputs[name] = inbox
        return inbox

    def send(self, msg, outputs=None, timeout=30.0):
        names = outputs or list(self.outputs)
        return _exchange(self.publisher, msg, {n: self.outputs[n] for n in names}, timeout)


@pytest.fixture()
def rig(client, single, subscriptions):
    """Return a Rig on the ``single`` node receiving labels."""
    return Rig(client, subscriptions, single.namespace, single.topic)


@pytest.fixture()
def diagnostics(client, subscriptions):
    """Return an Inbox of /diagnostics."""
    inbox = client.subscribe(DiagnosticArray, '/diagnostics', RELIABLE)
    subscriptions.append(inbox)
    return inbox


def _status(inbox, topic, predicate=lambda values: True, timeout=20.0):
    """
    Return the key/values of a status for ``topic`` satisfying ``predicate``, or None.

    Only arrays received after the call are looked at.
    """
    inbox.clear()
    found = {}

    def match(array):
        for status in array.status:
            if status.name.endswith(f': {topic}'):
                values = {kv.key: kv.value for kv in status.values}
                values.update(_level=status.level, _message=status.message)
                if predicate(values):
                    found.update(values)
                    return True
        return False

    return found if inbox.wait_for(match, timeout) is not None else None


def _diagnostics(inbox, topic, predicate=lambda values: True, timeout=20.0):
    values = _status(inbox, topic, predicate, timeout)
    assert values is not None, f'no matching diagnostics for {topic} within {timeout:.0f} s'
    return values


def _publish_until_counted(publisher, msg, inbox, topic, key, before):
    """Publish ``msg`` until diagnostics count ``key`` above ``before``; return the values."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        publisher.publish(msg)
        values = _status(inbox, topic, lambda v: _count(v, key) > before, timeout=1.5)
        if values is not None:
            return values
    raise AssertionError(f'{key} did not rise above {before} in the diagnostics of {topic}')


def _count(values, key):
    return int(values.get(key, 0))


def _set_parameter(client, node, name, value):
    if isinstance(value, bool):
        pvalue = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    elif isinstance(value, float):
        pvalue = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    else:
        pvalue = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=pvalue)])
    response = client.call(SetParameters, f'{node.namespace}/{NODE}/set_parameters', request)
    assert response is not None, 'set_parameters did not answer'
    return response.results[0]


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
        msg = _image(_street_like(height, width))
        labels = rig.send(msg)['labels']
        assert labels.header.stamp == msg.header.stamp
        assert labels.header.frame_id == msg.header.frame_id
        assert (labels.height, labels.width, labels.encoding) == (height, width, 'mono8')
        ids = _array(labels)
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


def _label_info(client, topic, subscriptions):
    """Return the LabelInfo a subscriber that starts now gets on ``topic``."""
    label_info = needs_ros_extra('vision_msgs.msg').LabelInfo
    inbox = client.subscribe(label_info, topic, LATCHED)
    subscriptions.append(inbox)
    msg = inbox.wait_for(lambda m: True)
    assert msg is not None, f'{topic} was not latched'
    return msg


def _class_names(client, namespace, subscriptions):
    inbox = client.subscribe(String, f'{namespace}/class_info', LATCHED)
    subscriptions.append(inbox)
    return json.loads(inbox.wait_for(lambda m: True).data)['class_names']


def test_label_info_reaches_a_late_subscriber_with_the_checkpoint_classes(
        client, single, subscriptions):
    msg = _label_info(client, f'{single.namespace}/label_info', subscriptions)
    names = _class_names(client, single.namespace, subscriptions)
    assert [(c.class_id, c.class_name) for c in msg.class_map] == list(enumerate(names))
    assert len(names) == NUM_CLASSES and names[0] == 'road'
    assert 255 not in [c.class_id for c in msg.class_map]  # the ignore id is no class
    assert msg.threshold == 0.0
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) != (0, 0)  # stamped at activation


def test_label_info_sits_beside_each_cameras_mask(client, active_multi, subscriptions):
    front, left = (_label_info(client, f'{active_multi.namespace}/{cam}/label_info',
                               subscriptions) for cam in ('front', 'left'))
    assert front.class_map == left.class_map and len(front.class_map) == NUM_CLASSES
    assert front.header == left.header


def test_without_vision_msgs_the_node_says_so_once_and_serves_frames(
        client, workdir, model_path, domain_id, subscriptions):
    # A pip-only install has no vision_msgs: a package on PYTHONPATH that fails to
    # import stands for it, whatever this machine has installed.
    hidden = workdir / 'no_vision_msgs'
    (hidden / 'vision_msgs').mkdir(parents=True, exist_ok=True)
    (hidden / 'vision_msgs' / '__init__.py').write_text(
        "raise ImportError('vision_msgs is not installed here')\n")
    namespace = f'/pip_only_{secrets.token_hex(3)}'
    env = ros_environment(domain_id, PYTHONPATH=os.pathsep.join(
        [str(hidden), *filter(None, [os.environ.get('PYTHONPATH')])]))
    node = NodeProcess(['-p', f'model_path:={model_path}', '-p', 'threads:=1',
                        '-p', 'backend:=torch', '-r', f'__ns:={namespace}'],
                       env, workdir / 'pip_only.log')
    try:
        node.wait_for_log('active: segmenting', timeout=90)
        rig = Rig(client, subscriptions, namespace, f'{namespace}/image')
        assert rig.send(_image(_street_like(48, 64)))['labels'].height == 48
        warnings = [line for line in node.log().splitlines() if 'vision_msgs' in line]
        assert len(warnings) == 1 and 'label_info (vision_msgs/LabelInfo) is not published' \
            in warnings[0] and 'WARN' in warnings[0]
        assert client.node.get_publishers_info_by_topic(f'{namespace}/label_info') == []
    finally:
        node.stop()


def test_color_overlay_and_confidence_are_computed_only_when_subscribed(
        client, single, rig, subscriptions, diagnostics):
    wait_until(lambda: client.node.count_subscribers(f'{single.namespace}/overlay') == 0)
    rig.send(_image(_street_like(64, 128, seed=1)))
    before = _diagnostics(diagnostics, single.topic)
    rig.send(_image(_street_like(64, 128, seed=2)))
    after = _diagnostics(diagnostics, single.topic,
                         lambda v: _count(v, 'frames published')
                         > _count(before, 'frames published'))
    for output in ('color', 'overlay', 'confidence'):
        assert _count(after, f'published: {output}') == _count(before, f'published: {output}')

    for output in ('color', 'overlay', 'confidence'):
        rig.subscribe(output, subscriptions)
    rgb = _street_like(64, 128, seed=3)
    got = rig.send(_image(rgb))
    assert [got[o].encoding for o in ('color', 'overlay', 'confidence')] == \
        ['rgb8', 'rgb8', 'mono8']
    for reply in got.values():
        assert (reply.height, reply.width) == (64, 128)
        assert reply.header == got['labels'].header
    assert np.any(_array(got['confidence']) > 0)


def test_color_and_overlay_are_the_palette_and_its_blend(client, single, rig, subscriptions):
    info = client.subscribe(String, f'{single.namespace}/class_info', LATCHED)
    subscriptions.append(info)
    palette = np.zeros((256, 3), dtype=np.uint8)
    colours = json.loads(info.wait_for(lambda m: True).data)['palette']
    palette[:len(colours)] = colours
    rig.subscribe('color', subscriptions)
    rig.subscribe('overlay', subscriptions)
    for alpha in (0.5, 0.8):
        assert _set_parameter(client, single, 'overlay_alpha', alpha).successful
        rgb = _street_like(64, 128, seed=4)
        got = rig.send(_image(rgb))
        mask = palette[_array(got['labels'])]
        np.testing.assert_array_equal(_array(got['color']), mask)
        blend = cv2.addWeighted(rgb, 1 - alpha, mask, alpha, 0)
        assert np.abs(_array(got['overlay']).astype(int) - blend).max() <= 1
    assert _set_parameter(client, single, 'overlay_alpha', 0.5).successful


def test_camera_info_is_republished_with_the_frame_header(client, single, rig, subscriptions):
    info_pub = client.publisher(CameraInfo, f'{single.namespace}/camera_info', RELIABLE)
    client.wait_for_subscribers(info_pub)
    info = CameraInfo(width=128, height=64, distortion_model='plumb_bob')
    info.header.stamp = Time(sec=5)
    info.header.frame_id = 'info_frame'
    info.k = [100.0, 0.0, 64.0, 0.0, 100.0, 32.0, 0.0, 0.0, 1.0]
    rig.subscribe('labels/camera_info', subscriptions)
    msg = _image(_street_like(64, 128))

    def send_both():
        info_pub.publish(info)
        return rig.send(msg, timeout=3.0)

    got = None
    deadline = time.monotonic() + 30
    while got is None and time.monotonic() < deadline:
        try:
            got = send_both()
        except AssertionError:  # camera_info not there yet: send both again
            msg = _image(_street_like(64, 128))
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
            got = rig.send(_image(_street_like(64, 128)), timeout=3.0)
        except AssertionError:  # camera_info not there yet: send both again
            continue
        out = got['labels/camera_info']
        if (out.width, out.height) == (width, height):  # not an earlier test's CameraInfo
            republished = out
    assert republished is not None and list(republished.k) == list(info.k)
    rig.send(_image(_street_like(64, 128)))
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
    rows = _street_like(height, width * per_pixel, seed)[:, :, 0]
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
        msg.header.stamp = _stamp()
        reference = _image(image_to_rgb(msg))
        served = _array(rig.send(msg)['labels'])
        expected = _array(rig.send(reference)['labels'])
        np.testing.assert_array_equal(served, expected, err_msg=encoding)


@pytest.mark.parametrize('reliability', [ReliabilityPolicy.RELIABLE,
                                         ReliabilityPolicy.BEST_EFFORT])
def test_reliable_and_best_effort_publishers_are_served(
        client, single, subscriptions, reliability):
    qos = QoSProfile(depth=10, reliability=reliability)
    rig = Rig(client, subscriptions, single.namespace, single.topic, input_qos=qos)
    msg = _image(_street_like(64, 128))
    assert rig.send(msg)['labels'].header.stamp == msg.header.stamp


def _bad(kind):
    rgb = _street_like(64, 128)
    msg = _image(rgb)
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
    rig.send(_image(_street_like(64, 128)))  # the path is up: the bad frame will arrive
    bad = _image(_street_like(64, 128), encoding='16UC1')
    bad.header.stamp = Time(sec=1234, nanosec=5678)
    rig.publisher.publish(bad)
    single.wait_for_log(rf'ERROR.*{single.topic} stamp 1234\.000005678.*'
                        r"unsupported encoding '16UC1'")


@pytest.mark.parametrize('case', ['unsupported_encoding', 'data_size_short', 'data_size_long',
                                  'bad_step', 'zero_size', 'absurd_size', 'frame_id'])
def test_bad_frame_is_counted_and_the_next_good_frame_served(single, rig, diagnostics, case):
    kind = case.replace('_short', '').replace('_long', '')
    rig.send(_image(_street_like(64, 128)))
    before = _count(_diagnostics(diagnostics, single.topic), f'errors: {kind}')
    bad = _bad(case)
    after = _publish_until_counted(rig.publisher, bad, diagnostics, single.topic,
                                   f'errors: {kind}', before)
    assert after['_message']
    good = _image(_street_like(64, 128))
    assert rig.send(good)['labels'].header.stamp == good.header.stamp
    assert rig.outputs['labels'].with_stamp(bad.header.stamp, timeout=0) is None


@pytest.mark.parametrize('sec, nanosec', [
    (-1, 0), (-2_000_000_000, 999_999_999), (2_147_483_647, 999_999_999), (0, 1)])
def test_any_stamp_a_header_can_hold_is_served_and_kept(single, rig, sec, nanosec):
    msg = _image(_street_like(48, 64))
    msg.header.stamp = Time(sec=sec, nanosec=nanosec)
    assert rig.send(msg)['labels'].header == msg.header
    assert 'unexpected' not in single.log()


def test_diagnostics_report_rates_latency_errors_and_backend(single, rig, diagnostics):
    for seed in range(3):
        rig.send(_image(_street_like(64, 128, seed)))
    values = _diagnostics(diagnostics, single.topic,
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
    rig.send(_image(_street_like(64, 128)))
    before = _count(_diagnostics(diagnostics, single.topic), FRAMES_DROPPED)
    burst = [_image(_street_like(64, 128, seed)) for seed in range(30)]
    for msg in burst:
        rig.publisher.publish(msg)
    # The newest frame is always served; most of the burst was replaced unseen.
    assert rig.send(burst[-1])['labels'].header == burst[-1].header
    served = sum(rig.outputs['labels'].with_stamp(m.header.stamp, timeout=0) is not None
                 for m in burst)
    after = _diagnostics(diagnostics, single.topic,
                         lambda v: _count(v, FRAMES_DROPPED) > before)
    assert served < len(burst)
    assert _count(after, FRAMES_DROPPED) - before <= len(burst) - served


def test_live_parameter_change_is_accepted(client, single):
    assert _set_parameter(client, single, 'publish_overlay', False).successful
    assert _set_parameter(client, single, 'publish_overlay', True).successful


@pytest.mark.parametrize('name, value, reason', [
    ('overlay_alpha', 1.5, ''),
    ('model_path', '/elsewhere/model.pth', 'clean up'),
    ('backend', 'tensorrt', 'clean up'),
    ('precision', 'bf16', 'clean up'),
])
def test_invalid_parameter_change_is_rejected_with_a_reason(client, single, name, value,
                                                            reason):
    result = _set_parameter(client, single, name, value)
    assert not result.successful
    assert reason in result.reason and result.reason


def _fastdds_segments(node):
    segments = {path for path in node.shared_memory_files()
                if 'fastdds' in path or 'fastrtps' in path}
    assert segments, 'the node mapped no Fast DDS shared memory: this check would prove nothing'
    return segments


def _mapped_by_live_processes():
    """Return the /dev/shm files some live process maps (Fast DDS port files are shared)."""
    mapped = set()
    for maps in Path('/proc').glob('[0-9]*/maps'):
        try:
            text = maps.read_text()
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
        mapped.update(line.split()[-1] for line in text.splitlines() if '/dev/shm/' in line)
    return mapped


def _left_behind(segments):
    """Return the files of ``segments`` (and companions) still in /dev/shm that none uses."""
    in_use = _mapped_by_live_processes()
    left = []
    for segment in segments - in_use:
        path = Path(segment)
        # Fast DDS keeps a lock file and a named semaphore beside each segment.
        for leftover in (path, path.with_name(path.name + '_el'),
                         path.with_name(f'sem.{path.name}_mutex')):
            if leftover.exists():
                left.append(str(leftover))
    return sorted(left)


def test_sigint_exits_0_and_leaves_no_process_or_shared_memory(single):
    segments = _fastdds_segments(single)
    assert single.interrupt(timeout=30) == 0
    assert not Path(f'/proc/{single.pid}').exists()
    assert not _left_behind(segments), 'shared memory left behind'


@pytest.mark.parametrize('second, gap', [
    (signal.SIGINT, 0.0), (signal.SIGINT, 0.05), (signal.SIGINT, 0.3), (signal.SIGINT, 1.5),
    (signal.SIGTERM, 0.15)])
def test_a_second_signal_while_frames_flow_still_exits_0_and_leaves_nothing(
        client, workdir, model_path, domain_id, subscriptions, second, gap):
    namespace = f'/signals_{secrets.token_hex(3)}'
    node = NodeProcess(['-p', f'model_path:={model_path}', '-p', 'threads:=1',
                        '-r', f'__ns:={namespace}'],
                       ros_environment(domain_id), workdir / f'{namespace[1:]}.log')
    try:
        node.wait_for_log('active: segmenting', timeout=90)
        rig = Rig(client, subscriptions, namespace, f'{namespace}/image')
        rig.send(_image(_street_like(48, 64)))
        segments = _fastdds_segments(node)
        for seed in range(3):  # frames in flight when the signals land
            rig.publisher.publish(_image(_street_like(48, 64, seed)))
        node.process.send_signal(signal.SIGINT)
        time.sleep(gap)
        node.process.send_signal(second)
        assert node.wait(timeout=60) == 0, node.log()[-2000:]
        assert 'Traceback' not in node.log() and 'terminate called' not in node.log()
        assert not _left_behind(segments), 'shared memory left behind'
    finally:
        node.stop()


def _catches_sigterm(pid):
    """Return whether the process has its own SIGTERM handler (the node installs it first)."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('SigCgt:'):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


@pytest.mark.parametrize('after', [0.0, 0.8, 2.0])
def test_signals_during_start_up_and_model_load_exit_0(workdir, model_path, domain_id, after):
    node = NodeProcess(['-p', f'model_path:={model_path}', '-p', 'threads:=1',
                        '-r', f'__ns:=/load_{secrets.token_hex(3)}'],
                       ros_environment(domain_id), workdir / f'load_{after}.log')
    try:
        # From the moment the node's handlers exist (before Python has even run the
        # node's main, no program can handle a signal): importing torch, loading the
        # model, configuring.
        wait_until(lambda: _catches_sigterm(node.pid), 60, 0.005, "the node's handlers")
        time.sleep(after)
        for number in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
            node.process.send_signal(number)
            time.sleep(0.05)
        assert node.wait(timeout=60) == 0, node.log()[-2000:]
        assert 'Traceback' not in node.log() and 'terminate called' not in node.log()
    finally:
        node.stop()


# -- the multi-camera, compressed, lifecycle-managed node ------------------------------

def test_lifecycle_transitions_through_the_services(client, multi, subscriptions):
    _, state = _lifecycle(client, multi)
    if state == 'active':  # left active by a test that ran before this one
        assert _lifecycle(client, multi, Transition.TRANSITION_DEACTIVATE) == (True, 'inactive')
        state = 'inactive'
    if state == 'inactive':
        assert _lifecycle(client, multi, Transition.TRANSITION_CLEANUP) == (True, 'unconfigured')
    assert _lifecycle(client, multi, Transition.TRANSITION_CONFIGURE) == (True, 'inactive')
    rig = Rig(client, subscriptions, f'{multi.namespace}/left',
              f'{multi.namespace}/left/image/compressed', CompressedImage)
    idle = _compressed(_street_like(64, 128))
    rig.publisher.publish(idle)
    assert rig.outputs['labels'].with_stamp(idle.header.stamp, timeout=1.0) is None
    assert _lifecycle(client, multi, Transition.TRANSITION_ACTIVATE) == (True, 'active')
    rig.send(_compressed(_street_like(64, 128)))
    assert _lifecycle(client, multi, Transition.TRANSITION_DEACTIVATE) == (True, 'inactive')
    stopped = _compressed(_street_like(64, 128))
    rig.publisher.publish(stopped)
    assert rig.outputs['labels'].with_stamp(stopped.header.stamp, timeout=1.0) is None
    assert _lifecycle(client, multi, Transition.TRANSITION_CLEANUP) == (True, 'unconfigured')
    assert _lifecycle(client, multi, Transition.TRANSITION_CONFIGURE) == (True, 'inactive')
    assert _lifecycle(client, multi, Transition.TRANSITION_ACTIVATE) == (True, 'active')
    rig.send(_compressed(_street_like(64, 128)))


def test_compressed_input_under_a_remap_is_served(client, active_multi, subscriptions):
    rig = Rig(client, subscriptions, f'{active_multi.namespace}/front',
              '/remapped_front/image_raw/compressed', CompressedImage)
    for ext in ('.png', '.jpg'):
        msg = _compressed(_street_like(64, 128), ext)
        labels = rig.send(msg)['labels']
        assert labels.header == msg.header
        assert (labels.height, labels.width, labels.encoding) == (64, 128, 'mono8')


def test_two_cameras_of_different_sizes_publish_on_their_own_namespaces(
        client, active_multi, subscriptions):
    front = Rig(client, subscriptions, f'{active_multi.namespace}/front',
                '/remapped_front/image_raw/compressed', CompressedImage)
    left = Rig(client, subscriptions, f'{active_multi.namespace}/left',
               f'{active_multi.namespace}/left/image/compressed', CompressedImage)
    front_msg = _compressed(_street_like(64, 128), frame_id='front')
    left_msg = _compressed(_street_like(48, 96), frame_id='left')
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
        front_msg = _compressed(_street_like(64, 128), frame_id='front')
        left_msg = _compressed(_street_like(48, 96), frame_id='left')
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
    rig.send(_compressed(_street_like(64, 128)))
    key = 'errors: corrupt_compressed'
    before = _count(_diagnostics(diagnostics, topic), key)
    bad = _compressed(_street_like(64, 128))
    bad.data = bytes(bad.data)[:40]
    _publish_until_counted(rig.publisher, bad, diagnostics, topic, key, before)
    good = _compressed(_street_like(64, 128))
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
    rig.send(_compressed(_street_like(64, 128)))
    peak = _peak_rss_mib(active_multi.pid)
    key = 'errors: absurd_size'
    before = _count(_diagnostics(diagnostics, topic), key)
    bomb = _compressed(_street_like(16, 16), f'.{codec}')
    bomb.data = claiming(f'.{codec}', width, height)
    _publish_until_counted(rig.publisher, bomb, diagnostics, topic, key, before)
    good = _compressed(_street_like(64, 128))
    assert rig.send(good, timeout=10.0)['labels'].header == good.header
    # A decode would have taken gigabytes (30000x30000 x 3 bytes = 2.5 GiB).
    assert _peak_rss_mib(active_multi.pid) - peak < 20


@pytest.mark.parametrize('ext', ['.bmp', '.webp', '.tiff'])
def test_compressed_formats_other_than_jpeg_and_png_are_refused_by_name(
        client, active_multi, subscriptions, diagnostics, ext):
    topic = f'{active_multi.namespace}/left/image/compressed'
    rig = Rig(client, subscriptions, f'{active_multi.namespace}/left', topic, CompressedImage)
    key = 'errors: unsupported_encoding'
    before = _count(_diagnostics(diagnostics, topic), key)
    _publish_until_counted(rig.publisher, _compressed(_street_like(32, 32), ext), diagnostics,
                           topic, key, before)
    # Logs are throttled per camera and kind: the first refusal names its format.
    active_multi.wait_for_log(r'compressed \w+ images are not accepted: send jpeg or png')
    good = _compressed(_street_like(64, 128), '.jpg')
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
        assert _state(client, node) == 'unconfigured'
        assert _lifecycle(client, node, Transition.TRANSITION_CONFIGURE) == (
            False, 'unconfigured')
        line = node.wait_for_log(r'ERROR.*configure.*|ERROR.*cannot run.*').group(0)
        assert 'cannot run backend auto on auto at precision bf16' in line
        assert f'class {simulated_class()}) has no native bf16' in line and 'use fp32' in line
        errors = [x for x in node.log().splitlines() if 'ERROR' in x]
        assert len(errors) == 1 and 'Traceback' not in node.log()
        for value in ('bf16', 'fp16'):  # unconfigured: the probe's reason
            result = _set_parameter(client, node, 'precision', value)
            assert not result.successful and 'emulated' in result.reason
        assert _set_parameter(client, node, 'precision', 'fp32').successful
        assert _lifecycle(client, node, Transition.TRANSITION_CONFIGURE) == (True, 'inactive')
        node.wait_for_log(rf'hardware: .*class {simulated_class()}.*BISENET_ROS_HARDWARE=avx2')
        result = _set_parameter(client, node, 'precision', 'bf16')  # configured: structural
        assert not result.successful and 'clean up the node first' in result.reason
        # After shutdown nothing configures again: the reason says so, not 'clean up'.
        request = ChangeState.Request()
        request.transition.id = Transition.TRANSITION_INACTIVE_SHUTDOWN
        client.call(ChangeState, f'{namespace}/{NODE}/change_state', request, timeout=60)
        assert _state(client, node) == 'finalized'
        result = _set_parameter(client, node, 'model_path', '/elsewhere/model.pth')
        assert not result.successful and 'shut down' in result.reason
        assert 'clean up' not in result.reason
    finally:
        node.stop()


# -- start-up failures -------------------------------------------------------------------

SEGMENTATION_YAML = str(REPO / 'config' / 'segmentation.yaml')
# Written into the test's folder by test_cannot_start_gives_one_line: name -> text.
HOSTILE_PARAMS_FILES = {
    'second.yaml': '/**:\n  ros__parameters:\n    overlay_alpha: abc\n    max_batch: 2.5\n',
    'batch.yaml': 'bisenet_segmentation:\n  ros__parameters:\n    max_batch: 2.5\n',
    # What launch writes for an integer past int64: rcl reads a double.
    'launch.yaml': '/**:\n  ros__parameters:\n    input_width: 1.0e+23\n',
    'nested.yaml': ('ns:\n  bisenet_segmentation:\n    ros__parameters:\n'
                    '      max_rate: 5\n'),
    'anchors.yaml': '/**:\n  ros__parameters:\n    a: &x 0.5\n    overlay_alpha: *x\n',
}


@pytest.mark.parametrize('args, hardware_override, code, expected', [
    (['-p', 'model_path:=/nonexistent/model.pth'], '', 1, '/nonexistent/model.pth'),
    (['-p', 'backend:=tensorrt'], '', 1, 'tensorrt'),
    (['-p', 'precision:=fp16'], '', 1, 'fp16 on a CPU would be emulated'),
    (['-p', 'precision:=bf16'], 'avx2', 1, 'no native bf16'),
    (['-p', 'precision:=bf16', '-p', 'backend:=openvino'], '-bf16', 1, 'no native bf16'),
    # rcl keeps the first source's type: each value given is checked, naming its source.
    (['--params-file', SEGMENTATION_YAML, '-p', 'overlay_alpha:=abc'], '', 1,
     "parameter overlay_alpha from the command line (-p): 'abc' is a string; it takes a "
     'double'),
    (['--params-file', SEGMENTATION_YAML, '-p', 'publish_color:=5'], '', 1,
     'parameter publish_color from the command line (-p): 5 is an integer; it takes a bool'),
    (['--params-file', SEGMENTATION_YAML, '--params-file', '{dir}/second.yaml'], '', 1,
     "parameter overlay_alpha from params file {dir}/second.yaml: 'abc' is a string"),
    (['--params-file', SEGMENTATION_YAML, '--params-file', '{dir}/batch.yaml'], '', 1,
     'parameter max_batch from params file {dir}/batch.yaml: 2.5 is a double; it takes an '
     'integer'),
    (['--params-file', SEGMENTATION_YAML, '--params-file', '{dir}/launch.yaml'], '', 1,
     'parameter input_width from params file {dir}/launch.yaml: 1e+23 is a double'),
    (['--params-file', SEGMENTATION_YAML, '--params-file', '{dir}/nested.yaml', '-r',
      '__ns:=/ns'], '', 1, 'parameter max_rate from params file {dir}/nested.yaml: 5 is an '
     'integer; it takes a double (write 5.0)'),
    (['-p', 'max_batch:=99999999999999999999999'], '', 1,
     'parameter max_batch from the command line (-p): 99999999999999999999999 is out of its '
     'range 1..64'),
    (['-p', 'input_width:=100'], '', 1, '100 is not a multiple of 32'),
    # What rcl cannot parse: one line, exit 2, rcl's own log lines held back.
    (['-r', 'image:=/a//b'], '', 2,
     "invalid ROS arguments: Couldn't parse remap rule: '-r image:=/a//b'"),
    (['-r', '__ns:=/a//b'], '', 2, "Couldn't parse remap rule: '-r __ns:=/a//b'"),
    (['--params-file', '{dir}/anchors.yaml'], '', 2,
     "Couldn't parse params file: '--params-file {dir}/anchors.yaml'"),
    (['--params-file', '{dir}/missing.yaml'], '', 2,
     "Couldn't parse params file: '--params-file {dir}/missing.yaml'"),
    (['--log-level', 'loud'], '', 2, "Couldn't parse log level: '--log-level loud'"),
    (['ROS_DOMAIN_ID=abc'], '', 2, 'cannot start ROS: ROS_DOMAIN_ID is not an integral number'),
    (['ROS_DOMAIN_ID=300'], '', 2, 'cannot start ROS: ROS_DOMAIN_ID 300 is out of range'),
])
def test_cannot_start_gives_one_line(domain_id, model_path, tmp_path, args, hardware_override,
                                     code, expected):
    for name, text in HOSTILE_PARAMS_FILES.items():
        (tmp_path / name).write_text(text)
    environment = dict(arg.split('=', 1) for arg in args if arg.startswith('ROS_'))
    args = [arg.format(dir=tmp_path) for arg in args if not arg.startswith('ROS_')]
    if 'model_path' not in ''.join(args):
        args = args + ['-p', f'model_path:={model_path}']
    env = ros_environment(domain_id, BISENET_ROS_HARDWARE=hardware_override)
    env.update(environment)
    exit_code, stdout, stderr = run_node_to_exit(args, env)
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    assert exit_code == code
    assert len(lines) == 1, lines
    assert expected.format(dir=tmp_path) in lines[0] and 'Traceback' not in lines[0]
