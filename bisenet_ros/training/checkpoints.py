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
The network a run starts from, and the checkpoint it ends with.

A run starts from a fresh network or from ``--model`` (a warm start, with fresh
classifiers where the class count differs) and writes its best weights as
``best.pth`` (inference weights + metadata), exported to the project's
safetensors format at ``output``.
"""

from bisenet_ros import cityscapes
from bisenet_ros.checkpoint import CheckpointInfo
from bisenet_ros.checkpoint.layouts import AUX_PREFIXES
from bisenet_ros.models import build_model
from bisenet_ros.training.config import check_writable
from bisenet_ros.training.transforms import MEAN, STD
import torch
from torch import nn


def replace_classifiers(model, old_classes, new_classes):
    """
    Swap every classifier conv (1x1, biased, ``old_classes`` outputs) for a fresh one.

    Returns the names of the replaced layers; the rest of the network keeps its
    pretrained weights, which is what fine-tuning to another class set needs.
    """
    replaced = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if (isinstance(child, nn.Conv2d) and child.out_channels == old_classes
                    and child.kernel_size == (1, 1) and child.bias is not None):
                fresh = nn.Conv2d(child.in_channels, new_classes, 1, bias=True)
                setattr(module, child_name, fresh.to(child.weight.device))
                replaced.append(f'{name}.{child_name}' if name else child_name)
    if hasattr(model, 'num_classes'):
        model.num_classes = new_classes
    return replaced


def load_start(cfg):
    """Return ``(training model with aux heads, CheckpointInfo)`` of ``cfg['model']``."""
    from bisenet_ros.checkpoint import load_checkpoint
    model, info = load_checkpoint(cfg['model'], arch=cfg['arch'], aux=True)
    return model.train(), info


def build_training_model(cfg, log):
    """Return ``(model with aux heads, start info or None)``: fresh, or warm from ``model``."""
    if not cfg['model']:
        model = build_model(cfg['arch'], cfg['num_classes'], aux=True, variant=cfg['variant'])
        return model, None
    model, info = load_start(cfg)
    if info.num_classes != cfg['num_classes']:
        replaced = replace_classifiers(model, info.num_classes, cfg['num_classes'])
        log(f'model {cfg["model"]}: {info.num_classes} -> {cfg["num_classes"]} classes, '
            f'new classifiers {replaced}')
    else:
        log(f'model {cfg["model"]}: all weights loaded ({info.source}, {info.variant})')
    return model, info


def describe(cfg, start):
    """
    Return the CheckpointInfo of the network a run trains.

    Classes, palette and normalisation are the start checkpoint's where it has
    the run's classes, else Cityscapes' (or numbered) ones and CoinCheung's
    normalisation; the layout is the start checkpoint's.
    """
    n = cfg['num_classes']
    if start is not None and start.num_classes == n:
        names, palette = start.class_names, start.palette
    elif n == cityscapes.NUM_CLASSES:
        names, palette = cityscapes.CLASS_NAMES, cityscapes.PALETTE
    else:
        names, palette = [f'class_{i}' for i in range(n)], cityscapes.default_palette(n)
    return CheckpointInfo(
        arch=cfg['arch'], source='bisenet_ros', variant=start.variant if start else cfg['variant'],
        num_classes=n, class_names=tuple(names), palette=tuple(tuple(c) for c in palette),
        mean=tuple(start.mean) if start else MEAN, std=tuple(start.std) if start else STD,
        input_size=tuple(cfg['input_size']))


def eval_state_dict(model):
    """Return the state_dict without auxiliary heads (the inference network)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
            if not k.startswith(AUX_PREFIXES)}


def export_best(best_path, output, log=print):
    """Write a best.pth (eval weights + metadata) as a project checkpoint at ``output``."""
    from bisenet_ros.checkpoint import save_checkpoint
    check_writable(output, '--output', '.safetensors')
    best = torch.load(best_path, map_location='cpu', weights_only=False)
    meta = best['metadata']
    model = build_model(meta['arch'], meta['num_classes'], aux=False, variant=meta['variant'])
    model.load_state_dict(best['model'])
    save_checkpoint(output, model.eval(), meta)
    log(f'wrote {output}')
