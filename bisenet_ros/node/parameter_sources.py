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
Every parameter value a node process was given, with where it came from.

rcl merges the ``--params-file`` files (launch's generated one included) and
the ``-p`` values into one value per parameter, and where two sources give
one parameter values of different types it keeps the first type's value
without a word (``max_batch: 2.5`` in a second file over the first file's
``4``). So each source is read here on its own, as rcl reads it, for the
node to check every value it was given, not only the one that won.

Plain Python and YAML: no rclpy, so it is unit-tested without ROS.
"""

from dataclasses import dataclass
import re

import yaml

__all__ = ['Given', 'given_values', 'section_applies']

# rcl's key in a params file above a node's parameters.
_PARAMETERS_KEY = 'ros__parameters'


@dataclass(frozen=True)
class Given:
    """One value of one parameter and the source that gave it ('params file X', '-p')."""

    source: str
    name: str
    value: object


def section_applies(key, node_fqn):
    """
    Return whether a params file's node key (``/**``, ``/ns/*/node``...) names ``node_fqn``.

    As rcl matches them: ``**`` stands for any number of name tokens, ``*``
    for one, and a key without a leading '/' is taken from the root.
    """
    tokens = [token for token in key.split('/') if token]
    pattern = ''.join('(/[^/]+)*' if token == '**' else '/[^/]+' if token == '*'
                      else '/' + re.escape(token) for token in tokens)
    return re.fullmatch(pattern or '/', node_fqn) is not None


def _flatten(prefix, values):
    """Yield (dotted name, value) of a ``ros__parameters`` mapping (nested maps join by '.')."""
    for name, value in values.items():
        full = f'{prefix}{name}'
        if isinstance(value, dict):
            yield from _flatten(full + '.', value)
        else:
            yield full, value


def _file_values(path, node_fqn):
    """Yield (name, value) that the params file ``path`` gives ``node_fqn``."""
    try:
        with open(path, encoding='utf-8') as stream:
            document = yaml.safe_load(stream)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # rcl read it already, or refused it before the node existed
    if not isinstance(document, dict):
        return
    yield from _sections('', document, node_fqn)


def _sections(key, mapping, node_fqn):
    """Yield the parameters of the node sections under ``key`` that apply, in file order."""
    for name, value in mapping.items():
        if not isinstance(value, dict):
            continue
        if name == _PARAMETERS_KEY:
            if section_applies(key, node_fqn):
                yield from _flatten('', value)
        else:  # a namespace or node level of the key, in rcl's nested form
            yield from _sections(f'{key}/{name}', value, node_fqn)


def _read_scalar(text):
    # -p values are YAML, as rcl reads them; what YAML cannot read is a string.
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def given_values(argv, node_name, node_fqn):
    """
    Return a ``Given`` for each value ``argv`` gives the node ``node_name`` at ``node_fqn``.

    Only the ROS arguments count (after ``--ros-args``, up to ``--``):
    ``--params-file FILE`` in file order, then ``-p``/``--param NAME:=VALUE``
    (a name scoped to another node, ``other:name``, is left out).
    """
    files, params, ros = [], [], False
    tokens = iter(argv)
    for token in tokens:
        if token in ('--ros-args', '--'):
            ros = token == '--ros-args'
        elif ros and token == '--params-file':
            files.append(next(tokens, ''))
        elif ros and token in ('-p', '--param'):
            name, sep, text = next(tokens, '').partition(':=')
            node, _, name = name.rpartition(':')
            if sep and node in ('', node_name):
                params.append(Given('the command line (-p)', name, _read_scalar(text)))
    given = [Given(f'params file {path}', name, value)
             for path in files for name, value in _file_values(path, node_fqn)]
    return given + params
