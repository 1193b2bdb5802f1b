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

"""The node and hostile model files (issue 22, defect 1): a bad sibling never stops it."""

from pathlib import Path
import re
import shutil

from bisenet_ros.resources import demo_model_path
from model_files import write_model
from ros_helpers import NodeProcess, random_domain_id, ros_environment

REPO = Path(__file__).resolve().parents[1]


def _node(model, tmp_path, *params):
    args = ['--params-file', str(REPO / 'config' / 'segmentation.yaml'),
            '-p', f'model_path:={model}', '-p', 'threads:=1',
            '-p', f'cache_dir:={tmp_path / "cache"}']
    for param in params:
        args += ['-p', param]
    return NodeProcess(args, ros_environment(random_domain_id()), tmp_path / 'node.log')


def test_a_truncated_sibling_leaves_the_node_serving_its_checkpoint(tmp_path):
    checkpoint = tmp_path / 'demo.safetensors'
    shutil.copy(demo_model_path(), checkpoint)
    demo = demo_model_path()
    shipped = demo.with_name(f'{demo.stem}_int8.onnx').read_bytes()
    sibling = tmp_path / 'demo_int8.onnx'
    sibling.write_bytes(shipped[:len(shipped) // 3])
    node = _node(checkpoint, tmp_path)
    try:
        node.wait_for_log('active: segmenting', timeout=180)
        assert len(re.findall(re.escape(f'skipping {sibling}'), node.log())) == 1, node.log()
    finally:
        node.stop()


def test_a_named_file_that_lies_fails_configure_naming_that_file(tmp_path):
    model = write_model(tmp_path / 'lying.onnx', 'labels of 200')
    node = _node(model, tmp_path, 'backend:=onnxruntime')
    try:
        node.wait_for_log(re.escape(f'{model}: output labels holds 200 on a probe run'),
                          timeout=90)
        assert 'Traceback' not in node.log()
    finally:
        node.stop()
