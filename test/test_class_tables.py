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


"""Class tables: the shipped ones, the user's files, and each refusal in one line."""

from bisenet_ros import cityscapes
from bisenet_ros.class_tables import (check_mono8, ClassTableError, load_class_table,
                                      MAX_NAME_LENGTH, SHIPPED)
from bisenet_ros.training.datasets import CAMVID_CLASS_NAMES
import pytest
import yaml

COUNTS = {'cityscapes': 19, 'ade20k': 150, 'camvid': 11, 'pascal_voc': 21, 'coco_stuff': 171}


def _refused(source, match):
    with pytest.raises(ClassTableError, match=match) as refused:
        load_class_table(source)
    assert '\n' not in str(refused.value)
    return str(refused.value)


@pytest.mark.parametrize('name', SHIPPED)
def test_each_shipped_table_has_its_datasets_count_and_a_colour_per_class(name):
    table = load_class_table(name)
    assert len(table) == len(table.names) == len(table.palette) == COUNTS[name]
    assert len(set(table.palette)) == len(table.palette)
    assert len(set(table.names)) == len(table.names)
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in table.palette)
    assert table.source == name
    assert check_mono8(table) is table


@pytest.mark.parametrize('name,first,colour_of_first', [
    ('cityscapes', ('road', 'sidewalk'), (128, 64, 128)),
    ('ade20k', ('wall', 'building', 'sky'), (120, 120, 120)),
    ('pascal_voc', ('background', 'aeroplane', 'bicycle'), (0, 0, 0)),
    ('coco_stuff', ('person', 'bicycle', 'car'), (0, 192, 64)),
])
def test_shipped_tables_follow_the_datasets_order_and_colours(name, first, colour_of_first):
    table = load_class_table(name)
    assert table.names[:len(first)] == first
    assert table.palette[0] == colour_of_first


def test_the_cityscapes_table_is_the_one_the_package_trains_with():
    table = load_class_table('cityscapes')
    assert (table.names, table.palette) == (cityscapes.CLASS_NAMES, cityscapes.PALETTE)


def test_the_camvid_table_names_the_trainers_camvid_classes():
    assert load_class_table('camvid').names == CAMVID_CLASS_NAMES


def test_the_pascal_voc_colours_are_the_datasets_bit_colour_map():
    palette = load_class_table('pascal_voc').palette
    assert palette[1] == (128, 0, 0) and palette[7] == (128, 128, 128)
    assert palette[15] == (192, 128, 128) and palette[20] == (0, 64, 128)


def test_shipped_names_are_found_whatever_their_case():
    assert load_class_table(' ADE20K ') is load_class_table('ade20k')


def test_a_csv_file_loads_in_id_order_with_comments_and_any_column_order(tmp_path):
    path = tmp_path / 'mine.csv'
    path.write_text("# my robot's classes\nr,g,b,name\n\n128,64,128,road\n"
                    '0, 0, 142, car \n# done\n')
    table = load_class_table(path)
    assert table.names == ('road', 'car')
    assert table.palette == ((128, 64, 128), (0, 0, 142))
    assert table.source == str(path)


def test_a_yaml_file_loads_in_id_order(tmp_path):
    path = tmp_path / 'mine.yml'
    path.write_text(yaml.safe_dump({'classes': [{'name': 'floor', 'color': [10, 20, 30]},
                                                {'name': 'obstacle', 'color': [255, 0, 0]}]}))
    table = load_class_table(str(path))
    assert (table.names, table.palette) == (('floor', 'obstacle'),
                                            ((10, 20, 30), (255, 0, 0)))


def test_an_unknown_name_is_refused_listing_the_shipped_tables():
    message = _refused('kitti', "'kitti' is neither a shipped table")
    assert all(name in message for name in SHIPPED)


