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
Weights by name: ``--model coincheung/bisenetv2-cityscapes`` fetches the publisher's file.

``CATALOGUE`` maps each name to the publisher's own release URL and the
SHA-256 this package holds for the file. ``resolve_model`` turns a name into
a file in the user cache folder (``$XDG_CACHE_HOME/bisenet_ros/weights``,
else ``~/.cache/bisenet_ros/weights``, or ``<cache_dir>/weights``): it
downloads with urllib to a temporary file next to the target, checks the
digest, renames the file into place, and checks a cached file again on every
use. Anything else (a path) passes through unchanged.

Safety: a file is loaded by name only when its full SHA-256 is pinned here.
None of the four publishers prints a full digest, so they are not pinned yet:
such a name is downloaded (and checked against the digest prefix in mmseg's
file names) and then refused with the path and the digest it has, for the
user to check and load by path. Pinning is one line in ``CATALOGUE``.

Offline, a dropped connection, an HTTP error or a digest mismatch: one line
says what to download (the URL) and where to put it (the exact cache path).
``BISENET_ROS_WEIGHTS_MIRROR=URL`` fetches ``URL/<file name>`` instead of the
publisher's URL (a local mirror; the tests' loopback server); the digests
checked are the same.
"""

from dataclasses import dataclass
import hashlib
import http.client
import logging
import os
from pathlib import Path
import urllib.error
import urllib.request

LOG = logging.getLogger('bisenet_ros.weights')

MIRROR_VARIABLE = 'BISENET_ROS_WEIGHTS_MIRROR'
TIMEOUT_S = 30.0  # per socket operation, not for the whole file
_BLOCK = 1 << 20


class WeightsError(ValueError):
    """Weights named that cannot be used; the one-line message says what would work."""


@dataclass(frozen=True)
class Weights:
    """
    One published file: where it is and what it must hash to.

    ``sha256``: the full digest, or None while not pinned; ``sha256_prefix``:
    the leading hex digits the publisher's file name carries (mmseg's
    ``-c55e78e2.pth``), checked when present.
    """

    url: str
    description: str
    sha256: str = None
    sha256_prefix: str = ''

    @property
    def file_name(self):
        """Return the file's name: the last part of its URL."""
        return self.url.rsplit('/', 1)[-1]


_COINCHEUNG = 'https://github.com/CoinCheung/BiSeNet/releases/download/0.0.0/'
_MMSEG = 'https://download.openmmlab.com/mmsegmentation/v0.5/'

CATALOGUE = {
    'coincheung/bisenetv1-cityscapes': Weights(
        _COINCHEUNG + 'model_final_v1_city_new.pth',
        'BiSeNetV1 (ResNet-18), CoinCheung/BiSeNet, Cityscapes, 75.44 mIoU val'),
    'coincheung/bisenetv2-cityscapes': Weights(
        _COINCHEUNG + 'model_final_v2_city.pth',
        'BiSeNetV2, CoinCheung/BiSeNet, Cityscapes, 74.95 mIoU val'),
    'mmseg/bisenetv1-cityscapes': Weights(
        _MMSEG + 'bisenetv1/bisenetv1_r18-d32_4x4_1024x1024_160k_cityscapes/'
        'bisenetv1_r18-d32_4x4_1024x1024_160k_cityscapes_20210922_172239-c55e78e2.pth',
        'BiSeNetV1 (ResNet-18), mmsegmentation, Cityscapes, 74.44 mIoU val',
        sha256_prefix='c55e78e2'),
    'mmseg/bisenetv2-cityscapes': Weights(
        _MMSEG + 'bisenetv2/bisenetv2_fcn_4x4_1024x1024_160k_cityscapes/'
        'bisenetv2_fcn_4x4_1024x1024_160k_cityscapes_20210902_015551-bcf10f09.pth',
        'BiSeNetV2 (FCN head), mmsegmentation, Cityscapes, 73.21 mIoU val',
        sha256_prefix='bcf10f09'),
}


def weights_folder(cache_dir=None):
    """Return where named weights are kept: ``cache_dir/weights`` or the user cache's."""
    if cache_dir:
        return Path(cache_dir).expanduser() / 'weights'
    root = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(root) / 'bisenet_ros' / 'weights'


