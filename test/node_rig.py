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
The node tests' rig: a node process, a ROS client beside it, frames, waits and diagnostics.

A pytest plugin (test/conftest.py loads it): module-scoped fixtures start the
shared node processes once per test module that uses them: ``single``
(autostart, one camera, raw images) and ``multi`` (started unconfigured,
cameras front and left, compressed transport, the front image remapped). The
helpers wait for the graph or for the outputs of the frame sent, never for a
fixed time.
"""

import itertools
import json
from pathlib import Path
import secrets
import time

from bisenet_ros.checkpoint import load_checkpoint, save_checkpoint
from builtin_interfaces.msg import Time
import cv2
from diagnostic_msgs.msg import DiagnosticArray
from helpers import needs_ros_extra, reference_state_dict
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_helpers import NodeProcess, random_domain_id, ros_environment, TestClient
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


def lifecycle_state(client, node):
    response = client.call(GetState, f'{node.namespace}/{NODE}/get_state', GetState.Request(),
                           timeout=90)
    assert response is not None, 'get_state did not answer'
    return response.current_state.label


def lifecycle(client, node, transition=None):
    """Apply ``transition`` (if any) and return (success, state label)."""
    if transition is None:
        return True, lifecycle_state(client, node)
    request = ChangeState.Request()
    request.transition.id = transition
    response = client.call(ChangeState, f'{node.namespace}/{NODE}/change_state', request,
                           timeout=60, attempt=None)
    state = lifecycle_state(client, node)
    # A lost reply (see TestClient.call) is judged by the state reached instead.
    success = response.success if response is not None else state == _GOAL[transition]
    return success, state


@pytest.fixture()
def active_multi(client, multi):
    """Return the ``multi`` node, configured and activated through its services."""
    _, state = lifecycle(client, multi)
    if state == 'unconfigured':
        assert lifecycle(client, multi, Transition.TRANSITION_CONFIGURE) == (True, 'inactive')
        state = 'inactive'
    if state == 'inactive':
        assert lifecycle(client, multi, Transition.TRANSITION_ACTIVATE) == (True, 'active')
    return multi


@pytest.fixture()
def subscriptions(client):
    """Yield a list to append inboxes to; their subscriptions are destroyed afterwards."""
    made = []
    yield made
    for inbox in made:
        client.unsubscribe(inbox)


# -- building and sending frames ---------------------------------------------------------

def next_stamp():
    n = next(_stamps)
    return Time(sec=1_700_000_000 + n, nanosec=1000 * n + 7)


def image_msg(rgb, encoding='rgb8', frame_id='camera_optical'):
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding,
                step=rgb.shape[1] * 3, data=rgb.tobytes())
    msg.header.stamp = next_stamp()
    msg.header.frame_id = frame_id
    return msg


def compressed_msg(rgb, ext='.png', frame_id='camera_optical'):
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage(format=f'rgb8; {ext[1:]} compressed bgr8', data=data.tobytes())
    msg.header.stamp = next_stamp()
    msg.header.frame_id = frame_id
    return msg


def exchange(publisher, msg, inboxes, timeout=30.0, resend=2.0):
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


def as_array(msg):
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
        return exchange(self.publisher, msg, {n: self.outputs[n] for n in names}, timeout)


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


def status_values(inbox, topic, predicate=lambda values: True, timeout=20.0):
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


def diagnostics_values(inbox, topic, predicate=lambda values: True, timeout=20.0):
    values = status_values(inbox, topic, predicate, timeout)
    assert values is not None, f'no matching diagnostics for {topic} within {timeout:.0f} s'
    return values


def publish_until_counted(publisher, msg, inbox, topic, key, before):
    """Publish ``msg`` until diagnostics count ``key`` above ``before``; return the values."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        publisher.publish(msg)
        values = status_values(inbox, topic, lambda v: counted(v, key) > before, timeout=1.5)
        if values is not None:
            return values
    raise AssertionError(f'{key} did not rise above {before} in the diagnostics of {topic}')


def counted(values, key):
    return int(values.get(key, 0))


def set_parameter(client, node, name, value):
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


def latched_label_info(client, topic, subscriptions):
    """Return the LabelInfo a subscriber that starts now gets on ``topic``."""
    label_info = needs_ros_extra('vision_msgs.msg').LabelInfo
    inbox = client.subscribe(label_info, topic, LATCHED)
    subscriptions.append(inbox)
    msg = inbox.wait_for(lambda m: True)
    assert msg is not None, f'{topic} was not latched'
    return msg


def latched_class_names(client, namespace, subscriptions):
    inbox = client.subscribe(String, f'{namespace}/class_info', LATCHED)
    subscriptions.append(inbox)
    return json.loads(inbox.wait_for(lambda m: True).data)['class_names']


def fastdds_segments(node):
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


def left_behind(segments):
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
