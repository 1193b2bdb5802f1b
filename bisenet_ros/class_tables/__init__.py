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
Class tables: the names and colours a model's class ids are published with.

``load_class_table(name_or_path)`` takes a shipped table by name (``cityscapes``
19, ``ade20k`` 150, ``camvid`` 11, ``pascal_voc`` 21, ``coco_stuff`` 171) or a
file of the user's, in id order (the first class is id 0):

CSV (``.csv``): a header naming the columns ``name,r,g,b`` (any order), then
one row per class; lines starting with ``#`` are comments::

    name,r,g,b
    road,128,64,128
    car,0,0,142

YAML (``.yaml``, ``.yml``): a mapping whose ``classes`` lists each class's
``name`` and ``color`` (three integers)::

    classes:
      - {name: road, color: [128, 64, 128]}
      - {name: car, color: [0, 0, 142]}

Every class needs a name (printable, at most 64 characters, used by no other
class) and a colour (three integers 0..255, used by no other class: a colour
mask must say which class each pixel is). A table of more than 255 classes
loads, but ``check_mono8`` refuses it for mono8 labels.
"""

import csv
from dataclasses import dataclass
import functools
from importlib import resources
from pathlib import Path

from bisenet_ros import cityscapes
import yaml

SHIPPED = ('cityscapes', 'ade20k', 'camvid', 'pascal_voc', 'coco_stuff')
FILE_SUFFIXES = ('.csv', '.yaml', '.yml')
MAX_NAME_LENGTH = 64
# mono8 labels hold 256 values and 255 marks ignored pixels, so ids run 0..254.
MONO8_MAX_CLASSES = 255
_CSV_COLUMNS = ('name', 'r', 'g', 'b')


class ClassTableError(ValueError):
    """A class table that cannot be used; the one-line message names it and says why."""


@dataclass(frozen=True)
class ClassTable:
    """
    Class names and RGB colours indexed by class id.

    ``names``: (N,) str; ``palette``: (N,) (r, g, b) int tuples; ``source``:
    the shipped table's name or the file it was read from.
    """

    names: tuple
    palette: tuple
    source: str

    def __len__(self):
        """Return the number of classes."""
        return len(self.names)


def load_class_table(name_or_path):
    """
    Return the ClassTable of a shipped table name or of a CSV/YAML file.

    Raises ClassTableError (a ValueError) in one line for an unknown name, a
    missing or malformed file, a missing, invalid or repeated name or colour.
    """
    text = str(name_or_path).strip()
    if text.lower() in SHIPPED:
        return _shipped(text.lower())
    path = Path(text).expanduser()
    if path.suffix.lower() not in FILE_SUFFIXES and not path.exists():
        raise ClassTableError(f'class table {text!r} is neither a shipped table '
                              f'({", ".join(SHIPPED)}) nor a .csv or .yaml file')
    return _from_file(path)


def check_mono8(table):
    """Return ``table`` if its ids fit mono8 labels, else raise ClassTableError saying why."""
    if len(table) > MONO8_MAX_CLASSES:
        raise ClassTableError(f'class table {table.source}: {len(table)} classes do not fit '
                              f'mono8 labels (ids 0..{MONO8_MAX_CLASSES - 1}; '
                              f'{MONO8_MAX_CLASSES} marks ignored pixels); at most '
                              f'{MONO8_MAX_CLASSES} classes')
    return table


@functools.lru_cache(maxsize=None)
def _shipped(name):
    if name == 'cityscapes':  # cityscapes.py holds these facts with their labelIds
        rows = [(f'class {i}', n, c)
                for i, (n, c) in enumerate(zip(cityscapes.CLASS_NAMES, cityscapes.PALETTE))]
        return _checked(rows, name)
    text = (resources.files(__name__) / f'{name}.csv').read_text(encoding='utf-8')
    return _checked(_csv_rows(text, f'class table {name}'), name)


def _from_file(path):
    label = f'class table {path}'
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise ClassTableError(f'{label}: expected a {", ".join(FILE_SUFFIXES)} file')
    try:
        text = path.read_text(encoding='utf-8')
    except UnicodeDecodeError:
        raise ClassTableError(f'{label}: not UTF-8 text') from None
    except OSError as exc:
        raise ClassTableError(f'{label}: cannot be read ({exc.strerror})') from None
    rows = _csv_rows(text, label) if path.suffix.lower() == '.csv' else _yaml_rows(text, label)
    return _checked(rows, str(path))


def _csv_rows(text, label):
    """Return (where, name, colour) per class; colour None where a value is missing."""
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith('#')]
    if not lines:
        raise ClassTableError(f'{label}: names no classes')
    # One record per line: a stray quote cannot swallow the lines after it.
    records = [(number, next(csv.reader([line]))) for number, line in lines]
    header = [column.strip().lower() for column in records[0][1]]
    if sorted(header) != sorted(_CSV_COLUMNS):
        raise ClassTableError(f'{label}: the header must name the columns '
                              f'{",".join(_CSV_COLUMNS)}, not {",".join(header)}')
    rows = []
    for number, record in records[1:]:
        if len(record) > len(header):
            raise ClassTableError(f'{label}: line {number} has {len(record)} fields; '
                                  f'expected {len(header)} ({",".join(header)})')
        values = dict(zip(header, (value.strip() for value in record)))
        colour = [values.get(channel, '') for channel in 'rgb']
        if '' in colour:
            colour = None
        else:
            try:
                colour = [int(value) for value in colour]
            except ValueError:
                colour = tuple(colour)  # reported by _colour with the class name
        rows.append((f'line {number}', values.get('name', ''), colour))
    return rows


def _yaml_rows(text, label):
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClassTableError(f'{label}: not valid YAML ({" ".join(str(exc).split())})') \
            from None
    if not isinstance(data, dict) or not isinstance(data.get('classes'), list):
        raise ClassTableError(f'{label}: expected a mapping with a list "classes" of '
                              '{name, color: [r, g, b]}')
    if set(data) != {'classes'}:
        raise ClassTableError(f'{label}: unknown keys {sorted(set(data) - {"classes"})}; '
                              'the only key is classes')
    rows = []
    for index, entry in enumerate(data['classes']):
        where = f'classes[{index}]'
        if not isinstance(entry, dict) or set(entry) - {'name', 'color'}:
            raise ClassTableError(f'{label}: {where} must be a mapping with name and color, '
                                  f'not {entry!r}')
        rows.append((where, entry.get('name', ''), entry.get('color')))
    if not rows:
        raise ClassTableError(f'{label}: names no classes')
    return rows


def _checked(rows, source):
    """Return the ClassTable of (where, name, colour) rows after every check."""
    label = f'class table {source}'
    names, palette, first_with = [], [], {}
    for index, (where, name, colour) in enumerate(rows):
        name = _name(label, where, name)
        colour = _colour(label, where, name, colour)
        for key, value in (('name', name), ('colour', colour)):
            other = first_with.setdefault((key, value), index)
            if other != index:
                raise ClassTableError(f'{label}: classes {other} ({names[other]!r}) and '
                                      f'{index} ({name!r}) have the same {key} {value}; '
                                      f'each class needs its own')
        names.append(name)
        palette.append(colour)
    return ClassTable(tuple(names), tuple(palette), source)


def _name(label, where, name):
    if not isinstance(name, str):
        raise ClassTableError(f'{label}: {where}: the name {name!r} is not text (quote it)')
    name = name.strip()
    if not name:
        raise ClassTableError(f'{label}: {where} has no name')
    if len(name) > MAX_NAME_LENGTH:
        raise ClassTableError(f'{label}: {where}: the name {name[:20]!r}... has {len(name)} '
                              f'characters; at most {MAX_NAME_LENGTH}')
    if not name.isprintable():
        raise ClassTableError(f'{label}: {where}: the name {name!r} has control characters')
    return name


def _colour(label, where, name, colour):
    if colour is None:
        raise ClassTableError(f'{label}: {where}: class {name!r} has no colour (r, g, b)')
    if (not isinstance(colour, (list, tuple)) or len(colour) != 3
            or not all(type(value) is int and 0 <= value <= 255 for value in colour)):
        raise ClassTableError(f'{label}: {where}: the colour {colour!r} of {name!r} is not '
                              'three integers 0..255')
    return tuple(colour)
