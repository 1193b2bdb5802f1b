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
Finding the bags of a fleet run: bags, folders of bags and manifests.

An input is a rosbag2 (a folder with a metadata.yaml, or one .mcap or .db3
file), a folder searched recursively for bag folders, or a manifest: a text
file with one bag or folder per line (blank lines and lines starting with #
are skipped; relative paths are relative to the manifest's folder). Each bag
gets the output name that mirrors the input tree: a folder's bags keep their
path below that folder, a manifest's relative entries keep theirs, and a bag
named directly keeps its own name. Whether those outputs overlap each other
or an input is checked by ``layout``, before any work.
"""

import collections
import os
from pathlib import Path

BAG_FILE_SUFFIXES = ('.mcap', '.db3')

FoundBag = collections.namedtuple('FoundBag', 'path relative error')
FoundBag.__doc__ = ('One input bag: its path, its output path relative to the output root, '
                    'and why it cannot be used (None when it can).')


def resolved(path):
    """Return ``path`` absolute with symbolic links resolved; a loop of links left as named."""
    try:
        return Path(path).resolve()
    except RuntimeError:  # a loop: nothing is there, so its name is all it can be compared by
        return Path(os.path.abspath(path))


def is_bag(path):
    """Return whether ``path`` is a rosbag2: a folder with a metadata.yaml or a storage file."""
    path = Path(path)
    if path.is_dir():
        return (path / 'metadata.yaml').is_file()
    return path.is_file() and path.suffix in BAG_FILE_SUFFIXES


def _bag_name(path):
    return Path(path.stem if path.is_file() else path.name)


def _bags_in_folder(folder):
    """Yield the bag folders below ``folder``, sorted; a bag's own folder is not searched."""
    for metadata in sorted(folder.rglob('metadata.yaml')):
        bag = metadata.parent
        relative = bag.relative_to(folder)
        # Hidden folders hold unfinished outputs of this tool (and other tools' scratch).
        if any(part.startswith('.') for part in relative.parts):
            continue
        if any((folder / parent / 'metadata.yaml').is_file()
               for parent in list(relative.parents)[:-1]):
            continue
        yield FoundBag(bag, relative, None)


def _manifest_entries(manifest):
    folder = manifest.parent
    for line in manifest.read_text().splitlines():
        entry = line.strip()
        if not entry or entry.startswith('#'):
            continue
        path = Path(entry)
        if not path.is_absolute() and '..' not in path.parts:
            yield folder / path, path
        else:
            yield resolved(folder / path), None


def _expand(path, relative, named):
    """Yield the FoundBags of one path: a bag, a folder of bags or a manifest; list it in named."""
    named.append(path)
    if is_bag(path):
        yield FoundBag(path, relative or _bag_name(path), None)
    elif path.is_dir():
        for found in _bags_in_folder(path):
            yield found._replace(relative=(relative or Path('.')) / found.relative)
    elif path.is_file():
        try:
            entries = list(_manifest_entries(path))
        except (OSError, UnicodeDecodeError) as exc:
            yield FoundBag(path, relative or _bag_name(path),
                           f'not a bag and not a readable manifest ({exc})')
            return
        for entry, entry_relative in entries:
            if entry.is_file() and not is_bag(entry):
                named.append(entry)
                yield FoundBag(entry, entry_relative or _bag_name(entry),
                               'a manifest lists bags and folders, not other manifests')
            else:
                yield from _expand(entry, entry_relative, named)
    else:
        why = 'is a symbolic link to nothing or a loop' if path.is_symlink() else 'does not exist'
        yield FoundBag(path, relative or _bag_name(path), why)


def find_bags(inputs, named=None):
    """
    Return the FoundBags of ``inputs`` (paths), each bag once, in the order given.

    A path that does not exist is returned with its error so that it is
    reported with the others. ``named`` (a list) gets every path the inputs
    name: the inputs themselves and each manifest's entries, for the layout
    check.
    """
    found, seen = [], set()
    named = [] if named is None else named
    for path in inputs:
        for bag in _expand(Path(path), None, named):
            key = resolved(bag.path)
            if key in seen:
                continue
            seen.add(key)
            found.append(bag)
    return found
