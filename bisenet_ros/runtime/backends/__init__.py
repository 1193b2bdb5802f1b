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
Inference backends: each runs a normalised (N, 3, H, W) batch through the network.

A backend's ``run(batch)`` returns a dict with 'logits' (torch tensor) or
'labels' (uint8 numpy, plus 'confidence' when the graph computes it), all at
network resolution. ``describe()`` says what really runs, for logs and
diagnostics.
"""


class BackendUnavailableError(RuntimeError):
    """The requested backend, device or precision cannot run on this machine."""


class ModelCompileError(BackendUnavailableError):
    """A runtime refused to load or compile a model file ('auto' takes its next candidate)."""

    def __init__(self, path, runtime, error):
        """Say in one line which runtime refused ``path`` and its first words why."""
        reason = ' '.join(str(error).split())
        super().__init__(f'{path}: {runtime} cannot load this graph '
                         f'({type(error).__name__}: {reason[:300]})')


def check_choice(kind, value, valid):
    """Raise ValueError naming the valid values unless ``value`` is one of them."""
    if value not in valid:
        raise ValueError(f'unknown {kind} {value!r}; valid: {", ".join(valid)}')
