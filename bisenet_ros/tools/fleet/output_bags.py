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
Output bags of a fleet run: written under a temporary name, assembled, renamed when complete.

A bag's chunks are written as bag folders inside ``.<name>.partial`` next to
the final path. When all are done their storage files move up as the split
files ``<name>_<index>.mcap`` of one bag, a metadata.yaml listing them all
(in order, with each file's own time span and count) is written, and the
folder is renamed to ``<name>``: a bag under its final name is complete.

The metadata.yaml's ``custom_data`` keeps the run's record under
``bisenet_ros.fleet`` (a JSON string): the identity of the run (see
RunSettings.identity), the frame counts and the undecodable frames. A rerun
reads it to skip finished bags.

Nothing is deleted that this tool did not write: an older output is replaced
only while it holds nothing but the files its metadata.yaml lists, a
leftover temporary folder only while it holds nothing but chunk names, and
no output is written inside another bag.
"""

import json
from pathlib import Path
import shutil

from bisenet_ros.tools.fleet.settings import RECORD_KEY
import yaml

INFO = 'rosbag2_bagfile_information'


class OutputTakenError(RuntimeError):
    """The output path holds something this tool did not write: it is never replaced."""


def partial_path(final):
    """Return the temporary folder a bag is written in before it is renamed to ``final``."""
    final = Path(final)
    return final.with_name(f'.{final.name}.partial')


def old_path(final):
    """Return the name an older output at ``final`` has while the new one replaces it."""
    final = Path(final)
    return final.with_name(f'.{final.name}.old')


def chunk_path(final, index):
    """Return the bag folder chunk ``index`` of the bag bound for ``final`` is written to."""
    return partial_path(final) / f'{Path(final).name}_{index}'


def read_record(bag):
    """Return the fleet record of the bag folder ``bag``, or None when it has none."""
    try:
        info = yaml.safe_load((Path(bag) / 'metadata.yaml').read_text())[INFO]
        record = json.loads((info.get('custom_data') or {})[RECORD_KEY])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None
    files = info.get('relative_file_paths') or []
    record['complete'] = bool(files) and all((Path(bag) / f).is_file() for f in files)
    return record


def _check_replaceable(output):
    """Raise OutputTakenError unless the folder ``output`` is a fleet output and nothing else."""
    record = read_record(output)
    if record is None:
        raise OutputTakenError(f'{output} exists and was not written by bisenet fleet; '
                               'move it away or choose another output root')
    info = yaml.safe_load((output / 'metadata.yaml').read_text())[INFO]
    listed = {'metadata.yaml', *info.get('relative_file_paths', ())}
    # A listed name that is a folder is not one of ours either: the metadata may lie.
    foreign = sorted(p.name for p in output.iterdir() if p.name not in listed or p.is_dir())
    if foreign:
        raise OutputTakenError(f'{output} holds {output / foreign[0]}, which is not part of the '
                               'bag bisenet fleet wrote there; move it away')


def _check_leftover(partial, name):
    """Raise OutputTakenError unless ``partial`` holds only what a cut-off run of ``name`` left."""
    foreign = sorted(p.name for p in partial.iterdir()
                     if p.name != 'metadata.yaml' and not p.name.startswith(f'{name}_'))
    if foreign:
        raise OutputTakenError(f'{partial} holds {partial / foreign[0]}, which bisenet fleet '
                               'did not write; move it away')


def finished_record(final, identity, root):
    """
    Return the record of a complete output at ``final`` written with ``identity``, else None.

    Raise OutputTakenError when ``final`` lies inside a bag below ``root``
    (the output root), or exists but is not an output of this tool alone, so
    that nothing of the user's, nor another output, is replaced or nested.
    """
    final, root = Path(final), Path(root)
    for folder in [p for p in final.parents if p == root or root in p.parents]:
        if (folder / 'metadata.yaml').exists():
            raise OutputTakenError(f'{final} would be inside the bag {folder}; move that bag '
                                   'away or choose another output root')
    if not final.exists():
        return None
    record = read_record(final)
    if record is not None and record['complete'] and record.get('identity') == identity:
        return record
    _check_replaceable(final)
    return None


def start(final):
    """Create an empty temporary folder for ``final``, dropping an unfinished earlier one."""
    partial = partial_path(final)
    if partial.exists():
        _check_leftover(partial, Path(final).name)
        shutil.rmtree(partial)
    partial.mkdir(parents=True)


def abandon(final):
    """Remove the temporary folder of ``final`` (its run failed)."""
    shutil.rmtree(partial_path(final), ignore_errors=True)


def _chunk_info(chunk):
    return yaml.safe_load((chunk / 'metadata.yaml').read_text())[INFO]


def assemble(final, chunk_count, record):
    """
    Make the chunk folders of ``final`` one bag, record ``record`` in it and rename it.

    Chunks that hold no message are left out unless all are empty. An older
    output at ``final`` (another identity, or incomplete) is replaced only once
    the new one is complete.
    """
    final, partial = Path(final), partial_path(final)
    chunks = [chunk_path(final, index) for index in range(chunk_count)]
    infos = [_chunk_info(chunk) for chunk in chunks]
    kept = [i for i, info in enumerate(infos) if info['message_count']] or [0]
    files = []
    for index in kept:
        (name,) = infos[index]['relative_file_paths']
        (chunks[index] / name).rename(partial / name)
        files.extend(infos[index]['files'])
    for chunk in chunks:
        shutil.rmtree(chunk)
    info = dict(infos[kept[0]])
    counts = [0] * len(info['topics_with_message_count'])
    for index in kept:
        for position, topic in enumerate(infos[index]['topics_with_message_count']):
            counts[position] += topic['message_count']
    info['topics_with_message_count'] = [
        dict(topic, message_count=count)
        for topic, count in zip(info['topics_with_message_count'], counts)]
    counted = [f for f in files if f['message_count']] or files
    begin = min(f['starting_time']['nanoseconds_since_epoch'] for f in counted)
    end = max(f['starting_time']['nanoseconds_since_epoch'] + f['duration']['nanoseconds']
              for f in counted)
    info.update(relative_file_paths=[f['path'] for f in files], files=files,
                message_count=sum(counts), starting_time={'nanoseconds_since_epoch': begin},
                duration={'nanoseconds': end - begin},
                custom_data={RECORD_KEY: json.dumps(record, sort_keys=True)})
    (partial / 'metadata.yaml').write_text(yaml.safe_dump({INFO: info}, sort_keys=False))
    _replace(partial, final)


def _replace(partial, final):
    """Rename ``partial`` to ``final``; an older output there goes only after the rename."""
    if not final.exists():
        partial.rename(final)
        return
    old = old_path(final)
    if old.exists():  # left by a run cut off while replacing
        _check_replaceable(old)
        shutil.rmtree(old)
    _check_replaceable(final)
    final.rename(old)
    partial.rename(final)
    shutil.rmtree(old)
