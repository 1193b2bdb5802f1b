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
Where everything a fleet run writes goes, checked against the inputs before any work.

Each bag claims its output folder and the two hidden names beside it
(``.<name>.partial`` while it is written, ``.<name>.old`` while an older
output is replaced); the run also writes its report. No claim may be, hold
or lie inside another bag's claim or any input: a path given, a manifest,
a manifest's entry or a bag found. The output root may not be an input or
lie inside one either, or the next run would read the outputs as inputs.
Paths are compared resolved, so a symbolic link does not hide an overlap.
"""

from pathlib import Path

from bisenet_ros.tools.fleet import output_bags
from bisenet_ros.tools.fleet.discovery import resolved


class LayoutError(ValueError):
    """Two paths of a run overlap: a usage error, refused before any work."""


class _Claims:
    """Paths with what each belongs to, answering which one a path overlaps."""

    def __init__(self):
        self.exact = {}
        self.below = {}  # a folder -> (a path inside it, its owner)

    def add(self, path, owner):
        self.exact[path] = (path, owner)
        for parent in path.parents:
            self.below.setdefault(parent, (path, owner))

    def holding(self, path):
        """Return (claimed path, owner) that is ``path`` or a folder it lies in, else None."""
        return next((self.exact[p] for p in (path, *path.parents) if p in self.exact), None)

    def overlap(self, path):
        """Return (claimed path, owner) that is, holds or lies inside ``path``, else None."""
        return self.holding(path) or self.below.get(path)


def _claims(final):
    """Return the resolved paths the bag bound for ``final`` writes."""
    return [resolved(p) for p in (final, output_bags.partial_path(final),
                                  output_bags.old_path(final))]


def check_layout(out_root, found, named, report):
    """
    Raise LayoutError, one line naming both paths, when the run's paths overlap.

    ``found`` are the FoundBags (their outputs are ``out_root / relative``),
    ``named`` every input path (discovery.find_bags' ``named``), ``report``
    the report file.
    """
    inputs = _Claims()
    for path in [*named, *(bag.path for bag in found)]:
        inputs.add(resolved(path), path)
    root = resolved(out_root)
    clash = inputs.holding(root)
    if clash:
        raise LayoutError(f'output root {out_root} is the input {clash[1]} or inside it: the '
                          'next run would read the outputs as inputs; choose another output')
    named_root = Path(out_root)
    dangling = next((p for p in (named_root, *named_root.parents)
                     if p.is_symlink() and not p.exists()), None)
    if dangling is not None:
        raise LayoutError(f'output root {out_root}: {dangling} is a symbolic link to nothing '
                          'or a loop')
    blocking = next((p for p in (root, *root.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise LayoutError(f'output root {out_root}: {blocking} is a file, not a folder')
    outputs = _Claims()
    for bag in found:
        if not bag.relative.parts:
            raise LayoutError(f'{bag.path} would be written to the output root {out_root} '
                              'itself; list the folder above it instead')
        claims = _claims(Path(out_root) / bag.relative)
        for claim in claims:
            clash = inputs.overlap(claim)
            if clash:
                raise LayoutError(f'{bag.path} would be written to {claim}, which overlaps '
                                  f'the input {clash[1]}; choose another output root')
            clash = outputs.overlap(claim)
            if clash:
                where = (f'both be written to {claim}' if clash[0] == claim else
                         f'be written to {claim} and {clash[0]}, one inside the other')
                raise LayoutError(f'{bag.path} and {clash[1]} would {where}; segment them in '
                                  'separate runs or to separate output roots')
        for claim in claims:
            outputs.add(claim, bag.path)
    place = resolved(report)
    clash = inputs.holding(place) or outputs.overlap(place)
    if clash:
        raise LayoutError(f'report {report} would be written into {clash[0]} ({clash[1]}); '
                          'give --json a path outside the inputs and the output bags')
