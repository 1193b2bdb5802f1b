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

"""The node's ROS-free parts: frame hand-over, rate limit, statistics, diagnostics."""

import subprocess
import sys
import threading
import time

from bisenet_ros.image_msgs import ImageFormatError
from bisenet_ros.node.frame_queue import LatestFrames, RateLimiter
from bisenet_ros.node.stats import (CameraStats, classify_image_error, diagnostic_status,
                                    ERROR, ErrorThrottle, OK, percentiles, WARN)
import pytest


# -- LatestFrames ------------------------------------------------------------------------

def test_put_keeps_only_the_latest_frame_per_camera_and_counts_the_dropped():
    frames = LatestFrames(['front', 'left'])
    assert frames.put('front', 1) == 0
    assert frames.put('front', 2) == 1
    assert frames.put('left', 'a') == 0
    assert frames.take_all(timeout=0) == [('front', 2), ('left', 'a')]
    assert frames.take_all(timeout=0) == []


def test_take_all_returns_frames_in_camera_order_not_arrival_order():
    frames = LatestFrames(['a', 'b', 'c'])
    frames.put('c', 3)
    frames.put('a', 1)
    assert frames.take_all(timeout=0) == [('a', 1), ('c', 3)]


def test_take_all_waits_for_a_frame_put_by_another_thread():
    frames = LatestFrames(['cam'])
    timer = threading.Timer(0.05, frames.put, ('cam', 'late'))
    timer.start()
    assert frames.take_all(timeout=10) == [('cam', 'late')]
    timer.join()


def test_take_all_returns_an_empty_list_after_the_timeout():
    start = time.monotonic()
    assert LatestFrames(['cam']).take_all(timeout=0.05) == []
    assert time.monotonic() - start >= 0.04


def test_close_wakes_a_waiting_worker_with_none():
    frames = LatestFrames(['cam'])
    result = []
    worker = threading.Thread(target=lambda: result.append(frames.take_all()))
    worker.start()
    time.sleep(0.05)
    frames.close()
    worker.join(5)
    assert not worker.is_alive() and result == [None]


def test_closed_buffer_discards_waiting_frames_and_rejects_new_ones():
    frames = LatestFrames(['cam'])
    frames.put('cam', 1)
    assert frames.close() == 1
    assert frames.closed
    assert frames.put('cam', 2) == 0
    assert frames.take_all(timeout=0) is None


def test_reopen_accepts_frames_again():
    frames = LatestFrames(['cam'])
    frames.close()
    frames.reopen()
    assert not frames.closed
    frames.put('cam', 1)
    assert frames.take_all(timeout=0) == [('cam', 1)]


def test_unknown_camera_and_duplicate_names_are_rejected():
    with pytest.raises(KeyError, match='unknown camera'):
        LatestFrames(['front']).put('rear', 1)
    with pytest.raises(ValueError, match='unique'):
        LatestFrames(['front', 'front'])


def test_memory_stays_bounded_however_fast_frames_arrive():
    frames = LatestFrames(['front', 'left'])
    dropped = sum(frames.put(camera, i) for i in range(10000) for camera in ('front', 'left'))
    assert dropped == 2 * 9999
    assert frames.take_all(timeout=0) == [('front', 9999), ('left', 9999)]


# -- RateLimiter -------------------------------------------------------------------------

def test_rate_zero_lets_every_frame_through():
    limiter = RateLimiter(0.0)
    assert all(limiter.allow('cam', t * 0.001) for t in range(100))


def test_30hz_camera_limited_to_10hz_keeps_10hz_despite_jitter():
    limiter = RateLimiter(10.0)
    jitter = [0.002, -0.003, 0.001, -0.001, 0.003]
    arrivals = [i / 30 + jitter[i % 5] for i in range(300)]  # 10 s at 30 Hz
    passed = sum(limiter.allow('cam', t) for t in arrivals)
    assert 95 <= passed <= 101


def test_rate_limit_is_per_camera():
    limiter = RateLimiter(1.0)
    assert limiter.allow('front', 0.0) and limiter.allow('left', 0.0)
    assert not limiter.allow('front', 0.5)
    assert limiter.allow('front', 1.0)


def test_a_camera_that_paused_gets_no_burst_afterwards():
    limiter = RateLimiter(10.0)
    assert limiter.allow('cam', 0.0)
    assert limiter.allow('cam', 5.0)
    assert not limiter.allow('cam', 5.01)


