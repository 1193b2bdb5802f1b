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
Segmentation ONNX files this package did not write: read their contract, run them as our own.

``adapted(path, config)`` returns the path a Segmenter opens: a checkpoint or
one of this package's exports unchanged; for a foreign .onnx (or an mmdeploy
work folder) a copy in the export cache wrapped to this package's contract
(``adapter``) and carrying its metadata (class table, input size), so every
backend, auto and the int8 tools treat it like an export of ours.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

from bisenet_ros.runtime.export import METADATA_KEY, set_metadata
from bisenet_ros.runtime.foreign.contract import (ContractError, model_file, ModelContract,
                                                  read_contract)

LOG = logging.getLogger('bisenet_ros.runtime')
# protobuf serialises at most 2 GiB: past this much of stored tensors the wrapped copy
# keeps them in a data file beside it, as ONNX's external data format allows.
INLINE_LIMIT = 1536 << 20

__all__ = ['adapted', 'ContractError', 'contract_of', 'ModelContract']


def _load(path, external_data, config=None):
    from bisenet_ros.runtime.config import RuntimeConfig
    from bisenet_ros.runtime.model_check import load_model, ModelFileError
    budget = (config or RuntimeConfig()).memory_budget
    try:  # our files' judgement: a regular file, ONNX, its data inside its folder and budget
        return load_model(path, budget, external_data)
    except ModelFileError as exc:
        raise ContractError(str(exc)) from None


def _is_ours(proto):
    return any(prop.key == METADATA_KEY for prop in proto.metadata_props)


def contract_of(path, class_table=None):
    """Return the ModelContract of a foreign model, or None for a file of this package."""
    path = model_file(path)
    if path.suffix != '.onnx':
        return None
    proto = _load(path, external_data=False)
    return None if _is_ours(proto) else read_contract(path, proto, class_table)


def _class_table(contract):
    from bisenet_ros.class_tables import check_mono8, load_class_table
    try:
        table = check_mono8(load_class_table(contract.classes))
    except ValueError as exc:
        raise ContractError(f'{contract.path}: {exc}') from None
    if contract.num_classes and contract.num_classes != len(table.names):
        raise ContractError(f'{contract.path}: the model scores {contract.num_classes} classes '
                            f'but the class table {contract.classes!r} names {len(table.names)}')
    return table


def _identity(contract, table):
    """Return a digest of everything the adapted file depends on."""
    digest = hashlib.sha256()
    with open(contract.path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    described = {k: str(v) for k, v in vars(contract).items() if k != 'sources'}
    digest.update(json.dumps([described, list(table.names), [list(c) for c in table.palette]],
                             sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _save(proto, target):
    """Write ``proto`` to ``target`` whole or not at all (a concurrent start may race)."""
    import onnx
    from bisenet_ros.runtime.model_memory import element_count, graphs, itemsize, stored_tensors
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f'.{target.name}.{os.getpid()}.partial')
    stored = sum(element_count(t.dims) * itemsize(t.data_type)
                 for body in graphs(proto.graph) for t in stored_tensors(body))
    if stored > INLINE_LIMIT:  # the data file is this writer's own; the rename publishes it
        onnx.save(proto, str(partial), save_as_external_data=True,
                  all_tensors_to_one_file=True, size_threshold=0,
                  location=f'{target.stem}.{os.getpid()}.data')
    else:
        onnx.save(proto, str(partial), save_as_external_data=False)
    partial.replace(target)


def adapted(path, config):
    """
    Return the .onnx (or checkpoint) path to open for the model at ``path``.

    A foreign model is adapted once into ``config.cache_folder / 'foreign'``;
    its contract is refused in one line (ContractError) when incomplete.
    """
    path = Path(path)
    if not path.is_dir() and path.suffix != '.onnx':
        return path
    source = model_file(path)
    proto = _load(source, external_data=False, config=config)
    if _is_ours(proto):
        return source
    contract = read_contract(source, proto, getattr(config, 'class_table', None))
    table = _class_table(contract)
    width, height = contract.input_size
    target = config.cache_folder / 'foreign' / f'{source.stem}-{_identity(contract, table)}.onnx'
    if target.is_file():
        return target
    from bisenet_ros.runtime.foreign.adapter import adapt
    proto = adapt(_load(source, external_data=True, config=config), contract)
    set_metadata(proto, {
        'arch': f'onnx:{source.stem}', 'variant': 'foreign', 'format_version': 1,
        'num_classes': len(table.names), 'class_names': list(table.names),
        'palette': [list(c) for c in table.palette],
        # The adapter normalises inside the graph: the Segmenter feeds pixels in 0..1.
        'mean': [0.0, 0.0, 0.0], 'std': [1.0, 1.0, 1.0], 'input_size': [width, height],
        'precision': 'fp32', 'outputs': 'labels' if contract.output_kind == 'labels' else 'logits',
        'foreign_model': str(source), 'contract': contract.sources})
    _save(proto, target)
    LOG.info('%s: foreign model adapted to %s (contract: %s)', source, target,
             ', '.join(f'{k} from {v}' for k, v in contract.sources.items()))
    return target
