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
Regenerate test/data/parity_*.npz from the team's reference fixtures.

Run from the repository root with ../shared present:
    python test/data/make_parity_data.py
Keeps argmax maps (uint8) and logits strided by 4 (and the 1/8 subsample the
fixtures already hold for 256x512), so a clone runs parity tests without ../shared.
"""

from pathlib import Path
import shutil

import numpy as np

SETS = ('coincheung_v1', 'coincheung_v2', 'mmseg_v1', 'mmseg_v2')
HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parents[2] / 'shared' / 'reference'


def main():
    """Write one compact npz and the key list per reference set."""
    for name in SETS:
        fixtures = np.load(REFERENCE / name / 'fixtures.npz')
        out = {}
        for case in ('128x256', 'b2_128x256'):
            logits = fixtures[f'logits_{case}']
            out[f'logits_s4_{case}'] = logits[:, :, ::4, ::4]
            out[f'max_abs_{case}'] = np.float32(np.abs(logits).max())
        out['logits_sub8_256x512'] = fixtures['logits_sub8_256x512']
        for case in ('128x256', '256x512', 'b2_128x256'):
            out[f'argmax_{case}'] = fixtures[f'argmax_{case}'].astype(np.uint8)
        np.savez_compressed(HERE / f'parity_{name}.npz', **out)
        keys = 'keys_train_mode.txt' if name.startswith('coincheung') else 'keys.txt'
        shutil.copy(REFERENCE / name / keys, HERE / f'keys_{name}.txt')


if __name__ == '__main__':
    main()
