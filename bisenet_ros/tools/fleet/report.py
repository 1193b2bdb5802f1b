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
The fleet run's report: one entry per input bag, totals, and the model and backend used.

Written as JSON; each bag's entry has its input and output paths, status
(done, skipped: finished by an earlier run with the same identity, or failed),
frames_in (image messages read), frames_out (frames segmented), topics,
seconds (worker time), failures (undecodable frames: topic, stamp as bag time
in ns, reason), error (why the bag failed) and redone_chunks (chunks redone
after their worker died). The report is written under a temporary name
beside it and renamed, so a report that cannot be written whole (a full
disk) leaves the previous one as it was.
"""

import json
import os
import uuid


class BagRun:
    """One input bag on its way through the run, and its entry in the report."""

    def __init__(self, found, output):
        """Start with the discovered bag ``found`` bound for the folder ``output``."""
        self.input = found.path
        self.output = output
        self.status = 'failed' if found.error else 'pending'
        self.error = f'{found.path}: {found.error}' if found.error else None
        self.topics = []
        self.frames = 0
        self.frames_in = self.frames_out = self.redone_chunks = 0
        self.seconds = 0.0
        self.failures = []
        self.chunks_left = 0

    def fail(self, error):
        """Mark the bag failed with ``error`` (a message naming it)."""
        self.status, self.error = 'failed', str(error)

    def skip(self, record):
        """Mark the bag finished by an earlier run whose ``record`` its output holds."""
        self.status = 'skipped'
        for name in ('topics', 'frames_in', 'frames_out', 'failures'):
            setattr(self, name, record.get(name, getattr(self, name)))

    def add(self, result):
        """Count a chunk's result in; return whether the bag has no chunk left."""
        self.frames_in += result['frames_in']
        self.frames_out += result['frames_out']
        self.failures.extend(result['failures'])
        self.seconds += result['seconds']
        self.redone_chunks += bool(result['redone'])
        if result['error'] and self.status != 'failed':
            self.fail(result['error'])
        self.chunks_left -= 1
        return self.chunks_left == 0

    def record(self, identity):
        """Return what the finished output keeps of this run (see output_bags)."""
        self.failures.sort(key=lambda f: (f['stamp'], f['topic']))
        return {'identity': identity, 'topics': self.topics, 'frames_in': self.frames_in,
                'frames_out': self.frames_out, 'failures': self.failures}

    @property
    def ok(self):
        """Whether the bag is done (now or before) and every frame of it was segmented."""
        return self.status in ('done', 'skipped') and not self.failures

    def entry(self):
        """Return the bag's entry in the report."""
        return {'input': str(self.input), 'output': str(self.output), 'status': self.status,
                'frames_in': self.frames_in, 'frames_out': self.frames_out,
                'topics': self.topics, 'seconds': round(self.seconds, 3),
                'failures': self.failures, 'error': self.error,
                'redone_chunks': self.redone_chunks}

    def line(self):
        """Return the one-line summary printed when the bag is finished."""
        if self.status == 'failed':
            return f'failed  {self.input}: {self.error}'
        undecodable = f', {len(self.failures)} undecodable' if self.failures else ''
        return (f'{self.status:<8}{self.input} -> {self.output}: {self.frames_out} of '
                f'{self.frames_in} frames{undecodable} ({self.seconds:.1f} s)')


def write_report(path, run, bag_runs, seconds):
    """
    Write the JSON report of ``bag_runs`` to ``path``; ``run`` describes model and backend.

    Raises OSError when it cannot be written; ``path`` is then untouched.
    """
    entries = [bag.entry() for bag in bag_runs]
    frames_out = sum(e['frames_out'] for e in entries if e['status'] == 'done')
    totals = {
        'bags': len(entries),
        **{status: sum(e['status'] == status for e in entries)
           for status in ('done', 'skipped', 'failed')},
        'frames_in': sum(e['frames_in'] for e in entries),
        'frames_out': sum(e['frames_out'] for e in entries),
        'undecodable': sum(len(e['failures']) for e in entries),
        'seconds': round(seconds, 3),
        'frames_per_second': round(frames_out / seconds, 2) if seconds else None,
    }
    text = json.dumps({**run, 'bags': entries, 'totals': totals}, indent=2) + '\n'
    path.parent.mkdir(parents=True, exist_ok=True)
    # Beside the report (one file system, so the rename is atomic), unique to this run.
    temporary = path.with_name(f'.{path.name}.{uuid.uuid4().hex}.tmp')
    stream = open(temporary, 'x')
    try:
        with stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink()
        raise
