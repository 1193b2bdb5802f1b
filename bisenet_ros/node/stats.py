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
Per-camera counters, rates and latency percentiles, and the diagnostics they make.

The node feeds :class:`CameraStats` from its callbacks and its worker, and
once per diagnostics period turns a :meth:`CameraStats.snapshot` into a level,
a message and key/value pairs with :func:`diagnostic_status`. Levels are the
integers of diagnostic_msgs/DiagnosticStatus (OK 0, WARN 1, ERROR 2).

Nothing here imports rclpy.
"""

import collections
from dataclasses import dataclass, field
import threading

import numpy as np

__all__ = ['CameraStats', 'ERROR', 'ErrorThrottle', 'OK', 'Snapshot', 'WARN',
           'classify_image_error', 'diagnostic_status', 'percentiles']

OK, WARN, ERROR = 0, 1, 2

# Latency samples kept per diagnostics period; a bound so memory stays flat
# even if nobody reads the diagnostics.
MAX_SAMPLES = 2000


def classify_image_error(error):
    """Return the short kind ('data_size', 'bad_step', ...) of an image conversion error."""
    return str(getattr(error, 'kind', None) or 'bad_image')


def percentiles(samples, quantiles=(50, 95)):
    """Return the ``quantiles`` of ``samples`` as floats, or None when there are none."""
    if len(samples) == 0:
        return None
    return tuple(float(v) for v in np.percentile(np.asarray(samples, dtype=np.float64),
                                                 quantiles))


@dataclass
class Snapshot:
    """
    What one camera did: totals since activation and figures for the last period.

    Rates are frames per second over ``period_s``; ``processing_ms`` (receive
    to publish, monotonic clock), ``inference_ms`` (the segmenter's share of
    it: resize, network, labels back at source size) and ``age_ms`` (header
    stamp to publish, node clock) are (p50, p95) over that period, or None
    without samples.
    """

    period_s: float
    input_rate: float
    output_rate: float
    period_received: int
    period_published: int
    period_errors: int
    received: int
    published: int
    dropped: int
    skipped: int
    lost: int = 0
    period_lost: int = 0
    counts_lost: bool = True
    errors: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    processing_ms: tuple = None
    inference_ms: tuple = None
    age_ms: tuple = None


class CameraStats:
    """
    Thread-safe counters of one camera, fed by callbacks and the worker.

    ``now`` arguments are seconds on a monotonic clock; the first period starts
    at construction or :meth:`reset`.
    """

    def __init__(self, now):
        """Start counting at ``now``."""
        self._lock = threading.Lock()
        self.reset(now)

    def reset(self, now):
        """Zero everything and start a new period at ``now``."""
        with self._lock:
            self._period_start = now
            self._received = self._published = self._dropped = self._skipped = 0
            self._lost = self._period_lost = 0
            self._period_received = self._period_published = self._period_errors = 0
            self._errors = collections.Counter()
            self._outputs = collections.Counter()
            self._processing = collections.deque(maxlen=MAX_SAMPLES)
            self._inference = collections.deque(maxlen=MAX_SAMPLES)
            self._age = collections.deque(maxlen=MAX_SAMPLES)

    def received(self):
        """Count a frame that arrived."""
        with self._lock:
            self._received += 1
            self._period_received += 1

    def lost(self, count):
        """Count frames the middleware reports lost on the wire before they arrived."""
        with self._lock:
            self._lost += count
            self._period_lost += count

    def dropped(self, count=1):
        """Count frames replaced by a newer one before the worker took them."""
        with self._lock:
            self._dropped += count

    def skipped(self):
        """Count a frame left out by the rate limit."""
        with self._lock:
            self._skipped += 1

    def error(self, kind):
        """Count a frame that could not be served, by kind of problem."""
        with self._lock:
            self._errors[kind] += 1
            self._period_errors += 1

    def published(self, processing_ms, age_ms=None, outputs=(), inference_ms=None):
        """Count a served frame, its latencies and the outputs it was published on."""
        with self._lock:
            self._published += 1
            self._period_published += 1
            self._processing.append(processing_ms)
            if inference_ms is not None:
                self._inference.append(inference_ms)
            if age_ms is not None:
                self._age.append(age_ms)
            self._outputs.update(outputs)

    def snapshot(self, now):
        """Return a :class:`Snapshot` and start the next period at ``now``."""
        with self._lock:
            period = max(now - self._period_start, 1e-9)
            snap = Snapshot(
                period_s=period,
                input_rate=self._period_received / period,
                output_rate=self._period_published / period,
                period_received=self._period_received,
                period_published=self._period_published,
                period_errors=self._period_errors,
                received=self._received,
                published=self._published,
                dropped=self._dropped,
                skipped=self._skipped,
                lost=self._lost,
                period_lost=self._period_lost,
                errors=dict(self._errors),
                outputs=dict(self._outputs),
                processing_ms=percentiles(self._processing),
                inference_ms=percentiles(self._inference),
                age_ms=percentiles(self._age))
            self._period_start = now
            self._period_received = self._period_published = self._period_errors = 0
            self._period_lost = 0
            self._processing.clear()
            self._inference.clear()
            self._age.clear()
            return snap


def _pair(values):
    return 'n/a' if values is None else f'{values[0]:.1f} / {values[1]:.1f}'


def diagnostic_status(snap, active=True):
    """
    Return ``(level, message, [(key, value), ...])`` describing one camera.

    ERROR when every frame of the period failed, WARN when frames were lost
    on the wire, no frame arrived or some failed, OK otherwise (and while the
    node is not active).
    """
    values = [
        ('input rate (Hz)', f'{snap.input_rate:.2f}'),
        ('output rate (Hz)', f'{snap.output_rate:.2f}'),
        ('frames received', str(snap.received)),
        ('frames published', str(snap.published)),
        ('frames lost on the wire', str(snap.lost) if snap.counts_lost else 'not reported'),
        ('lost rate (Hz)', f'{snap.period_lost / snap.period_s:.2f}'),
        ('frames dropped (newer frame arrived first)', str(snap.dropped)),
        ('frames skipped (rate limit)', str(snap.skipped)),
        ('processing time p50 / p95 (ms)', _pair(snap.processing_ms)),
        ('inference time p50 / p95 (ms)', _pair(snap.inference_ms)),
        ('age p50 / p95 (ms)', _pair(snap.age_ms)),
        ('errors', str(sum(snap.errors.values()))),
    ]
    values += [(f'errors: {kind}', str(count)) for kind, count in sorted(snap.errors.items())]
    values += [(f'published: {name}', str(count))
               for name, count in sorted(snap.outputs.items())]
    if not active:
        return OK, 'inactive: not processing', values
    if snap.period_errors and not snap.period_published:
        worst = max(snap.errors.items(), key=lambda item: item[1])[0]
        return ERROR, f'no frame served: {snap.period_errors} failed ({worst})', values
    if snap.period_lost:
        sent = snap.period_received + snap.period_lost
        return WARN, (f'{snap.period_lost} of {sent} frames lost on the wire (DDS transport: '
                      'see bisenet dds-check)'), values
    if not snap.period_received:
        return WARN, 'no input', values
    if snap.period_errors:
        return WARN, f'{snap.period_errors} bad frames', values
    return OK, f'{snap.input_rate:.1f} Hz in, {snap.output_rate:.1f} Hz out', values


class ErrorThrottle:
    """
    Decide which errors to log: each key at most once per ``interval`` seconds.

    Keys are anything hashable, e.g. (camera, kind), so one noisy camera or
    problem does not hide another. Suppressed occurrences are counted and
    handed back with the next report.
    """

    def __init__(self, interval=5.0):
        """Report each key at most once per ``interval`` seconds."""
        self.interval = float(interval)
        self._last = {}
        self._suppressed = collections.Counter()
        self._lock = threading.Lock()

    def report(self, key, now):
        """Return ``(log_it, suppressed_since_last_report)`` for an error at ``now``."""
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] += 1
                return False, 0
            self._last[key] = now
            return True, self._suppressed.pop(key, 0)
