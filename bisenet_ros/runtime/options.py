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
The values the runtime's options take, importable without torch or OpenCV.

The Segmenter, the node's parameter table, the tools' arguments and the
launch files all read them here, so they cannot drift apart.
"""

BACKENDS = ('torch', 'onnxruntime', 'openvino')
# 'auto' (backend, device or precision) lets runtime.auto choose: the fastest path that
# keeps the accuracy bar on this machine, for this model file.
AUTO = 'auto'
DEVICES = ('cpu', 'cuda')
PRECISIONS = ('fp32', 'fp16', 'bf16', 'int8')
RESIZE_POLICIES = ('stretch', 'letterbox', 'native')
LABEL_RESIZE = ('nearest', 'logits')
# int8 activations each backend's files are quantised with: zero-pointed uint8 for ONNX
# Runtime, symmetric int8 for OpenVINO (it runs zero points less accurately).
ACTIVATIONS = {'onnxruntime': 'u8', 'openvino': 's8'}
# What render_outputs can make of one segmented frame.
OUTPUTS = ('labels', 'color', 'overlay', 'confidence')
# Network input sides are multiples of the network's output stride.
STRIDE = 32
# Input images: limits well above any real camera; larger headers are corrupt or
# hostile and would make a decoder allocate gigabytes. DEFAULT_MAX_PIXELS (8K,
# 7680x4320) is accepted unless told otherwise (max_image_pixels), up to
# MAX_IMAGE_PIXELS.
MAX_IMAGE_SIDE = 16384
MAX_IMAGE_PIXELS = 2 ** 28
DEFAULT_MAX_PIXELS = 7680 * 4320