@pytest.mark.parametrize('file_name,content,match', [
    ('absent.csv', None, 'cannot be read'),
    ('table.txt', 'name,r,g,b\nroad,1,2,3\n', r'expected a \.csv, \.yaml, \.yml file'),
    ('bad.yaml', 'classes: [name: road\n', 'not valid YAML'),
    ('list.yaml', '- {name: road, color: [1, 2, 3]}\n', 'a list "classes"'),
    ('extra.yaml', 'classes: [{name: road, color: [1, 2, 3]}]\npalette: x\n',
     r"unknown keys \['palette'\]"),
    ('entry.yaml', 'classes: [road]\n', r'classes\[0\] must be a mapping'),
    ('empty.csv', '# nothing\n', 'names no classes'),
    ('empty.yaml', 'classes: []\n', 'names no classes'),
    ('header.csv', 'label,red,green,blue\nroad,1,2,3\n', 'the header must name the columns'),
    ('long_row.csv', 'name,r,g,b\nroad,1,2,3,4\n', 'line 2 has 5 fields'),
    ('no_colour.csv', 'name,r,g,b\nroad,1,2,3\ncar,,,\n', "line 3: class 'car' has no colour"),
    ('short.csv', 'name,r,g,b\nroad,1,2\n', "line 2: class 'road' has no colour"),
    ('no_colour.yaml', 'classes: [{name: road}]\n', r"classes\[0\]: class 'road' has no colour"),
    ('range.csv', 'name,r,g,b\nroad,1,2,300\n', r'the colour \[1, 2, 300\] of .road. is not'),
    ('text.csv', 'name,r,g,b\nroad,1,2,blue\n', 'is not three integers 0..255'),
    ('two.yaml', 'classes: [{name: road, color: [1, 2]}]\n', 'is not three integers'),
    ('bool.yaml', 'classes: [{name: road, color: [1, 2, true]}]\n', 'is not three integers'),
    ('same_colour.csv', 'name,r,g,b\nroad,1,2,3\ncar,4,5,6\nsky,1,2,3\n',
     r"classes 0 \('road'\) and 2 \('sky'\) have the same colour \(1, 2, 3\)"),
    ('same_name.yaml', 'classes: [{name: car, color: [1, 2, 3]}, {name: car, color: [3, 2, 1]}]',
     r"classes 0 \('car'\) and 1 \('car'\) have the same name car"),
    ('nameless.csv', 'name,r,g,b\n,1,2,3\n', 'line 2 has no name'),
    ('number.yaml', 'classes: [{name: 7, color: [1, 2, 3]}]\n', 'the name 7 is not text'),
])
def test_each_malformed_file_is_refused_in_one_line(tmp_path, file_name, content, match):
    path = tmp_path / file_name
    if content is not None:
        path.write_text(content)
    message = _refused(path, match)
    assert message.startswith(f'class table {path}')


def test_an_over_long_name_is_refused_with_the_limit(tmp_path):
    path = tmp_path / 'long.csv'
    path.write_text(f'name,r,g,b\n{"x" * (MAX_NAME_LENGTH + 1)},1,2,3\n')
    _refused(path, f'has {MAX_NAME_LENGTH + 1} characters; at most {MAX_NAME_LENGTH}')


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / 'latin1.csv'
    path.write_bytes('name,r,g,b\nstra\xdfe,1,2,3\n'.encode('latin-1'))
    _refused(path, 'not UTF-8 text')


def _table_of(tmp_path, count):
    path = tmp_path / f'{count}.csv'
    rows = ''.join(f'c{i},{i % 256},{i // 256},0\n' for i in range(count))
    path.write_text('name,r,g,b\n' + rows)
    return load_class_table(path)


def test_255_classes_fit_mono8_labels(tmp_path):
    table = _table_of(tmp_path, 255)
    assert check_mono8(table) is table


def test_more_than_255_classes_load_but_are_refused_for_mono8_labels_with_the_reason(tmp_path):
    table = _table_of(tmp_path, 256)
    assert len(table) == 256
    with pytest.raises(ClassTableError, match=r'256 classes do not fit mono8 labels \(ids '
                                              r'0\.\.254; 255 marks ignored pixels\)') as no:
        check_mono8(table)
    assert '\n' not in str(no.value)