def resolve_model(model, cache_dir=None, catalogue=None):
    """
    Return the model file for ``model``: a path as given, or a name's verified download.

    A name is ``publisher/name`` (any case) from ``catalogue`` (default
    ``CATALOGUE``); an existing path of that spelling wins. A publisher's
    unknown name is refused listing the known ones. Raises WeightsError.
    """
    catalogue = CATALOGUE if catalogue is None else catalogue
    path = Path(model)
    if path.exists():
        return path
    name = str(model).strip().lower()
    if name in catalogue:
        return fetch_weights(name, cache_dir, catalogue)
    publisher = name.split('/')[0]
    if name.count('/') == 1 and any(k.startswith(publisher + '/') for k in catalogue):
        raise WeightsError(f'no weights named {str(model)!r} and no such file; named weights: '
                           f'{", ".join(sorted(catalogue))}')
    return path


def fetch_weights(name, cache_dir=None, catalogue=None):
    """Return the cached, verified file of weights ``name``, downloading it when absent."""
    weights = (CATALOGUE if catalogue is None else catalogue)[name]
    target = weights_folder(cache_dir) / name.split('/')[0] / weights.file_name
    if target.is_file():
        digest = _sha256_of(target)
        problem = _mismatch(weights, digest)
        if problem:
            raise WeightsError(f'{name}: the cached {target} {problem}; delete it, or download '
                               f'{weights.url} and put it at {target}')
    else:
        digest = _download(name, target, weights)
    if weights.sha256 is None:
        raise WeightsError(f'{name}: this package pins no SHA-256 for {weights.file_name} '
                           f'yet, so it is not loaded by name; {target} has SHA-256 {digest}: '
                           f'if you trust that file, load it by its path {target}')
    return target


def _mismatch(weights, digest):
    """Return why ``digest`` is not the file's, or None when it may be."""
    if weights.sha256 is not None and digest != weights.sha256.lower():
        return f'has SHA-256 {digest}, not the pinned {weights.sha256}'
    if not digest.startswith(weights.sha256_prefix.lower()):
        return (f'has SHA-256 {digest}, not one starting {weights.sha256_prefix} as its '
                'name says')
    return None


def _download(name, target, weights):
    """Download ``weights`` to ``target`` through a temporary file; return its SHA-256."""
    mirror = os.environ.get(MIRROR_VARIABLE)
    url = f'{mirror.rstrip("/")}/{weights.file_name}' if mirror else weights.url
    source = f' from {url}' if mirror else ''

    def refuse(problem):
        # What to fetch by hand is the publisher's file, whatever mirror failed.
        return WeightsError(f'{name}: {problem}; download {weights.url} and put it at {target}')
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise refuse(f'the cache folder cannot be made ({exc.strerror})') from None
    partial = target.with_name(f'.{target.name}.{os.getpid()}.partial')
    LOG.info('%s: downloading %s to %s', name, url, target)
    try:
        digest = _copy(url, partial)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise refuse(f'the download{source} failed ({_reason(exc)})') from None
    problem = _mismatch(weights, digest)
    if problem:
        partial.unlink(missing_ok=True)
        raise refuse(f'the file downloaded{source} {problem}')
    partial.replace(target)  # atomic: a reader never sees half a file under the name
    return digest


def _copy(url, partial):
    """Write the body at ``url`` to ``partial``; return its SHA-256; raise if cut short."""
    digest, received = hashlib.sha256(), 0
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, \
            open(partial, 'wb') as stream:
        length = response.headers.get('Content-Length')
        for block in iter(lambda: response.read(_BLOCK), b''):
            stream.write(block)
            digest.update(block)
            received += len(block)
    if length is not None and received != int(length):
        raise http.client.IncompleteRead(b'', int(length) - received)
    return digest.hexdigest()


def _reason(exc):
    if isinstance(exc, urllib.error.HTTPError):
        return f'HTTP {exc.code} {exc.reason}'
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, http.client.IncompleteRead):
        return 'the connection closed before the end of the file'
    return f'{type(exc).__name__}: {exc}'


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(_BLOCK), b''):
            digest.update(block)
    return digest.hexdigest()
