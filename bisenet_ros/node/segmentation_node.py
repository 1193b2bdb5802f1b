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
The lifecycle node: parameters, topics, the worker and diagnostics wired together.

What a frame goes through lives in ``worker``; parameter tables and checks in
``parameters``; the /diagnostics message in ``diagnostics``. Everything that
does not need ROS lives outside the node package (image_msgs, runtime, render).
"""

import gc
import logging
import os
import time

from bisenet_ros.checkpoint import CheckpointError
from bisenet_ros.node.diagnostics import diagnostics_array, DIAGNOSTICS_QOS
from bisenet_ros.node.frame_queue import LatestFrames, RateLimiter
from bisenet_ros.node.interface import CLASS_INFO, NODE_NAME
from bisenet_ros.node.label_info import label_info_message, label_info_type
from bisenet_ros.node.parameter_sources import given_values
from bisenet_ros.node.parameters import (AUTOSTART, check_parameter, emulated_precision,
                                         given_value_problem, LIVE_PARAMETERS,
                                         STRUCTURAL_PARAMETERS, unknown_parameter_warning)
from bisenet_ros.node.stats import ErrorThrottle
from bisenet_ros.node.topics import Camera, class_info_json, CLASS_INFO_QOS
from bisenet_ros.node.transport import default_transport_note, lost_warning
from bisenet_ros.node.worker import Frame, LiveSettings, Worker
from bisenet_ros.runtime import BackendUnavailableError, build_segmenter, hardware, RuntimeConfig
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.utilities import get_rmw_implementation_identifier
from std_msgs.msg import String

__all__ = ['SegmentationNode', 'StartError']


def _device(segmenter):
    """Return the device ``segmenter`` runs on: what auto chose, else the one asked for."""
    choice = segmenter.auto_choice
    return choice.device if choice is not None else segmenter.config.device


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


class SegmentationNode(LifecycleNode):
    """Lifecycle node segmenting one or more camera streams with a BiSeNet Segmenter."""

    def __init__(self, ros_argv=None, **kwargs):
        """
        Declare the parameters (values from --params-file / -p) and report unknown ones.

        ``ros_argv``: the process's command line, whose every given value is
        checked (StartError names the first bad one and its source); None
        where the process's arguments are not this node's (composed).
        """
        super().__init__(NODE_NAME, **kwargs)
        if ros_argv is not None:
            self._check_given(ros_argv)
        self._state = 'unconfigured'
        self._segmenter = None
        self._confidence_available = False
        self._cameras = {}
        self._frames = None
        self._worker = None
        self._active = False
        self._live = LiveSettings()
        self._limiter = RateLimiter()
        self._throttle = ErrorThrottle(5.0)
        self._class_info_pub = None
        self._label_info_class = None  # vision_msgs/LabelInfo where importable
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
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_live_parameters)
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

    def _check_given(self, argv):
        for given in given_values(argv, self.get_name(), self.get_fully_qualified_name()):
            problem = given_value_problem(given.name, given.value)
            if problem:
                self.destroy_node()
                raise StartError(f'parameter {given.name} from {given.source}: {problem}')

    def _check_parameters(self, parameters):
        for parameter in parameters:
            reason = check_parameter(parameter.name, parameter.value, self._state,
                                     self._confidence_available)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        names = ('backend', 'device', 'precision')
        changed = {p.name: p.value for p in parameters if p.name in names}
        # While declaring, the other two may not exist yet: configure decides then.
        if changed and self._declared:
            reason = emulated_precision(*(changed.get(name, self.get_parameter(name).value)
                                          for name in names))
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _apply_live_parameters(self, parameters):
        for parameter in parameters:
            if parameter.name == 'max_rate':
                self._limiter.rate = parameter.value
            elif hasattr(self._live, parameter.name):
                setattr(self._live, parameter.name, parameter.value)

    def _report_unknown_parameters(self, qos):
        # rclpy keeps this node's values from --params-file and -p here (there is
        # no public accessor); a key no declared parameter took is a typo to show.
        overrides = getattr(self, '_parameter_overrides', {}) or {}
        topics = sorted({key.split('.')[1] for key in self._parameters
                         if key.startswith('qos_overrides.')})
        for name in sorted(overrides):
            if (name.startswith('qos_overrides.') != qos or name in self._reported_unknown
                    or self.has_parameter(name)):
                continue
            self._reported_unknown.add(name)
            self.get_logger().warning(unknown_parameter_warning(name, topics))

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
        try:
            config = RuntimeConfig.from_parameters(
                {**p, 'publish_confidence': self._live.publish_confidence})
        except ValueError as exc:
            return self._fail(str(exc))
        try:
            segmenter = build_segmenter(config=config)
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
        now = time.monotonic()
        names = p['cameras'] or ['']
        self._cameras = {name: Camera(name, now) for name in names}
        self._frames = LatestFrames(names)
        self._frames.close()
        self._label_info_class, missing = label_info_type()
        if missing:
            self.get_logger().warning(missing)
        try:
            for camera in self._cameras.values():
                camera.create_topics(self, p['image_transport'], self._on_image,
                                     self._on_camera_info, self._label_info_class,
                                     self._on_message_lost)
        except Exception as exc:  # e.g. an invalid qos_overrides value
            self._destroy_topics()
            self._release_model()
            return self._fail(f'cannot create topics: {exc}')
        self._class_info_pub = self.create_publisher(String, CLASS_INFO, CLASS_INFO_QOS)
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
        note = default_transport_note(get_rmw_implementation_identifier(), os.environ,
                                      os.getcwd())
        if note:
            self.get_logger().info(note)
        self.get_logger().info(f'configured: {segmenter.info.arch} on {segmenter.describe()}, '
                               f'input {segmenter.input_size[0]}x{segmenter.input_size[1]} '
                               f'({p["resize"]}); reading {inputs}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state):
        """Publish the class tables and start the worker."""
        self._class_info_pub.publish(String(data=class_info_json(self._segmenter)))
        if self._label_info_class is not None:
            label_info = label_info_message(self._label_info_class,
                                            self._segmenter.info.class_names,
                                            self.get_clock().now().to_msg())
            for camera in self._cameras.values():
                camera.publishers['label_info'].publish(label_info)
        now = time.monotonic()
        for camera in self._cameras.values():
            camera.stats.reset(now)
        self._frames.reopen()
        self._worker = Worker(self, self._segmenter, self._frames, self._live, self._throttle)
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
        on_cuda = _device(self._segmenter) == 'cuda'
        self._segmenter = None
        self._confidence_available = False
        gc.collect()
        if on_cuda:
            import torch
            torch.cuda.empty_cache()

    def _destroy_topics(self):
        for camera in self._cameras.values():
            camera.destroy_topics(self)
        self._cameras = {}
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        for name in ('_class_info_pub', '_diagnostics_pub'):
            if getattr(self, name) is not None:
                self.destroy_publisher(getattr(self, name))
                setattr(self, name, None)

    # -- callbacks (executor thread: never block) ---------------------------------

    def _on_image(self, camera, msg):
        if not self._active:
            return
        now = time.monotonic()
        camera.stats.received()
        if not self._limiter.allow(camera.name, now):
            camera.stats.skipped()
            return
        dropped = self._frames.put(camera.name, Frame(camera, msg, now))
        if dropped:
            camera.stats.dropped(dropped)

    def _on_message_lost(self, camera, info):
        camera.stats.lost(info.total_count_change)
        if not camera.lost_warned:
            camera.lost_warned = True
            self.get_logger().warning(lost_warning(
                camera.input_topic, info.total_count_change,
                get_rmw_implementation_identifier()))

    def _on_camera_info(self, camera, msg):
        camera.camera_info = msg

    # -- diagnostics -----------------------------------------------------------------

    def _publish_diagnostics(self):
        if self._diagnostics_pub is None or self._segmenter is None:
            return
        self._diagnostics_pub.publish(diagnostics_array(
            self.get_clock().now().to_msg(), self.get_name(), self._cameras.values(),
            self._active, self._segmenter.describe(), _device(self._segmenter),
            time.monotonic()))
