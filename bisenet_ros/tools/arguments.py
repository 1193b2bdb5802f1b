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
What every ``bisenet`` subcommand's command line shares: the parser, its help, runtime options.

One spelling per thing across subcommands: ``--model``, ``--input-size WxH``,
``--batch``, ``--data`` (a dataset root), ``--json FILE``; every ``--help``
shows each default.
"""

import argparse

from bisenet_ros.runtime.config import RuntimeConfig


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """
    Each option's default after its help, the description kept as written.

    An option whose help already names its default (in words, for a None
    default such as "the model's own") is left as written; one that is off
    unless given says so; a required one says that.
    """

    def _format_action(self, action):
        if not action.help:  # argparse prints nothing, not even the default, without help
            action.help = self._note(action, '').strip() or None
        return super()._format_action(action)

    def _get_help_string(self, action):
        return self._note(action, action.help)

    @staticmethod
    def _note(action, text):
        if not action.option_strings or 'default' in text or 'required' in text:
            return text
        if action.required:
            return f'{text} (required)'
        if action.default is argparse.SUPPRESS or action.default is False:
            return text
        if action.default is None:
            return f'{text} (default: not set)'
        return f'{text} (default: %(default)s)'


def _parsed(text, cast, kind):
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not {kind}') from None


def int_within(low, high=None):
    """Return an argparse type: an integer within ``low``..``high`` (no upper bound if None)."""
    def integer(text):
        value = _parsed(text, int, 'an integer')
        if value < low or (high is not None and value > high):
            bound = f'not within {low}..{high}' if high is not None else f'below {low}'
            raise argparse.ArgumentTypeError(f'{value} is {bound}')
        return value
    return integer


def positive_number(text):
    """Return ``text`` as a finite float above 0 (argparse type)."""
    value = _parsed(text, float, 'a number')
    if not 0 < value < float('inf'):
        raise argparse.ArgumentTypeError(f'{value} is not a number above 0')
    return value


def fraction(text):
    """Return ``text`` as a float within 0..1 (argparse type)."""
    value = _parsed(text, float, 'a number')
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'{value} is not within 0..1')
    return value


def new_parser(prog, doc):
    """Return a parser for subcommand ``prog`` described by a module docstring ``doc``."""
    return argparse.ArgumentParser(prog=prog, description=doc.strip(),
                                   formatter_class=HelpFormatter)


def runtime_config(parser, args, **extra):
    """Return the RuntimeConfig of ``args``; a value it refuses exits 2 through ``parser``."""
    try:
        return RuntimeConfig.from_args(args, **extra)
    except ValueError as exc:
        parser.error(str(exc))
