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
The inference worker: one thread that owns the Segmenter while the node is active.

It takes the newest frame of each camera, decodes them, segments them in one
batch and publishes each camera's outputs with the frame's own header. A frame
that cannot be decoded or segmented is counted, logged (throttled) and skipped;
the worker keeps serving the next ones.
"""

import collections
import copy
from dataclasses import dataclass
import threading
import time

from bisenet_ros import render
from bisenet_ros.image_msgs import (DEFAULT_MAX_PIXELS, fill_image, ImageFormatError, new_image,
                                    shown)
from bisenet_ros.node.stats import classify_image_error
import rclpy
from sensor_msgs.msg import Image

Frame = collections.namedtuple('Frame', ('camera', 'msg', 'received'))
Frame.__doc__ = 'An image message, the camera it came from and its arrival (monotonic s).'


@dataclass
class LiveSettings:
    """The live parameters the worker reads for every frame."""

    overlay_alpha: float = 0.5
    publish_color: bool = True
    publish_overlay: bool = True
    publish_confidence: bool = False
    max_image_pixels: int = DEFAULT_MAX_PIXELS


class Worker:
    """Segment the frames handed over in ``frames`` (LatestFrames) until it is closed."""

    def __init__(self, node, segmenter, frames, live, throttle):
        """Keep what each frame needs; ``node`` lends its logger, clock and context."""
        self._node = node
        self._segmenter = segmenter
        self._frames = frames
        self._live = live
        self._throttle = throttle
        self._confidence_available = segmenter.supports_confidence
        self._thread = threading.Thread(target=self._run, name='segmentation-worker',
                                        daemon=True)

    def start(self):
        """Start the thread."""
        self._thread.start()

    def join(self):
        """Wait for the frame in flight (the caller closes ``frames`` first)."""
        self._thread.join()

    def _run(self):
        while True:
            taken = self._frames.take_all()
            if taken is None:
                return
            try:
                self._process([frame for _, frame in taken])
            except Exception as exc:  # keep serving: one bad batch must not end the node
                if not rclpy.ok(context=self._node.context):
                    return
                self._node.get_logger().error(
                    f'unexpected {type(exc).__name__} while segmenting: {exc}')

    def _process(self, taken):
        images, frames = [], []
        for frame in taken:
            try:
                rgb = frame.camera.decode(frame.msg, self._live.max_image_pixels)
            except ImageFormatError as exc:
                self._bad_frame(frame, classify_image_error(exc), exc)
                continue
            images.append(rgb)
            frames.append(frame)
        if not images:
            return
        confidence = self._live.publish_confidence and self._confidence_available and any(
            frame.camera.publishers['confidence'].get_subscription_count() for frame in frames)
        try:
            results = self._segmenter.segment(images, confidence=confidence)
        except Exception as exc:  # e.g. out of device memory: the next frames may work
            for frame in frames:
                self._bad_frame(frame, 'inference', exc)
            return
        for frame, rgb, result in zip(frames, images, results):
            try:
                self._publish(frame, rgb, result)
            except Exception as exc:  # this frame's outputs only: the batch's others go on
                self._bad_frame(frame, 'publish', exc)

    def _wanted(self, publishers):
        """Return the outputs someone listens to and the live parameters allow."""
        live = self._live
        allowed = {'labels': True, 'color': live.publish_color,
                   'overlay': live.publish_overlay, 'confidence': live.publish_confidence}
        # labels always go out: planners rely on one labels message per frame.
        return {name for name, on in allowed.items()
                if on and (name == 'labels' or publishers[name].get_subscription_count())}

    def _publish(self, frame, rgb, result):
        camera, header = frame.camera, frame.msg.header
        pubs = camera.publishers
        outputs = render.render_outputs(rgb, result.labels, self._segmenter.lut,
                                        self._wanted(pubs), self._live.overlay_alpha,
                                        result.confidence)
        for name, array in outputs.items():
            encoding = 'mono8' if array.ndim == 2 else 'rgb8'
            pubs[name].publish(fill_image(new_image(Image), array, encoding, header))
        published = list(outputs)
        info = camera.camera_info
        if info is not None:
            self._check_info_size(camera, info, rgb)
            out = copy.copy(info)  # shallow: only the header is replaced
            out.header = header
            pubs['camera_info'].publish(out)
            published.append('camera_info')
        processing_ms = (time.monotonic() - frame.received) * 1e3
        # The whole batch's segmenter time: the frame waited for all of it.
        inference_ms = sum(result.timings[k] for k in ('pre_ms', 'network_ms', 'post_ms'))
        camera.stats.published(processing_ms, self._age_ms(header), published, inference_ms)

    def _check_info_size(self, camera, info, rgb):
        """Warn once per camera when its CameraInfo describes images of another size."""
        if camera.info_size_warned or (info.width, info.height) == (0, 0):  # uncalibrated
            return
        # The image a CameraInfo describes is its ROI (or full size) after binning.
        width = (info.roi.width or info.width) // max(info.binning_x, 1)
        height = (info.roi.height or info.height) // max(info.binning_y, 1)
        if (width, height) != (rgb.shape[1], rgb.shape[0]):
            camera.info_size_warned = True
            self._node.get_logger().warning(
                f'camera_info of {camera.input_topic} describes {width}x{height} images, '
                f'but they are {rgb.shape[1]}x{rgb.shape[0]}: it is republished as received '
                '(a calibration for another resolution?); said once per camera')

    def _age_ms(self, header):
        # The stamp is the sender's data, not a precondition: any value the
        # message can hold (a negative second included) gives an age.
        stamp_ns = header.stamp.sec * 10**9 + header.stamp.nanosec
        now_ns = self._node.get_clock().now().nanoseconds
        # Unstamped frames, or sim time before the first /clock, have no age.
        if stamp_ns == 0 or now_ns == 0:
            return None
        return (now_ns - stamp_ns) / 1e6

    def _bad_frame(self, frame, kind, error):
        camera = frame.camera
        camera.stats.error(kind)
        log_it, suppressed = self._throttle.report((camera.name, kind), time.monotonic())
        if not log_it:
            return
        stamp = frame.msg.header.stamp
        note = f' ({suppressed} more like it since the last report)' if suppressed else ''
        what = {'inference': 'inference failed', 'publish': 'publishing failed'}.get(
            kind, 'bad image')
        self._node.get_logger().error(
            f'{what} on {camera.input_topic} stamp {stamp.sec}.{stamp.nanosec:09d} '
            f'frame_id {shown(frame.msg.header.frame_id)}: {error}; frame skipped{note}')