def test_negative_rate_is_rejected():
    with pytest.raises(ValueError, match='>= 0'):
        RateLimiter(-1.0)


# -- CameraStats and diagnostics ---------------------------------------------------------

def test_snapshot_reports_rates_over_the_period_and_totals_since_reset():
    stats = CameraStats(now=100.0)
    for _ in range(20):
        stats.received()
    stats.dropped(5)
    for ms in range(1, 11):
        stats.published(processing_ms=float(ms), age_ms=2.0 * ms, outputs=['labels'])
    snap = stats.snapshot(now=102.0)
    assert snap.input_rate == pytest.approx(10.0)
    assert snap.output_rate == pytest.approx(5.0)
    assert (snap.received, snap.published, snap.dropped) == (20, 10, 5)
    assert snap.processing_ms == pytest.approx((5.5, 9.55))
    assert snap.age_ms == pytest.approx((11.0, 19.1))
    assert snap.outputs == {'labels': 10}
    later = stats.snapshot(now=103.0)
    assert (later.input_rate, later.processing_ms, later.received) == (0.0, None, 20)


def test_reset_zeroes_the_totals():
    stats = CameraStats(now=0.0)
    stats.received()
    stats.error('data_size')
    stats.reset(now=1.0)
    snap = stats.snapshot(now=2.0)
    assert (snap.received, snap.errors) == (0, {})


def test_latency_samples_are_bounded():
    stats = CameraStats(now=0.0)
    for _ in range(10000):
        stats.published(1.0)
    assert len(stats._processing) <= 2000


def test_percentiles_of_no_samples_is_none():
    assert percentiles([]) is None
    assert percentiles([3.0]) == (3.0, 3.0)


def _snapshot(received=10, published=10, errors=None):
    stats = CameraStats(now=0.0)
    for _ in range(received):
        stats.received()
    for _ in range(published):
        stats.published(5.0, inference_ms=4.0)
    for kind, count in (errors or {}).items():
        for _ in range(count):
            stats.error(kind)
    return stats.snapshot(now=1.0)


def test_healthy_camera_is_ok_with_its_rates():
    level, message, values = diagnostic_status(_snapshot())
    assert level == OK and '10.0 Hz in' in message
    assert dict(values)['processing time p50 / p95 (ms)'] == '5.0 / 5.0'
    assert dict(values)['inference time p50 / p95 (ms)'] == '4.0 / 4.0'


def test_camera_without_input_warns():
    level, message, _ = diagnostic_status(_snapshot(received=0, published=0))
    assert (level, message) == (WARN, 'no input')


def test_some_bad_frames_warn_and_errors_are_listed_by_kind():
    level, _, values = diagnostic_status(_snapshot(published=8, errors={'data_size': 2}))
    assert level == WARN
    assert dict(values)['errors: data_size'] == '2'
    assert dict(values)['errors'] == '2'


def test_only_bad_frames_is_an_error_naming_the_kind():
    level, message, _ = diagnostic_status(_snapshot(published=0, errors={'bad_step': 3}))
    assert level == ERROR and 'bad_step' in message


def test_inactive_node_is_ok_and_says_so():
    level, message, _ = diagnostic_status(_snapshot(received=0, published=0), active=False)
    assert level == OK and 'inactive' in message


# -- error kinds and throttling ----------------------------------------------------------

def test_image_errors_are_counted_by_their_kind():
    assert classify_image_error(ImageFormatError('step too small', 'bad_step')) == 'bad_step'
    assert classify_image_error(ValueError('anything else')) == 'bad_image'


def test_throttle_reports_each_key_once_per_interval_with_the_suppressed_count():
    throttle = ErrorThrottle(interval=5.0)
    assert throttle.report(('front', 'data_size'), 0.0) == (True, 0)
    assert throttle.report(('front', 'data_size'), 1.0) == (False, 0)
    assert throttle.report(('front', 'data_size'), 2.0) == (False, 0)
    assert throttle.report(('left', 'data_size'), 2.0) == (True, 0)
    assert throttle.report(('front', 'bad_step'), 2.0) == (True, 0)
    assert throttle.report(('front', 'data_size'), 5.0) == (True, 2)


def test_modules_do_not_import_rclpy():
    code = ('import sys, bisenet_ros.node, bisenet_ros.node.frame_queue, bisenet_ros.node.stats; '
            "sys.exit('rclpy' in sys.modules)")
    assert subprocess.run([sys.executable, '-c', code]).returncode == 0
