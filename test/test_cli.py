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

"""The one front door: ``bisenet SUBCOMMAND``, one spelling per option, defaults shown."""

import re
import subprocess
import sys

from bisenet_ros.cli import main, SUBCOMMANDS
import pytest

# Spellings no subcommand may use any more: each thing has one name.
RETIRED = ('--data-root', '--min-agreement', '--batches', '--batch-size', '--size ',
           '--sizes', '--init', '--report', '--checkpoint')
# Options whose values are shown by every subcommand that has them.
SHARED = {'--model': 'PATH', '--input-size': 'WxH', '--data': None, '--batch': None}


def _help(name, capsys):
    assert main([name, '--help']) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize('name', sorted(SUBCOMMANDS))
def test_every_subcommand_has_help_with_its_defaults_and_the_shared_spellings(name, capsys):
    text = _help(name, capsys)
    assert text.startswith(f'usage: bisenet {name}')
    for retired in RETIRED:
        assert retired not in text, f'bisenet {name} still spells {retired.strip()}'
    # Every option with a value default says it; an option without one explains in words.
    options = re.findall(r'^  (--[a-z0-9-]+) [A-Z_x{]', text, re.MULTILINE)
    for option in options:
        block = re.split(rf'^  {option}\b', text, maxsplit=1, flags=re.MULTILINE)[1]
        block = block.split('\n  -', 1)[0]
        assert 'default' in block or 'required' in block, (
            f'bisenet {name} {option}: no default shown')
    if '--input-size' in text:
        assert '--input-size WxH' in text
    if '--json' in text:
        assert re.search(r'--json (FILE|JSON)', text)


def test_runtime_options_are_the_same_in_every_tool_that_runs_a_model(capsys):
    runtime = {}
    for name in ('segment', 'fleet', 'evaluate'):
        text = _help(name, capsys)
        runtime[name] = text[text.index('runtime (how the model runs)'):]
    assert runtime['segment'] == runtime['fleet'] == runtime['evaluate']
    for option, default in (('--backend', 'auto'), ('--device', 'auto'),
                            ('--precision', 'auto')):
        assert re.search(rf'{option} \{{[a-z0-9,]+\}}\s+.*?\(default: {default}\)',
                         runtime['segment'], re.DOTALL)


def test_an_unknown_subcommand_lists_the_subcommands(capsys):
    assert main(['segmnet']) == 2
    err = capsys.readouterr().err
    assert "unknown subcommand 'segmnet'" in err and 'segment' in err and 'fleet' in err


def test_the_command_runs_as_a_module_without_torch_for_help():
    code = ('import sys, runpy; sys.argv = ["bisenet", "--help"]\n'
            'try:\n    runpy.run_module("bisenet_ros", run_name="__main__")\n'
            'except SystemExit as exc:\n    assert exc.code == 0\n'
            'assert "torch" not in sys.modules and "rclpy" not in sys.modules\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'subcommands:' in result.stdout


def test_ray_never_swallows_an_input(capsys):
    from bisenet_ros.tools.segment_fleet import _parse, build_parser
    parser = build_parser()
    args = _parse(parser, ['--ray', 'bags', '-o', 'out'])
    assert args.ray is True and [str(p) for p in args.inputs] == ['bags']
    args = _parse(parser, ['bags', '--ray=auto', '-o', 'out'])
    assert args.ray == 'auto' and [str(p) for p in args.inputs] == ['bags']
    args = _parse(parser, ['bags', '--ray-address', 'ray://head:10001', '-o', 'out'])
    assert args.ray == 'ray://head:10001'
