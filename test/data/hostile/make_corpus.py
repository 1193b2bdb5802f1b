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
Write the hostile-input regression corpus (python make_corpus.py [FOLDER], default here).

Each file is small and reproduces a way a careless or hostile input hurt the
node, the loader or the tools; corpus.yaml says how each must be refused, and
test/test_hostile_corpus.py checks it. Payload pickles only ask for harmless
callables (eval of '0'): the point is that they are refused, not what they do.
"""

import builtins
from pathlib import Path
import pickle
import sys

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # test/, for the helpers the tests use too
from helpers import claiming  # noqa: E402, I100 (needs the path above)


class _Eval:
    def __reduce__(self):
        return (builtins.eval, ('0',))


def main(out=HERE):
    """Write every corpus file into ``out``."""
    out = Path(out)
    for name, ext, width, height in (('jpeg_claims_30000x30000', '.jpg', 30000, 30000),
                                     ('jpeg_claims_16000x16000', '.jpg', 16000, 16000),
                                     ('png_claims_16000x16000', '.png', 16000, 16000),
                                     ('bmp_claims_16000x16000', '.bmp', 16000, 16000)):
        (out / f'{name}{ext}').write_bytes(claiming(ext, width, height))
    torch.save({'model': _Eval()}, out / 'pickle_asks_for_eval.pth')
    (out / 'raw_pickle_asks_for_eval.pth').write_bytes(pickle.dumps({'a': _Eval()}, 2))
    torch.save({'state_dict': {}, 'meta': {'x': np.array([None], dtype=object)}},
               out / 'pickle_numpy_object_array.pth')
    nan = {'conv.weight': torch.full((2, 2, 1, 1), float('nan'))}
    torch.save(nan, out / 'nan_weights.pth')
    (out / 'text_named.png').write_text('not an image\n')


if __name__ == '__main__':
    main(*sys.argv[1:])
