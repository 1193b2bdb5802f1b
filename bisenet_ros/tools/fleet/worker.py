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
The worker of a fleet run: one model loaded once, chunks of bags segmented into bag files.

The same ChunkWorker runs in-process (LocalWorkers) and as a Ray actor, so
both paths write the same bytes. A worker reads its input bag and writes its
output files itself; only task descriptions and small results travel.
"""

import os
from pathlib import Path
import shutil
import socket
import time

from bisenet_ros.image_msgs import ImageFormatError
from bisenet_ros.media import bags
from bisenet_ros.runtime import build_segmenter
from bisenet_ros.tools.segment_bag import BagSegmentation

# How often a worker tells the driver how far it got (seconds).
REPORT_INTERVAL = 0.5


def chunk_result(task, error=None):
    """
    Return the result of ``task`` before any work: what ChunkWorker.segment fills in.

    A dict: key, frames_in (image messages read), frames_out (frames
    segmented), failures ([{topic, stamp, reason}] of undecodable frames, stamp
    being the bag time in ns), error (why the chunk could not be done, else
    None), redone (an earlier attempt's files were found and replaced) and
    seconds.
    """
    return {'key': task.key, 'frames_in': 0, 'frames_out': 0, 'failures': [], 'error': error,
            'redone': False, 'seconds': 0.0}


class ChunkWorker:
    """Segment chunk tasks with one Segmenter built from RunSettings."""

    def __init__(self, settings, seg=None):
        """Load the model of ``settings`` unless ``seg`` is given (raises as build_segmenter)."""
        self.settings = settings
        self.seg = seg or build_segmenter(config=settings.runtime)

    def pid(self):
        """Return this worker's process id."""
        return os.getpid()

    def missing_paths(self, paths):
        """Return (host, the ``paths`` this worker cannot see): a check for shared storage."""
        return socket.gethostname(), [str(p) for p in paths if not Path(p).exists()]

    def segment(self, task, report=None):
        """
        Segment the chunk ``task`` into the bag folder ``task.out_dir``; return its result.

        The result is :func:`chunk_result`'s dict, filled in. ``report(frames)``
        is called now and then with the frames read so far.
        """
        began = time.monotonic()
        out_dir = Path(task.out_dir)
        result = chunk_result(task)
        result['redone'] = out_dir.exists()
        if result['redone']:  # left by an attempt whose worker died
            shutil.rmtree(out_dir)
        try:
            self._segment(task, out_dir, result, report or (lambda frames: None))
        except (bags.BagError, OSError, ValueError) as exc:
            result['error'] = str(exc)
        result['seconds'] = time.monotonic() - began
        return result

    def _segment(self, task, out_dir, result, report):
        settings = self.settings
        plan = BagSegmentation(task.bag_path, settings.outputs, settings.topics)
        reported = time.monotonic()
        with bags.BagWriter(out_dir) as writer:
            plan.add_topics(writer, settings.copy_inputs)
            batch = []
            for message in plan.messages(task.start, task.stop):
                result['frames_in'] += 1
                if settings.copy_inputs:
                    writer.write(message.topic, message.timestamp, message.data)
                try:
                    header, rgb = plan.decode(message, settings.max_image_pixels)
                except ImageFormatError as exc:
                    result['failures'].append({'topic': message.topic,
                                               'stamp': message.timestamp, 'reason': str(exc)})
                    continue
                batch.append((message, header, rgb))
                if len(batch) == self.seg.max_batch:
                    result['frames_out'] += self._write_batch(writer, plan, batch)
                    batch = []
                if time.monotonic() - reported > REPORT_INTERVAL:
                    report(result['frames_in'])
                    reported = time.monotonic()
            result['frames_out'] += self._write_batch(writer, plan, batch)
        report(result['frames_in'])

    def _write_batch(self, writer, plan, batch):
        """Segment ``batch`` [(message, header, rgb)] in one pass and write its outputs."""
        if not batch:
            return 0
        results = self.seg.segment([rgb for _, _, rgb in batch])
        for (message, header, rgb), segmented in zip(batch, results):
            for out_topic, data in plan.output_messages(self.seg, message.topic, header, rgb,
                                                        segmented, self.settings.alpha):
                writer.write(out_topic, message.timestamp, data)
        return len(batch)


class LocalWorkers:
    """One ChunkWorker in this process: the run without Ray."""

    count = 1

    def __init__(self, settings, seg=None):
        """Load the model once for the whole run (or use ``seg``, already loaded)."""
        self.worker = ChunkWorker(settings, seg)

    def run(self, tasks, on_progress):
        """Yield the result of each task in turn; ``on_progress(frames)`` gets the total read."""
        finished = 0
        for task in tasks:
            result = self.worker.segment(task, lambda frames: on_progress(finished + frames))
            finished += result['frames_in']
            yield result

    def close(self):
        """Nothing to release: the model goes with the process."""
