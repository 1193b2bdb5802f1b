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
Poly learning-rate schedule with warmup (the BiSeNet recipe).

Training from scratch with a large learning rate diverges in the first
iterations while BatchNorm statistics settle; a short warmup avoids that.
"""


def poly_warmup_factor(it, max_iter, warmup_iter=1000, warmup_ratio=0.1, power=0.9,
                       warmup='exp'):
    """
    Return the multiplier of the base LR at iteration ``it`` (0-based).

    During warmup the factor rises from ``warmup_ratio`` to 1, exponentially
    (CoinCheung's default) or linearly; afterwards it decays as
    ``(1 - progress) ** power`` to 0 at ``max_iter``.
    """
    if warmup_iter > 0 and it < warmup_iter:
        alpha = it / warmup_iter
        if warmup == 'exp':
            return warmup_ratio ** (1.0 - alpha)
        if warmup == 'linear':
            return warmup_ratio + (1.0 - warmup_ratio) * alpha
        raise ValueError(f"unknown warmup {warmup!r}; expected 'exp' or 'linear'")
    span = max(1, max_iter - warmup_iter)
    progress = min(1.0, (it - warmup_iter) / span)
    return (1.0 - progress) ** power
