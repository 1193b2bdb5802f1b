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
Hold what native libraries write to stderr while a step that may fail runs.

rcl refusing a remap rule, or Ray's C++ core failing to reach a cluster, log
their own lines on file descriptor 2 above the exception that says the same;
the user was promised one line. Within ``held_native_stderr()`` descriptor 2
goes to a temporary file while Python's ``sys.stderr`` still reaches the
terminal. When the step succeeds the held lines are written out (nothing is
lost); when it raises they stay hidden for the rest of the process, since a
native thread left behind (Ray's join) may still be writing.
"""

import contextlib
import os
import sys
import tempfile

__all__ = ['held_native_stderr']


def _on_descriptor_2(stream):
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # pytest's capture, a closed stream
        return False


@contextlib.contextmanager
def held_native_stderr():
    """Hold descriptor 2 meanwhile; show what was held if the block returns, hide it if not."""
    sys.stderr.flush()
    held = tempfile.TemporaryFile()
    terminal = os.dup(2)
    python_stream = sys.stderr
    if _on_descriptor_2(python_stream):  # Python's own lines keep reaching the terminal
        sys.stderr = open(os.dup(terminal), 'w', encoding=python_stream.encoding,
                          errors=python_stream.errors, buffering=1)
    os.dup2(held.fileno(), 2)
    try:
        yield
    except BaseException:
        os.close(terminal)
        raise
    sys.stderr.flush()
    os.dup2(terminal, 2)
    os.close(terminal)
    if sys.stderr is not python_stream:
        sys.stderr.close()
        sys.stderr = python_stream
    held.seek(0)
    for block in iter(lambda: held.read(1 << 16), b''):
        os.write(2, block)
    held.close()
