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
Weights by name, served by a loopback HTTP server; no test reaches the internet.

The server stands in for the publisher through BISENET_ROS_WEIGHTS_MIRROR; a
file's digest is pinned for a test by passing a catalogue of its own.
"""

import dataclasses
import hashlib
import http.server
import re
import socket
import threading

from bisenet_ros.checkpoint import load_checkpoint
from bisenet_ros.weights_by_name import (CATALOGUE, MIRROR_VARIABLE, resolve_model, Weights,
                                         weights_folder, WeightsError)
from helpers import reference_state_dict
import pytest
import torch

V2 = 'coincheung/bisenetv2-cityscapes'
V2_FILE = 'model_final_v2_city.pth'


class _Publisher(http.server.BaseHTTPRequestHandler):
    """Serve ``server.files`` (URL path -> bytes); ``server.drop`` cuts each body in half."""

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        """Answer a GET with the file, a half of it, or 404."""
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if self.server.drop else body)
        self.close_connection = True

    def log_message(self, *args):
        """Keep the test output quiet."""


@pytest.fixture
def publisher(monkeypatch):
    """Return a running loopback server that the mirror variable points at."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Publisher)
    server.files, server.drop, server.requests = {}, False, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for variable in ('http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(variable, raising=False)
    server.url = f'http://127.0.0.1:{server.server_address[1]}/files'
    monkeypatch.setenv(MIRROR_VARIABLE, server.url)
    yield server
    server.shutdown()
    server.server_close()


def _serve(server, name, body):
    server.files[f'/files/{name}'] = body


@pytest.fixture(scope='module')
def v2_bytes(tmp_path_factory):
    """Return a file in the layout CoinCheung publishes (train-mode V2 state_dict)."""
    path = tmp_path_factory.mktemp('v2') / V2_FILE
    torch.save(reference_state_dict('coincheung_v2'), path)
    return path.read_bytes()


def _pinned(name, body):
    """Return a catalogue in which ``name`` is pinned to ``body``'s digest."""
    return {**CATALOGUE, name: dataclasses.replace(
        CATALOGUE[name], sha256=hashlib.sha256(body).hexdigest())}


def _refused(match, *args, **kwargs):
    with pytest.raises(WeightsError, match=match) as refused:
        resolve_model(*args, **kwargs)
    assert '\n' not in str(refused.value)
    return str(refused.value)


def _leftovers(folder):
    return [p.name for p in folder.rglob('*') if p.is_file()] if folder.exists() else []


def test_a_pinned_name_is_downloaded_verified_cached_and_loads(publisher, v2_bytes, tmp_path):
    _serve(publisher, V2_FILE, v2_bytes)
    path = resolve_model('CoinCheung/BiSeNetV2-Cityscapes', tmp_path / 'cache',
                         _pinned(V2, v2_bytes))
    assert path == tmp_path / 'cache' / 'weights' / 'coincheung' / V2_FILE
    assert path.read_bytes() == v2_bytes
    assert _leftovers(path.parent) == [V2_FILE]  # no temporary file left behind
    assert publisher.requests == [f'/files/{V2_FILE}']
    model, info = load_checkpoint(path)
    assert (info.arch, info.source, info.num_classes) == ('bisenetv2', 'coincheung', 19)


def test_a_cached_file_is_verified_again_and_not_downloaded_twice(publisher, v2_bytes,
                                                                  tmp_path):
    _serve(publisher, V2_FILE, v2_bytes)
    catalogue = _pinned(V2, v2_bytes)
    first = resolve_model(V2, tmp_path, catalogue)
    assert resolve_model(V2, tmp_path, catalogue) == first
    assert len(publisher.requests) == 1
    with open(first, 'ab') as stream:
        stream.write(b'\0')
    message = _refused(f'the cached {re.escape(str(first))} has SHA-256 [0-9a-f]{{64}}, not '
                       'the pinned', V2, tmp_path, catalogue)
    assert message.endswith(f'delete it, or download {CATALOGUE[V2].url} and put it at {first}')


def test_a_wrong_checksum_is_refused_with_the_url_and_the_path_and_nothing_is_kept(
        publisher, v2_bytes, tmp_path):
    _serve(publisher, V2_FILE, b'not the published file')
    target = tmp_path / 'weights' / 'coincheung' / V2_FILE
    message = _refused(f'the file downloaded from {publisher.url}/{V2_FILE} has SHA-256 '
                       '[0-9a-f]{64}, not the pinned', V2, tmp_path, _pinned(V2, v2_bytes))
    assert message.endswith(f'download {CATALOGUE[V2].url} and put it at {target}')
    assert _leftovers(tmp_path / 'weights') == []


def test_a_dropped_connection_is_refused_and_nothing_is_kept(publisher, v2_bytes, tmp_path):
    _serve(publisher, V2_FILE, v2_bytes)
    publisher.drop = True
    target = tmp_path / 'weights' / 'coincheung' / V2_FILE
    message = _refused(f'the download from {publisher.url}/{V2_FILE} failed .the connection '
                       'closed before the end of the file.', V2, tmp_path, _pinned(V2, v2_bytes))
    assert message.endswith(f'download {CATALOGUE[V2].url} and put it at {target}')
    assert _leftovers(tmp_path / 'weights') == []


def test_offline_says_what_to_download_and_where_to_put_it(monkeypatch, tmp_path):
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(MIRROR_VARIABLE, f'http://127.0.0.1:{port}')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    weights = CATALOGUE['mmseg/bisenetv1-cityscapes']
    target = tmp_path / 'xdg' / 'bisenet_ros' / 'weights' / 'mmseg' / weights.file_name
    message = _refused(f'mmseg/bisenetv1-cityscapes: the download from http://127.0.0.1:{port}/'
                       f'{weights.file_name} failed .*refused', 'mmseg/bisenetv1-cityscapes')
    # The user is sent to the publisher's file, not to the mirror that failed.
    assert message.endswith(f'download {weights.url} and put it at {target}')


def test_a_missing_file_on_the_server_is_refused_with_the_http_status(publisher, tmp_path):
    _refused(r'the download from .* failed \(HTTP 404 ', V2, tmp_path)


def test_an_unpinned_name_is_kept_for_the_user_but_refused_with_its_digest(
        publisher, v2_bytes, tmp_path):
    assert CATALOGUE[V2].sha256 is None  # no published digest to pin (see the module)
    _serve(publisher, V2_FILE, v2_bytes)
    target = tmp_path / 'weights' / 'coincheung' / V2_FILE
    digest = hashlib.sha256(v2_bytes).hexdigest()
    message = _refused(f'{V2}: this package pins no SHA-256 for {V2_FILE} yet, so it is not '
                       'loaded by name', V2, tmp_path)
    assert message.endswith(f'{target} has SHA-256 {digest}: if you trust that file, load it '
                            f'by its path {target}')
    assert target.read_bytes() == v2_bytes
    # Cached, it is refused the same way without a second download.
    _refused('pins no SHA-256', V2, tmp_path)
    assert len(publisher.requests) == 1


def test_the_digest_prefix_in_a_file_name_is_checked(publisher, tmp_path):
    body = b'weights'
    digest = hashlib.sha256(body).hexdigest()
    catalogue = {'test/named': Weights('https://example.invalid/x/w-0000aaaa.pth', 'test',
                                       sha256_prefix='0000aaaa'),
                 'test/right': Weights(f'https://example.invalid/x/w-{digest[:8]}.pth', 'test',
                                       sha256_prefix=digest[:8])}
    _serve(publisher, 'w-0000aaaa.pth', body)
    _serve(publisher, f'w-{digest[:8]}.pth', body)
    _refused(f'has SHA-256 {digest}, not one starting 0000aaaa as its name says', 'test/named',
             tmp_path, catalogue)
    _refused('pins no SHA-256', 'test/right', tmp_path, catalogue)


def test_mmseg_names_carry_the_digest_prefix_of_their_file_names():
    for name, weights in CATALOGUE.items():
        assert weights.url.startswith(('https://github.com/CoinCheung/BiSeNet/releases/',
                                       'https://download.openmmlab.com/mmsegmentation/'))
        assert weights.sha256 is None or re.fullmatch('[0-9a-f]{64}', weights.sha256)
        if name.startswith('mmseg/'):
            assert weights.file_name.endswith(f'-{weights.sha256_prefix}.pth')
            assert len(weights.sha256_prefix) == 8


def test_paths_pass_through_and_an_unknown_name_lists_the_known_ones(tmp_path):
    existing = tmp_path / 'coincheung' / 'bisenetv2-cityscapes'
    existing.parent.mkdir()
    existing.write_bytes(b'a file of that name wins')
    assert resolve_model(existing) == existing
    assert str(resolve_model('runs/missing.pth')) == 'runs/missing.pth'
    message = _refused("no weights named 'coincheung/bisenetv3-cityscapes' and no such file",
                       'coincheung/bisenetv3-cityscapes')
    assert all(name in message for name in CATALOGUE)


def test_the_cache_folder_follows_cache_dir_then_xdg_then_home(monkeypatch, tmp_path):
    assert weights_folder(tmp_path / 'mine') == tmp_path / 'mine' / 'weights'
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert weights_folder() == tmp_path / 'xdg' / 'bisenet_ros' / 'weights'
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert weights_folder() == tmp_path / 'home' / '.cache' / 'bisenet_ros' / 'weights'
