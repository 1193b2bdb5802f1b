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

"""The node runs a foreign 150-class model: LabelInfo names and mask colours from its table."""

from pathlib import Path

from bisenet_ros.class_tables import load_class_table
from builtin_interfaces.msg import Time
import cv2
from helpers import needs_ros_extra
from node_rig import exchange
import numpy as np
import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_helpers import NodeProcess, random_domain_id, ros_environment, TestClient
from sensor_msgs.msg import Image
import torch
from torch import nn
import yaml

REPO = Path(__file__).resolve().parents[1]
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture(scope='module')
def ade_model(tmp_path_factory):
    """Return a 150-class scores model with a sidecar naming the ade20k table."""
    folder = tmp_path_factory.mktemp('ade')
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 150, 1))
    path = folder / 'ade.onnx'
    torch.onnx.export(net.eval(), torch.zeros(1, 3, 64, 96), str(path), dynamo=False,
                      opset_version=17, input_names=['input'], output_names=['seg_logits'])
    path.with_suffix('.yaml').write_text(yaml.safe_dump({
        'input': {'color': 'RGB', 'range': 255, 'mean': [123.675, 116.28, 103.53],
                  'std': [58.395, 57.12, 57.375]},
        'output': {'kind': 'scores'}, 'classes': 'ade20k'}))
    return path


def test_the_node_publishes_the_tables_names_and_colours(ade_model, tmp_path):
    label_info_type = needs_ros_extra('vision_msgs.msg').LabelInfo
    domain = random_domain_id()
    client = TestClient(domain)
    node = NodeProcess(['--params-file', str(REPO / 'config' / 'segmentation.yaml'),
                        '-p', f'model_path:={ade_model}', '-p', 'backend:=onnxruntime',
                        '-p', 'threads:=1', '-p', f'cache_dir:={tmp_path / "cache"}'],
                       ros_environment(domain), tmp_path / 'node.log')
    try:
        node.wait_for_log('active: segmenting', timeout=90)
        table = load_class_table('ade20k')
        info = client.subscribe(label_info_type, '/label_info', LATCHED).wait_for(
            lambda m: True)
        assert [(c.class_id, c.class_name) for c in info.class_map] == list(
            enumerate(table.names))
        labels = client.subscribe(Image, '/labels', RELIABLE)
        colour = client.subscribe(Image, '/color', RELIABLE)
        publisher = client.publisher(Image, '/image', RELIABLE)
        client.wait_for_subscribers(publisher)
        # The colour mask is computed only for a subscriber the node has matched.
        for inbox in (labels, colour):
            client.wait_for_publishers(inbox)
        rng = np.random.default_rng(0)
        rgb = cv2.resize(rng.integers(0, 255, (4, 6, 3), dtype=np.uint8), (96, 64),
                         interpolation=cv2.INTER_CUBIC)
        msg = Image(height=64, width=96, encoding='rgb8', step=96 * 3, data=rgb.tobytes())
        msg.header.stamp = Time(sec=1_700_000_123, nanosec=5)
        # Sent until both outputs of its stamp arrive: the node's side of the match may lag.
        got = exchange(publisher, msg, {'labels': labels, 'color': colour})
        got_labels, got_colour = got['labels'], got['color']
        ids = np.frombuffer(bytes(got_labels.data), np.uint8).reshape(64, 96)
        mask = np.frombuffer(bytes(got_colour.data), np.uint8).reshape(64, 96, 3)
        palette = np.array(table.palette, np.uint8)
        assert ids.max() < 150 and len(np.unique(ids)) > 1
        np.testing.assert_array_equal(mask, palette[ids])
    finally:
        node.stop()
        client.close()
