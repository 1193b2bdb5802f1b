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
The ROS 2 segmentation node: camera images in; labels, colour mask, overlay out.

Run it with ``python -m bisenet_ros.node --ros-args --params-file
config/segmentation.yaml`` (or the ``segmentation_node`` executable). It is a
lifecycle node that configures and activates itself unless ``autostart`` is
false:

- configure: load the model, create publishers, subscriptions and diagnostics;
- activate: publish the class table and start the inference worker;
- deactivate: stop the worker (waiting for the frame in flight);
- cleanup: destroy the topics and release the model. Python and CUDA memory
  of the model is released, but a CUDA context, once created, stays with the
  process until it exits.

Topics, relative to the node's namespace, with ``<cam>/`` in front of each
per-camera name when ``cameras`` lists cameras:

- in: ``<cam>/image`` (sensor_msgs/Image) or, with image_transport
  'compressed', ``<resolved image topic>/compressed``
  (sensor_msgs/CompressedImage); ``<cam>/camera_info``;
- out: ``<cam>/labels`` (mono8 trainIds, 255 = ignore), ``<cam>/color`` and
  ``<cam>/overlay`` (rgb8), ``<cam>/confidence`` (mono8, 255 x max class
  probability), ``<cam>/labels/camera_info`` (the camera's latest CameraInfo
  with the segmented frame's header, for exact time synchronisation), and
  ``class_info`` (std_msgs/String, JSON class names and palette, latched);
- ``/diagnostics`` (diagnostic_msgs/DiagnosticArray), one status per camera.

Everything that does not need ROS lives elsewhere: conversions in image_msgs,
inference in runtime, frame hand-over in frame_queue, statistics in stats.
"""

import collections
import copy
import functools
import gc
import json
import logging
import re
import sys
import threading
import time

from bisenet_ros import render
from bisenet_ros.checkpoint import CheckpointError
from bisenet_ros.frame_queue import LatestFrames, RateLimiter
from bisenet_ros.image_msgs import (compressed_to_rgb, fill_image, image_to_rgb, ImageFormatError,
                                    new_image)
from bisenet_ros.runtime import BackendUnavailableError, hardware, Segmenter
from bisenet_ros.runtime.backends import BACKENDS, DEVICES, PRECISIONS
from bisenet_ros.runtime.processing import LABEL_RESIZE, RESIZE_POLICIES, STRIDE
from bisenet_ros.stats import CameraStats, classify_image_error, diagnostic_status, ErrorThrottle
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException, ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data, QoSProfile,
                       ReliabilityPolicy)
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

__all__ = ['NODE_NAME', 'SegmentationNode', 'main']

NODE_NAME = 'bisenet_segmentation'
TRANSPORTS = ('raw', 'compressed')
OUTPUTS = ('labels', 'color', 'overlay', 'confidence')
IGNORE_LABEL = 255

# Outputs: reliable and volatile so RViz and `ros2 bag record` connect with their
# defaults; a small depth so a slow consumer cannot make memory grow.
OUTPUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
# Latched: a consumer that starts later still gets the class table.
CLASS_INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
DIAGNOSTICS_QOS = QoSProfile(depth=10)

# A camera name becomes a namespace: ROS name tokens separated by '/'.
_CAMERA_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$')

Frame = collections.namedtuple('Frame', ('msg', 'received'))
Frame.__doc__ = 'An image message and its arrival time (monotonic seconds).'


def _choice(description, choices):
    return ParameterDescriptor(description=description,
                               additional_constraints='one of: ' + ', '.join(choices))


def _int_range(description, low, high, step=1):
    return ParameterDescriptor(
        description=description,
        integer_range=[IntegerRange(from_value=low, to_value=high, step=step)])


def _float_range(description, low, high):
    return ParameterDescriptor(
        description=description,
        floating_point_range=[FloatingPointRange(from_value=low, to_value=high, step=0.0)])


_AT_CONFIGURE = ' Takes effect at configure: change it while the node is unconfigured.'

# name -> (default, descriptor). Structural parameters are read at configure;
# live ones change behaviour immediately.
STRUCTURAL_PARAMETERS = {
    'model_path': ('', ParameterDescriptor(
        description='Checkpoint (.pth/.safetensors, CoinCheung, mmseg or own format) or '
                    'exported .onnx; empty = the shipped demonstration model.' + _AT_CONFIGURE)),
    'backend': ('torch', _choice('Inference backend.' + _AT_CONFIGURE, BACKENDS)),
    'device': ('cpu', _choice('Device to run the network on.' + _AT_CONFIGURE, DEVICES)),
    'precision': ('', _choice("Network precision; '' = the model file's own (else fp32)."
                              + _AT_CONFIGURE, ('',) + PRECISIONS)),
    'input_width': (0, _int_range(
        f"Network input width in pixels, a multiple of {STRIDE}; 0 = the model's own."
        + _AT_CONFIGURE, 0, 8192, STRIDE)),
    'input_height': (0, _int_range(
        f"Network input height in pixels, a multiple of {STRIDE}; 0 = the model's own."
        + _AT_CONFIGURE, 0, 8192, STRIDE)),
    'resize': ('stretch', _choice(
        'How images reach the network size: stretch, letterbox (keep aspect) or native '
        '(pad to a multiple of 32, torch only).' + _AT_CONFIGURE, RESIZE_POLICIES)),
    'label_resize': ('nearest', _choice(
        'How labels get back to the image size: nearest (resize label ids) or logits '
        '(upsample scores, then argmax).' + _AT_CONFIGURE, LABEL_RESIZE)),
    'threads': (0, _int_range('CPU threads for torch, ONNX Runtime and OpenCV; 0 = their '
                              'default.' + _AT_CONFIGURE, 0, 256)),
    'max_batch': (4, _int_range(
        'Most frames (of different cameras) run through the network together.' + _AT_CONFIGURE,
        1, 64)),
    'int8_min_agreement': (0.995, _float_range(
        'Refuse an int8 model that labelled fewer of its held-out calibration pixels as fp32 '
        'did (the share measured at quantisation).' + _AT_CONFIGURE, 0.0, 1.0)),
    'image_transport': ('raw', _choice(
        "Input transport: raw (sensor_msgs/Image on 'image') or compressed "
        "(sensor_msgs/CompressedImage on '<resolved image topic>/compressed')." + _AT_CONFIGURE,
        TRANSPORTS)),
    'cameras': (Parameter.Type.STRING_ARRAY, ParameterDescriptor(
        description="Camera names; each subscribes '<cam>/image' and publishes "
                    "'<cam>/labels' etc. Empty = one camera on the plain names." + _AT_CONFIGURE)),
    'diagnostics_period': (1.0, _float_range(
        'Seconds between /diagnostics messages.' + _AT_CONFIGURE, 0.05, 60.0)),
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
}

AUTOSTART = ('autostart', True, ParameterDescriptor(
    description='Configure and activate at start, like a plain node; false = wait for '
                'lifecycle transitions.', read_only=True))


class StartError(RuntimeError):
    """The node could not start; the message is the one line shown to the user."""


class _RosLogHandler(logging.Handler):
    """Forward the runtime's Python log records (export progress, model notes) to ROS."""

    def __init__(self, ros_logger):
        super().__init__(logging.INFO)
        self._ros_logger = ros_logger

    def emit(self, record):
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            self._ros_logger.error(message)
        elif record.levelno >= logging.WARNING:
            self._ros_logger.warning(message)
        else:
            self._ros_logger.info(message)


class _Camera:
    """Topics and state of one camera."""

    def __init__(self, name, now):
        self.name = name
        self.prefix = f'{name}/' if name else ''
        self.stats = CameraStats(now)
        self.input_topic = ''
        self.camera_info = None
        self.subscriptions = []
        self.publishers = {}


def _validate(name, value, configured, confidence_available):
    """Return why ``value`` is not acceptable for parameter ``name``, or None."""
    if name in STRUCTURAL_PARAMETERS and configured:
        return (f'{name} takes effect when the node is configured; deactivate and clean up '
                'the node first (lifecycle), then set it and configure again')
    choices = {'backend': BACKENDS, 'device': DEVICES, 'precision': ('',) + PRECISIONS,
               'resize': RESIZE_POLICIES, 'label_resize': LABEL_RESIZE,
               'image_transport': TRANSPORTS}.get(name)
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


class SegmentationNode(LifecycleNode):
    """Lifecycle node segmenting one or more camera streams with a BiSeNet Segmenter."""

    def __init__(self, **kwargs):
        """Declare the parameters (values from --params-file / -p) and report unknown ones."""
        super().__init__(NODE_NAME, **kwargs)
        self._state = 'unconfigured'
        self._segmenter = None
        self._confidence_available = False
        self._cameras = {}
        self._frames = None
        self._worker = None
        self._active = False
        self._transport = 'raw'
        self._limiter = RateLimiter()
        self._throttle = ErrorThrottle(5.0)
        self._class_info_pub = None
        self._diagnostics_pub = None
        self._diagnostics_timer = None
        self._reported_unknown = set()
        self._declared = False
        self.start_error = None
        self._quiet_start = False

        self._log_handler = _RosLogHandler(self.get_logger())
        runtime_logger = logging.getLogger('bisenet_ros')
        runtime_logger.addHandler(self._log_handler)
        runtime_logger.setLevel(logging.INFO)
        runtime_logger.propagate = False

        # Registered before declaring, so values from the parameters file are
        # validated the same way as run-time changes.
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._on_parameters_set)
        self.declare_parameter(*AUTOSTART)
        for name, (default, descriptor) in {**STRUCTURAL_PARAMETERS,
                                            **LIVE_PARAMETERS}.items():
            self.declare_parameter(name, default, descriptor)
        self._declared = True
        self._report_unknown_parameters(qos=False)

    @property
    def autostart(self):
        """Return whether the node configures and activates itself at start."""
        return self.get_parameter('autostart').value

    # -- parameters ------------------------------------------------------------------

    def _on_set_parameters(self, parameters):
        configured = self._state != 'unconfigured'
        for parameter in parameters:
            reason = _validate(parameter.name, parameter.value, configured,
                               self._confidence_available)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        reason = self._emulated_precision(parameters)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _emulated_precision(self, parameters):
        """Return why the precision these changes ask for would only be emulated, or None."""
        names = ('backend', 'device', 'precision')
        changed = {p.name: p.value for p in parameters if p.name in names}
        # While declaring, the other two may not exist yet: configure decides then.
        if not changed or not self._declared:
            return None
        values = {name: changed.get(name, self.get_parameter(name).value) for name in names}
        if not values['precision']:
            return None
        try:
            return hardware.probe().refusal(*(values[name] for name in names))
        except ValueError as exc:  # a malformed BISENET_ROS_HARDWARE
            return str(exc)

    def _on_parameters_set(self, parameters):
        for parameter in parameters:
            if parameter.name == 'overlay_alpha':
                self._overlay_alpha = parameter.value
            elif parameter.name == 'publish_color':
                self._publish_color = parameter.value
            elif parameter.name == 'publish_overlay':
                self._publish_overlay = parameter.value
            elif parameter.name == 'publish_confidence':
                self._publish_confidence = parameter.value
            elif parameter.name == 'max_rate':
                self._limiter.rate = parameter.value

    def _report_unknown_parameters(self, qos):
        # rclpy keeps this node's values from --params-file and -p here (there is
        # no public accessor); a key no declared parameter took is a typo to show.
        overrides = getattr(self, '_parameter_overrides', {}) or {}
        for name in sorted(overrides):
            if name.startswith('qos_overrides.') != qos or name in self._reported_unknown:
                continue
            if self.has_parameter(name):
                continue
            self._reported_unknown.add(name)
            if qos:
                topics = sorted({key.split('.')[1] for key in self._parameters
                                 if key.startswith('qos_overrides.')})
                self.get_logger().warning(
                    f"unknown parameter '{name}' ignored: this node has no publisher or "
                    f'subscription with that topic and policy (QoS can be overridden for: '
                    f"{', '.join(topics)}; policies history, depth, reliability)")
            else:
                known = sorted(['autostart', *STRUCTURAL_PARAMETERS, *LIVE_PARAMETERS])
                self.get_logger().warning(
                    f"unknown parameter '{name}' ignored: {NODE_NAME} has no such "
                    f"parameter (known: {', '.join(known)}, qos_overrides.*)")

    def _structural(self):
        values = {}
        for name in STRUCTURAL_PARAMETERS:
            try:
                values[name] = self.get_parameter(name).value
            except ParameterUninitializedException:  # 'cameras: []' in YAML has no type
                values[name] = None
        values['cameras'] = list(values['cameras'] or [])
        return values

    # -- lifecycle -------------------------------------------------------------------

    def start(self):
        """Configure and activate (autostart); raise StartError with one line on failure."""
        self._quiet_start = True
        try:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise StartError(self.start_error or 'configure failed')
            if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                raise StartError(self.start_error or 'activate failed')
        finally:
            self._quiet_start = False

    def _fail(self, message):
        self.start_error = message
        if not self._quiet_start:
            self.get_logger().error(message)
        return TransitionCallbackReturn.FAILURE

    def on_configure(self, state):
        """Load the model and create topics and diagnostics."""
        self.start_error = None
        try:
            return self._configure()
        except Exception as exc:  # rclpy would swallow it and report only 'failed'
            self._destroy_topics()
            self._release_model()
            return self._fail(f'configure failed: {type(exc).__name__}: {exc}')

    def _configure(self):
        p = self._structural()
        if bool(p['input_width']) != bool(p['input_height']):
            return self._fail('set both input_width and input_height, or leave both 0 to use '
                              "the model's own input size")
        input_size = (p['input_width'], p['input_height']) if p['input_width'] else None
        try:
            segmenter = Segmenter(
                model_path=p['model_path'] or None, backend=p['backend'], device=p['device'],
                input_size=input_size, precision=p['precision'] or None, resize=p['resize'],
                label_resize=p['label_resize'], confidence=self._publish_confidence,
                threads=p['threads'] or None, max_batch=p['max_batch'],
                int8_min_agreement=p['int8_min_agreement'])
        except BackendUnavailableError as exc:
            return self._fail(f'cannot run backend {p["backend"]} on {p["device"]} at precision '
                              f'{p["precision"] or "(model default)"}: {exc}')
        except (CheckpointError, FileNotFoundError, ValueError) as exc:
            return self._fail(f'cannot load model {p["model_path"] or "(demo model)"}: {exc}')
        except Exception as exc:  # anything else the model file or backend throws
            return self._fail(f'cannot load model {p["model_path"] or "(demo model)"}: '
                              f'{type(exc).__name__}: {exc}')
        self._segmenter = segmenter
        self._confidence_available = segmenter.supports_confidence
        self._transport = p['image_transport']
        now = time.monotonic()
        names = p['cameras'] or ['']
        self._cameras = {name: _Camera(name, now) for name in names}
        self._frames = LatestFrames(names)
        self._frames.close()
        try:
            for camera in self._cameras.values():
                self._create_camera_topics(camera)
        except Exception as exc:  # e.g. an invalid qos_overrides value
            self._destroy_topics()
            self._release_model()
            return self._fail(f'cannot create topics: {exc}')
        self._class_info_pub = self.create_publisher(String, 'class_info', CLASS_INFO_QOS)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics',
                                                      DIAGNOSTICS_QOS)
        # Steady clock: with use_sim_time the period stays one of wall time, even
        # while a bag is paused or played faster.
        self._diagnostics_timer = self.create_timer(
            p['diagnostics_period'], self._publish_diagnostics,
            clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._report_unknown_parameters(qos=True)
        self._state = 'inactive'
        inputs = ', '.join(c.input_topic for c in self._cameras.values())
        self.get_logger().info(f'hardware: {hardware.probe().summary()}')
        self.get_logger().info(f'configured: {segmenter.info.arch} on {segmenter.describe()}, '
                               f'input {segmenter.input_size[0]}x{segmenter.input_size[1]} '
                               f'({p["resize"]}); reading {inputs}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state):
        """Publish the class table and start the worker."""
        self._class_info_pub.publish(String(data=self._class_info_json()))
        now = time.monotonic()
        for camera in self._cameras.values():
            camera.stats.reset(now)
        self._frames.reopen()
        self._worker = threading.Thread(target=self._work, name='segmentation-worker',
                                        daemon=True)
        self._worker.start()
        self._active = True
        self._state = 'active'
        self.get_logger().info('active: segmenting')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state):
        """Stop taking frames and wait for the worker to finish the frame in flight."""
        self._stop_worker()
        self._state = 'inactive'
        self.get_logger().info('inactive: not segmenting')
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state):
        """Destroy topics and release the model."""
        self._stop_worker()
        self._destroy_topics()
        self._release_model()
        self._state = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state):
        """Stop everything before the node is finalized."""
        self.on_cleanup(state)
        self._state = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state):
        """Recover to unconfigured after a failed transition."""
        self.on_cleanup(state)
        return TransitionCallbackReturn.SUCCESS

    def stop(self):
        """Stop the worker and release everything; safe to call in any state."""
        self._stop_worker()
        self._destroy_topics()
        self._release_model()
        runtime_logger = logging.getLogger('bisenet_ros')
        runtime_logger.removeHandler(self._log_handler)
        runtime_logger.propagate = True

    def _stop_worker(self):
        self._active = False
        if self._frames is not None:
            self._frames.close()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def _release_model(self):
        if self._segmenter is None:
            return
        on_cuda = self.get_parameter('device').value == 'cuda'
        self._segmenter = None
        self._confidence_available = False
        gc.collect()
        if on_cuda:
            import torch
            torch.cuda.empty_cache()

    # -- topics ----------------------------------------------------------------------

    def _create_camera_topics(self, camera):
        overrides = QoSOverridingOptions.with_default_policies()

        # rclpy writes a topic's qos_overrides into the profile it is given: each
        # topic gets its own copy so an override does not leak to the next.
        def sensor_qos():
            return copy.copy(qos_profile_sensor_data)

        def output_qos():
            return copy.copy(OUTPUT_QOS)

        if self._transport == 'compressed':
            # As image_transport does: remap the base name, then add the transport.
            camera.input_topic = self.resolve_topic_name(camera.prefix + 'image') + '/compressed'
            msg_type = CompressedImage
        else:
            camera.input_topic = self.resolve_topic_name(camera.prefix + 'image')
            msg_type = Image
        camera.subscriptions.append(self.create_subscription(
            msg_type, camera.input_topic, functools.partial(self._on_image, camera),
            sensor_qos(), qos_overriding_options=overrides))
        camera.subscriptions.append(self.create_subscription(
            CameraInfo, camera.prefix + 'camera_info',
            functools.partial(self._on_camera_info, camera), sensor_qos(),
            qos_overriding_options=overrides))
        for output in OUTPUTS:
            camera.publishers[output] = self.create_publisher(
                Image, camera.prefix + output, output_qos(), qos_overriding_options=overrides)
        camera.publishers['camera_info'] = self.create_publisher(
            CameraInfo, camera.prefix + 'labels/camera_info', output_qos(),
            qos_overriding_options=overrides)

    def _destroy_topics(self):
        for camera in self._cameras.values():
            for subscription in camera.subscriptions:
                self.destroy_subscription(subscription)
            for publisher in camera.publishers.values():
                self.destroy_publisher(publisher)
            camera.subscriptions, camera.publishers = [], {}
        self._cameras = {}
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        for name in ('_class_info_pub', '_diagnostics_pub'):
            if getattr(self, name) is not None:
                self.destroy_publisher(getattr(self, name))
                setattr(self, name, None)

    def _class_info_json(self):
        info = self._segmenter.info
        return json.dumps({
            'class_names': list(info.class_names),
            'palette': [list(colour) for colour in info.palette],
            'ignore_label': IGNORE_LABEL,
            'labels_encoding': 'mono8, pixel value = class index',
            'arch': info.arch,
            'model': str(self._segmenter.model_path.name),
        })

    # -- callbacks (executor thread: never block) ---------------------------------

    def _on_image(self, camera, msg):
        if not self._active:
            return
        now = time.monotonic()
        camera.stats.received()
        if not self._limiter.allow(camera.name, now):
            camera.stats.skipped()
            return
        dropped = self._frames.put(camera.name, Frame(msg, now))
        if dropped:
            camera.stats.dropped(dropped)

    def _on_camera_info(self, camera, msg):
        camera.camera_info = msg

    # -- worker (owns the Segmenter) -------------------------------------------------

    def _work(self):
        frames = self._frames
        while True:
            taken = frames.take_all()
            if taken is None:
                return
            try:
                self._process(taken)
            except Exception as exc:  # keep serving: one bad batch must not end the node
                if not rclpy.ok(context=self.context):
                    return
                self.get_logger().error(f'unexpected {type(exc).__name__} while segmenting: '
                                        f'{exc}')

    def _process(self, taken):
        images, frames = [], []
        for name, frame in taken:
            camera = self._cameras[name]
            try:
                if self._transport == 'compressed':
                    rgb = compressed_to_rgb(frame.msg)
                else:
                    rgb = image_to_rgb(frame.msg)
            except ImageFormatError as exc:
                self._bad_frame(camera, frame, classify_image_error(exc), exc)
                continue
            images.append(rgb)
            frames.append((camera, frame))
        if not images:
            return
        confidence = self._publish_confidence and self._confidence_available and any(
            camera.publishers['confidence'].get_subscription_count() for camera, _ in frames)
        try:
            results = self._segmenter.segment(images, confidence=confidence)
        except Exception as exc:  # e.g. out of device memory: the next frames may work
            for camera, frame in frames:
                self._bad_frame(camera, frame, 'inference', exc)
            return
        for (camera, frame), rgb, result in zip(frames, images, results):
            self._publish(camera, frame, rgb, result)

    def _publish(self, camera, frame, rgb, result):
        header = frame.msg.header
        pubs = camera.publishers
        pubs['labels'].publish(fill_image(new_image(Image), result.labels, 'mono8', header))
        published = ['labels']
        mask = None
        if self._publish_color and pubs['color'].get_subscription_count():
            mask = self._segmenter.colorize(result.labels)
            pubs['color'].publish(fill_image(new_image(Image), mask, 'rgb8', header))
            published.append('color')
        if self._publish_overlay and pubs['overlay'].get_subscription_count():
            if mask is None:
                mask = self._segmenter.colorize(result.labels)
            blend = render.overlay(rgb, mask, self._overlay_alpha)
            pubs['overlay'].publish(fill_image(new_image(Image), blend, 'rgb8', header))
            published.append('overlay')
        if result.confidence is not None and self._publish_confidence \
                and pubs['confidence'].get_subscription_count():
            confidence = render.confidence_to_mono8(result.confidence)
            pubs['confidence'].publish(fill_image(new_image(Image), confidence, 'mono8', header))
            published.append('confidence')
        info = camera.camera_info
        if info is not None:
            out = copy.copy(info)  # shallow: only the header is replaced
            out.header = header
            pubs['camera_info'].publish(out)
            published.append('camera_info')
        processing_ms = (time.monotonic() - frame.received) * 1e3
        # The whole batch's segmenter time: the frame waited for all of it.
        inference_ms = sum(result.timings[k] for k in ('pre_ms', 'network_ms', 'post_ms'))
        camera.stats.published(processing_ms, self._age_ms(header), published, inference_ms)

    def _age_ms(self, header):
        stamp = Time.from_msg(header.stamp)
        now = self.get_clock().now()
        # Unstamped frames, or sim time before the first /clock, have no age.
        if stamp.nanoseconds == 0 or now.nanoseconds == 0:
            return None
        return (now - stamp).nanoseconds / 1e6

    def _bad_frame(self, camera, frame, kind, error):
        camera.stats.error(kind)
        log_it, suppressed = self._throttle.report((camera.name, kind), time.monotonic())
        if not log_it:
            return
        stamp = frame.msg.header.stamp
        note = f' ({suppressed} more like it since the last report)' if suppressed else ''
        what = 'inference failed' if kind == 'inference' else 'bad image'
        self.get_logger().error(
            f'{what} on {camera.input_topic} stamp {stamp.sec}.{stamp.nanosec:09d} '
            f"frame_id '{frame.msg.header.frame_id}': {error}; frame skipped{note}")

    # -- diagnostics -----------------------------------------------------------------

    def _publish_diagnostics(self):
        if self._diagnostics_pub is None or self._segmenter is None:
            return
        now = time.monotonic()
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        device = self.get_parameter('device').value
        for camera in self._cameras.values():
            level, message, values = diagnostic_status(camera.stats.snapshot(now),
                                                       self._active)
            status = DiagnosticStatus(
                level=bytes([level]), name=f'{self.get_name()}: {camera.input_topic}',
                message=message, hardware_id=device)
            values += [('backend', self._segmenter.describe()), ('device', device),
                       ('hardware', hardware.probe().summary()),
                       ('camera', camera.name or '(single)')]
            status.values = [KeyValue(key=key, value=value) for key, value in values]
            array.status.append(status)
        self._diagnostics_pub.publish(array)


# rclpy words a rejected value as 'Invalid parameter value (V) for parameter.
# Reason: R: NAME'; say it as 'parameter NAME: R' instead.
_REJECTED_RE = re.compile(
    r'^Invalid parameter value \((.*)\) for parameter\. Reason: (.*): (\S+)$', re.DOTALL)


def _one_line(exc):
    text = str(exc)
    match = _REJECTED_RE.match(text) if isinstance(exc, ParameterException) else None
    if match:
        text = f'parameter {match.group(3)}: {match.group(2)}'
    return ' '.join(text.split())


def main(args=None):
    """Run the node until SIGINT/SIGTERM; return 0, or 1 when it cannot start."""
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = SegmentationNode()
        if node.autostart:
            node.start()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (StartError, ParameterException) as exc:
        print(f'{NODE_NAME}: {_one_line(exc)}', file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
