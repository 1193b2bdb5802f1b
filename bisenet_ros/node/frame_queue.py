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
Hand frames from subscription callbacks to the inference worker, never blocking.

Callbacks :meth:`LatestFrames.put` the newest message of their camera and
return at once; a frame not yet taken by the worker is replaced (and reported
as dropped), so memory holds at most one frame per camera however fast the
cameras publish. The worker :meth:`LatestFrames.take_all` waits for the first
frame and then takes every camera's waiting frame, so frames that arrived while
the network was busy go through it together.

Nothing here imports rclpy.
"""

import threading

__all__ = ['LatestFrames', 'RateLimiter']


class LatestFrames:
    """
    The latest unprocessed frame of each camera, shared by callbacks and one worker.

    ``cameras`` fixes the camera names and the order in which :meth:`take_all`
    returns their frames. A closed buffer rejects frames and wakes the worker,
    which is how the worker is stopped; :meth:`reopen` starts a new session.
    """

    def __init__(self, cameras):
        """Create an open, empty buffer for ``cameras`` (names, in output order)."""
        self._cameras = tuple(cameras)
        if len(set(self._cameras)) != len(self._cameras):
            raise ValueError(f'camera names must be unique, got {list(self._cameras)}')
        self._frames = {}
        self._closed = False
        self._ready = threading.Condition()

    @property
    def cameras(self):
        """Return the camera names, in the order frames are taken."""
        return self._cameras

    @property
    def closed(self):
        """Return True once the buffer is closed and the worker should stop."""
        with self._ready:
            return self._closed

    def put(self, camera, frame):
        """
        Store ``frame`` as ``camera``'s latest; return the number of frames it dropped.

        Returns 1 when an older frame of the same camera was still waiting (it is
        discarded), else 0. A closed buffer keeps nothing and returns 0.
        """
        if camera not in self._cameras:
            raise KeyError(f'unknown camera {camera!r}; known: {list(self._cameras)}')
        with self._ready:
            if self._closed:
                return 0
            dropped = 1 if camera in self._frames else 0
            self._frames[camera] = frame
            self._ready.notify()
            return dropped

    def take_all(self, timeout=None):
        """
        Wait for a frame, then return every waiting ``(camera, frame)`` in camera order.

        Returns an empty list when ``timeout`` seconds pass without a frame, and
        None once the buffer is closed (frames still waiting are discarded).
        """
        with self._ready:
            self._ready.wait_for(lambda: self._frames or self._closed, timeout)
            if self._closed:
                return None
            taken = [(camera, self._frames[camera]) for camera in self._cameras
                     if camera in self._frames]
            self._frames.clear()
            return taken

    def close(self):
        """Discard waiting frames, reject new ones, wake the worker; return the discarded count."""
        with self._ready:
            discarded = len(self._frames)
            self._frames.clear()
            self._closed = True
            self._ready.notify_all()
            return discarded

    def reopen(self):
        """Accept frames again after :meth:`close`."""
        with self._ready:
            self._frames.clear()
            self._closed = False


class RateLimiter:
    """
    Let through at most ``rate`` frames per second per camera (0 = no limit).

    A frame passes when its arrival time has reached the camera's next slot;
    slots advance by one period from the previous slot rather than from the
    arrival, so a 30 Hz camera limited to 10 Hz keeps 10 Hz despite jitter,
    and a camera that paused does not get a burst afterwards.
    """

    def __init__(self, rate=0.0):
        """Create a limiter letting ``rate`` frames per second through per camera."""
        self._next = {}
        self._lock = threading.Lock()
        self.rate = rate

    @property
    def rate(self):
        """Return the limit in frames per second (0 = unlimited)."""
        return self._rate

    @rate.setter
    def rate(self, rate):
        rate = float(rate)
        if rate < 0.0:
            raise ValueError(f'rate limit must be >= 0 frames per second, got {rate}')
        with self._lock:
            self._rate = rate
            self._next.clear()

    def allow(self, camera, now):
        """Return whether a frame of ``camera`` arriving at ``now`` (seconds) may pass."""
        with self._lock:
            if self._rate <= 0.0:
                return True
            period = 1.0 / self._rate
            slot = self._next.get(camera)
            if slot is not None and now < slot:
                return False
            # Start from the missed slot unless it is over a period old (a pause).
            base = slot if slot is not None and now - slot < period else now
            self._next[camera] = base + period
            return True
