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
The node's parameters: declarations with descriptors, one table of choices, validation.

Structural parameters are read at configure and refused while configured;
live ones change the running node at once. The checks here are plain
functions of the values, so they are unit-tested without DDS.
"""

import re

from bisenet_ros.node.interface import CHOICES, NODE_NAME
from bisenet_ros.runtime import auto, hardware
from bisenet_ros.runtime.config import MAX_BATCH, MAX_INPUT_SIDE, MAX_THREADS, RuntimeConfig
from bisenet_ros.runtime.options import DEFAULT_MAX_PIXELS, MAX_IMAGE_PIXELS, STRIDE
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.parameter import Parameter


# A camera name becomes a namespace: ROS name tokens separated by '/'.
_CAMERA_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$')


def _choice(description, choices):
    return ParameterDescriptor(description=description,
                               additional_constraints='one of: ' + ', '.join(
                                   choice or "''" for choice in choices))


def _int_range(description, low, high, step=1):
    return ParameterDescriptor(
        description=description,
        integer_range=[IntegerRange(from_value=low, to_value=high, step=step)])


def _float_range(description, low, high):
    return ParameterDescriptor(
        description=description,
        floating_point_range=[FloatingPointRange(from_value=low, to_value=high, step=0.0)])


_AT_CONFIGURE = ' Takes effect at configure: change it while the node is unconfigured.'
# The runtime's defaults are RuntimeConfig's: the node starts as every tool does.
_RUNTIME = RuntimeConfig()

# name -> (default, descriptor). Structural parameters are read at configure;
# live ones change behaviour immediately.
STRUCTURAL_PARAMETERS = {
    'model_path': ('', ParameterDescriptor(
        description='Checkpoint (.pth/.safetensors, CoinCheung, mmseg or own format) or '
                    'exported .onnx; empty = the shipped demonstration model.' + _AT_CONFIGURE)),
    'backend': (_RUNTIME.backend, _choice(
        'Inference backend; auto = the fastest that keeps the accuracy bar here.'
        + _AT_CONFIGURE, CHOICES['backend'])),
    'device': (_RUNTIME.device, _choice(
        'Device to run the network on; auto = a CUDA GPU if there is one.' + _AT_CONFIGURE,
        CHOICES['device'])),
    'precision': (_RUNTIME.precision, _choice(
        "Network precision; auto = the fastest that keeps the accuracy bar, '' = the model "
        "file's own (else fp32)." + _AT_CONFIGURE, CHOICES['precision'])),
    'input_width': (0, _int_range(
        f"Network input width in pixels, a multiple of {STRIDE}; 0 = the model's own."
        + _AT_CONFIGURE, 0, MAX_INPUT_SIDE, STRIDE)),
    'input_height': (0, _int_range(
        f"Network input height in pixels, a multiple of {STRIDE}; 0 = the model's own."
        + _AT_CONFIGURE, 0, MAX_INPUT_SIDE, STRIDE)),
    'resize': (_RUNTIME.resize, _choice(
        'How images reach the network size: stretch, letterbox (keep aspect) or native '
        '(pad to a multiple of 32, torch only).' + _AT_CONFIGURE, CHOICES['resize'])),
    'label_resize': (_RUNTIME.label_resize, _choice(
        'How labels get back to the image size: nearest (resize label ids) or logits '
        '(upsample scores, then argmax).' + _AT_CONFIGURE, CHOICES['label_resize'])),
    'threads': (0, _int_range('CPU threads for torch, ONNX Runtime and OpenCV; 0 = their '
                              'default.' + _AT_CONFIGURE, 0, MAX_THREADS)),
    'max_batch': (_RUNTIME.batch, _int_range(
        'Most frames (of different cameras) run through the network together.' + _AT_CONFIGURE,
        1, MAX_BATCH)),
    'int8_min_agreement': (_RUNTIME.int8_min_agreement, _float_range(
        'Refuse an int8 model that labelled fewer of its held-out calibration pixels as fp32 '
        'did (the share measured at quantisation).' + _AT_CONFIGURE, 0.0, 1.0)),
    'image_transport': ('raw', _choice(
        "Input transport: raw (sensor_msgs/Image on 'image') or compressed "
        "(sensor_msgs/CompressedImage on '<resolved image topic>/compressed')." + _AT_CONFIGURE,
        CHOICES['image_transport'])),
    'cameras': (Parameter.Type.STRING_ARRAY, ParameterDescriptor(
        description="Camera names; each subscribes '<cam>/image' and publishes "
                    "'<cam>/labels' etc. Empty = one camera on the plain names." + _AT_CONFIGURE)),
    'diagnostics_period': (1.0, _float_range(
        'Seconds between /diagnostics messages.' + _AT_CONFIGURE, 0.05, 60.0)),
    'max_model_memory': (0, _int_range(
        'Most MiB a model graph may need (weights plus live tensors, inferred before any '
        'runtime allocates); 0 = half the RAM.' + _AT_CONFIGURE, 0, 1 << 40)),
    'cache_dir': ('', ParameterDescriptor(
        description='Folder of ONNX exports and adapted foreign models; empty = '
                    '~/.cache/bisenet_ros.' + _AT_CONFIGURE)),
    'class_table': ('', ParameterDescriptor(
        description='Class names and colours for LabelInfo, class_info and the colour mask: '
                    'a shipped table (cityscapes, ade20k, camvid, pascal_voc, coco_stuff) or a '
                    "YAML/CSV file; empty = the model's own." + _AT_CONFIGURE)),
}

LIVE_PARAMETERS = {
    'overlay_alpha': (0.5, _float_range(
        'Weight of the colour mask in the overlay: 0 = image only, 1 = mask only.', 0.0, 1.0)),
    'publish_color': (True, ParameterDescriptor(
        description="Publish the palette colour mask on 'color' (computed only while "
                    'someone subscribes).')),
    'publish_overlay': (True, ParameterDescriptor(
        description="Publish the image blended with the colour mask on 'overlay' (computed "
                    'only while someone subscribes).')),
    'publish_confidence': (False, ParameterDescriptor(
        description="Publish 255 x max class probability on 'confidence' (computed only "
                    'while someone subscribes).')),
    'max_rate': (0.0, _float_range(
        'Most frames per second segmented per camera; 0 = as many as arrive.', 0.0, 1000.0)),
    'max_image_pixels': (DEFAULT_MAX_PIXELS, _int_range(
        'Largest input image accepted, in pixels (width x height); a compressed image is '
        'checked from its own header before it is decoded. Default 8K (7680x4320).',
        1, MAX_IMAGE_PIXELS)),
}

AUTOSTART = ('autostart', True, ParameterDescriptor(
    description='Configure and activate at start, like a plain node; false = wait for '
                'lifecycle transitions.', read_only=True))


# How to get a structural parameter to take effect, by lifecycle state.
_STRUCTURAL_REFUSAL = {
    'inactive': 'clean up the node first (lifecycle cleanup), then set it and configure again',
    'active': 'deactivate and clean up the node first (lifecycle), then set it and configure '
              'again',
    'finalized': 'this node is shut down and configures no more: start the node again with '
                 'the new value',
}


def check_parameter(name, value, state, confidence_available):
    """Return why ``value`` is not acceptable for ``name`` in lifecycle ``state``, or None."""
    if name in STRUCTURAL_PARAMETERS and state in _STRUCTURAL_REFUSAL:
        return f'{name} takes effect at configure; {_STRUCTURAL_REFUSAL[state]}'
    configured = state in ('inactive', 'active')
    choices = CHOICES.get(name)
    if choices is not None and value not in choices:
        return f'{name} {value!r} is not one of: {", ".join(repr(c) for c in choices)}'
    if name == 'cameras' and value:
        for camera in value:
            if not _CAMERA_RE.match(camera):
                return (f'camera name {camera!r} is not a valid namespace: use letters, '
                        "digits and '_', starting with a letter ('/' separates levels)")
        if len(set(value)) != len(value):
            return f'camera names must be unique, got {list(value)}'
    if name == 'publish_confidence' and value and configured and not confidence_available:
        return ('the loaded ONNX model outputs labels only: set publish_confidence true '
                'before configure, or use a model exported with confidence')
    return None


def emulated_precision(backend, device, precision):
    """Return why ``precision`` ('' = the model's own) would only be emulated here, or None."""
    try:
        return auto.refusal(hardware.probe(), backend, device, precision)
    except ValueError as exc:  # a malformed BISENET_ROS_HARDWARE
        return str(exc)


def unknown_parameter_warning(name, qos_topics):
    """
    Return the warning for a --params-file / -p key that no parameter took.

    ``qos_overrides.<topic>.*`` keys name a topic; ``qos_topics`` lists the
    topics whose QoS can be overridden.
    """
    if name.startswith('qos_overrides.'):
        return (f"unknown parameter '{name}' ignored: this node has no publisher or "
                f'subscription with that topic and policy (QoS can be overridden for: '
                f"{', '.join(qos_topics)}; policies history, depth, reliability)")
    known = sorted(['autostart', *STRUCTURAL_PARAMETERS, *LIVE_PARAMETERS])
    return (f"unknown parameter '{name}' ignored: {NODE_NAME} has no such parameter "
            f"(known: {', '.join(known)}, qos_overrides.*)")


_DECLARED = {AUTOSTART[0]: AUTOSTART[1:], **STRUCTURAL_PARAMETERS, **LIVE_PARAMETERS}


def _kind(value):
    """Return how a parameter's value type is said: 'a double', 'a list of strings'..."""
    if value is Parameter.Type.STRING_ARRAY:
        return 'a list of strings'
    return {bool: 'a bool', int: 'an integer', float: 'a double', str: 'a string',
            list: 'a list', dict: 'a mapping', type(None): 'empty'}.get(type(value), 'a value')


def given_value_problem(name, value):
    """
    Return why ``value``, given at start (params file, -p), is not one ``name`` takes, or None.

    Type, range and the checks of :func:`check_parameter`, applied to every
    value a source gives: rcl keeps only one per parameter and drops a later
    value of another type silently. Names the node does not declare pass
    (they are reported as unknown).
    """
    if name not in _DECLARED:
        return None
    default, descriptor = _DECLARED[name]
    if default is Parameter.Type.STRING_ARRAY:
        typed = isinstance(value, list) and all(isinstance(item, str) for item in value)
    else:
        typed = type(value) is type(default)
    if not typed:
        hint = f' (write {float(value)!r})' if (
            isinstance(default, float) and type(value) is int) else ''
        return f'{value!r} is {_kind(value)}; it takes {_kind(default)}{hint}'
    for bounds in (*descriptor.integer_range, *descriptor.floating_point_range):
        if not bounds.from_value <= value <= bounds.to_value:  # NaN is out too
            return f'{value!r} is out of its range {bounds.from_value}..{bounds.to_value}'
        step = getattr(bounds, 'step', 0)
        if step and value != bounds.to_value and (value - bounds.from_value) % step:
            return f'{value!r} is not a multiple of {step}'
    return check_parameter(name, value, 'unconfigured', True)
