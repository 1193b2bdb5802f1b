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
Evidence for an int8 file, measured the way it will run.

The int8 file and its fp32 parent are both run by the Segmenter (each file's
own input size and outputs) in each ONNX runtime installed, on every frame of
a labelled split that took no part in training or model selection. The
figures per runtime: each file's mIoU and the share of pixels the int8 file
labels as its parent does.
"""

from pathlib import Path

from bisenet_ros.runtime import hardware
from bisenet_ros.training.metrics import confusion_matrix, mean_iou
import numpy as np

RUNTIMES = ('onnxruntime', 'openvino')


def measure(int8_path, fp32_path, dataset, split, classes=None, threads=None):
    """
    Return the ``int8_evidence`` dict of ``int8_path`` on ``dataset`` (named ``split``).

    ``fp32_path`` None measures the int8 file alone (no fp32 mIoU, no
    agreement); ``classes`` are the trainIds the mIoU averages (None: all).
    """
    runtimes = [name for name in RUNTIMES if name in hardware.probe().backends]
    if not runtimes:
        raise ValueError('measuring int8 evidence needs onnxruntime or openvino (pip install '
                         '"bisenet_ros[onnx]")')
    return {'split': split, 'frames': len(dataset),
            'classes': list(classes) if classes is not None else None,
            'runtimes': {name: _compare(int8_path, fp32_path, name, dataset, classes, threads)
                         for name in runtimes}}


def _compare(int8_path, fp32_path, backend, dataset, classes, threads):
    from bisenet_ros.runtime import build_segmenter, RuntimeConfig
    # Each file at its own precision, on the CPU, in one runtime.
    config = RuntimeConfig(backend=backend, device='cpu', precision=None, threads=threads)
    # Unchecked on purpose: these figures are what the gate will check.
    int8 = build_segmenter(int8_path, config, int8_min_agreement=0.0)
    fp32 = build_segmenter(fp32_path, config) if fp32_path else None
    count = int8.info.num_classes
    matrices = {'int8': 0, 'fp32': 0}
    same = total = 0
    for index in range(len(dataset)):
        rgb, label = dataset.load(index)
        labels = int8.segment([rgb])[0].labels
        matrices['int8'] = matrices['int8'] + confusion_matrix(labels, label, count)
        if fp32 is not None:
            parent = fp32.segment([rgb])[0].labels
            matrices['fp32'] = matrices['fp32'] + confusion_matrix(parent, label, count)
            same += int(np.count_nonzero(parent == labels))
            total += labels.size
    figures = {'int8_miou': mean_iou(matrices['int8'], classes)}
    if fp32 is not None:
        figures.update(fp32_miou=mean_iou(matrices['fp32'], classes), agreement=same / total)
    return figures


def write_evidence(path, evidence):
    """
    Store ``evidence`` in the int8 file at ``path`` with this CPU's class, atomically.

    A QAT file keeps all of it; a post-training file its agreement (the worst runtime's).
    """
    import onnx
    from bisenet_ros.runtime.export import read_metadata, set_metadata
    meta = read_metadata(path)
    figures = evidence['runtimes'].values()
    if meta.get('int8_method') == 'qat':
        meta['int8_evidence'] = evidence
    meta.update(int8_cpu_class=hardware.probe().cpu.cpu_class,
                int8_agreement=min(f['agreement'] for f in figures),
                int8_check_frames=evidence['frames'])
    proto = onnx.load(str(path))
    set_metadata(proto, meta)
    partial = Path(path).with_name(Path(path).name + '.partial')
    try:
        onnx.save(proto, str(partial), save_as_external_data=False)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return meta
