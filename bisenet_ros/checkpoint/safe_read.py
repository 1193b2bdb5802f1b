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
Read a checkpoint file's contents without executing code from it.

PyTorch pickles are opened with ``weights_only=True`` plus an explicit
allowlist of the harmless types real checkpoints carry (numpy scalars, arrays
and dtypes in mmsegmentation's ``meta``). The project's own files are
safetensors: tensors plus a JSON header, nothing executable.
"""

import json
from pathlib import Path
import pickle
import re
import struct

from bisenet_ros.checkpoint.errors import CheckpointError, CheckpointNotFoundError
import numpy as np
from numpy._core import multiarray
import torch

# Old pickles name these numpy.core.*, numpy 2 pickles numpy._core.*; both are data only.
NUMPY_ALLOWLIST = [
    np.ndarray,
    np.dtype,
    multiarray.scalar,
    (multiarray.scalar, 'numpy.core.multiarray.scalar'),
    multiarray._reconstruct,
    (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
    *(type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDG'),
]

_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024


def is_safetensors(path):
    """Return True if the file starts like a safetensors file (u64 length, then '{')."""
    with open(path, 'rb') as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    (length,) = struct.unpack('<Q', head[:8])
    return 0 < length <= _SAFETENSORS_MAX_HEADER and head[8:9] == b'{'


def read_safetensors(path):
    """Return (tensors, metadata) of a safetensors file; metadata is its str->str map."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    try:
        with safe_open(str(path), framework='pt') as f:
            metadata = f.metadata() or {}
        return load_file(str(path)), metadata
    except Exception as exc:  # safetensors raises its own error type for any damage
        raise CheckpointError(f'{path}: corrupt or truncated safetensors file ({exc})') from exc


# What torch's weights-only unpickler names when it refuses: a global
# ('GLOBAL posix.system') or a type ("but got <class 'numpy.dtypes.ObjectDType'>").
_REFUSED = re.compile(r"GLOBAL ([\w.]+)|but got <class '([^']+)'>")
# torch's own advice around the cause, which must not reach users as ours.
_BOILERPLATE = ('Weights only load failed', 'Check the documentation', 'Please file an issue')


def read_torch_pickle(path):
    """Return the object stored by torch.save, refusing anything but data."""
    try:
        with torch.serialization.safe_globals(NUMPY_ALLOWLIST):
            return torch.load(str(path), map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        refused = _REFUSED.search(text)
        if refused:
            raise CheckpointError(
                f'{path}: refused as unsafe: the file asks for '
                f'{refused.group(1) or refused.group(2)}, which is not plain data (loading '
                'it could run code from the file), so it is never loaded. Re-save the '
                'weights as a plain state_dict: torch.save(model.state_dict(), path).'
            ) from exc
        raise CheckpointError(f'{path}: corrupt or truncated checkpoint ({_cause(text)})') from exc
    except Exception as exc:  # the weights-only unpickler runs no code: this is damaged data
        raise CheckpointError(f'{path}: corrupt or truncated checkpoint '
                              f'({type(exc).__name__}: {_cause(str(exc))})') from exc


def _cause(text):
    """Return the cause in a torch unpickling error, without torch's surrounding advice."""
    paragraphs = [p.strip() for p in text.split('\n\n') if p.strip()]
    cause = [p for p in paragraphs if not p.startswith(_BOILERPLATE)]
    return ' '.join(' '.join(cause or paragraphs[:1]).split())


def _looks_like_torch_file(path):
    with open(path, 'rb') as f:
        head = f.read(4)
    # torch.save writes a zip archive; files from torch < 1.6 are raw pickles (protocol 2+).
    return head[:4] == b'PK\x03\x04' or head[:1] == b'\x80'


def read_checkpoint_file(path):
    """
    Return ('safetensors', tensors, metadata) or ('torch', obj, None) for a file.

    Raises CheckpointNotFoundError for a missing path and CheckpointError for a
    file that is not a checkpoint, is damaged, or would need code to load.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointNotFoundError(f'checkpoint not found: {path}')
    if not path.is_file():
        raise CheckpointNotFoundError(f'checkpoint path is not a file: {path}')
    if path.stat().st_size == 0:
        raise CheckpointError(f'{path}: empty file, not a checkpoint')
    if is_safetensors(path):
        tensors, metadata = read_safetensors(path)
        return 'safetensors', tensors, metadata
    if not _looks_like_torch_file(path):
        raise CheckpointError(
            f'{path}: not a checkpoint (neither a PyTorch .pth/.pt file nor safetensors)')
    return 'torch', read_torch_pickle(path), None


def decode_metadata(metadata, key):
    """Return the JSON object stored under ``key`` of a safetensors metadata map, or None."""
    if key not in metadata:
        return None
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f'metadata {key!r} is not valid JSON: {exc}') from exc
