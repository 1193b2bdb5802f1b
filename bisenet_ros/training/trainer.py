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
One training run: data, model, optimiser, schedule, evaluation and checkpoints.

The run is iteration based with a poly schedule; ``time_budget_s`` additionally
stretches the schedule over wall time, so that a run on a shared CPU still
finishes its decay on time. ``out_dir`` receives ``last.pth`` (resumable),
``best.pth`` and ``metrics.jsonl``.
"""

import contextlib
import json
import os
from pathlib import Path
import random
import sys
import time

from bisenet_ros import cityscapes
from bisenet_ros.checkpoint import CheckpointInfo
from bisenet_ros.checkpoint.layouts import AUX_PREFIXES
from bisenet_ros.models import build_model
from bisenet_ros.runtime import Segmenter
from bisenet_ros.training.config import pick_autocast, pick_device
from bisenet_ros.training.datasets import build_dataset
from bisenet_ros.training.evaluation import evaluate, segmenter_predictor
from bisenet_ros.training.loss import OhemCELoss
from bisenet_ros.training.metrics import summarize
from bisenet_ros.training.schedule import poly_warmup_factor
from bisenet_ros.training.transforms import MEAN, STD, train_transform
import numpy as np
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


def build_training_model(cfg, log):
    """Return ``(model with aux heads, init info or None)`` per the config."""
    if not cfg['init']:
        model = build_model(cfg['arch'], cfg['num_classes'], aux=True, variant=cfg['variant'])
        return model, None
    from bisenet_ros.checkpoint import load_checkpoint
    model, info = load_checkpoint(cfg['init'], arch=cfg['arch'], aux=True)
    cfg['variant'] = info.variant
    if cfg['qat']:
        from bisenet_ros.training.qat import check_class_set
        check_class_set(info, cfg)
    if info.num_classes != cfg['num_classes']:
        replaced = replace_classifiers(model, info.num_classes, cfg['num_classes'])
        log(f'init {cfg["init"]}: {info.num_classes} -> {cfg["num_classes"]} classes, '
            f'new classifiers {replaced}')
    else:
        log(f'init {cfg["init"]}: all weights loaded ({info.source}, {info.variant})')
    return model.train(), info


def param_groups(model, weight_decay):
    """Decay conv/linear weights only: decaying BN affine terms and biases only hurts."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{'params': decay, 'weight_decay': weight_decay},
            {'params': no_decay, 'weight_decay': 0.0}]


def eval_state_dict(model):
    """Return the state_dict without auxiliary heads (the inference network)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
            if not k.startswith(AUX_PREFIXES)}


class Trainer:
    """One training run: data, model, optimiser, schedule, evaluation and checkpoints."""

    def __init__(self, cfg, command, log=print):
        self.cfg = cfg
        self.command = command
        self.log = log
        self.device = pick_device(cfg['device'])
        torch.set_num_threads(int(cfg['threads']))
        self.autocast_dtype = pick_autocast(cfg['amp'], self.device)
        self.out_dir = Path(cfg['out_dir'])
        self.out_dir.mkdir(parents=True, exist_ok=True)
        _seed_everything(cfg['seed'])
        self.model, init_info = build_training_model(cfg, log)
        self.mean = tuple(init_info.mean) if init_info else MEAN
        self.std = tuple(init_info.std) if init_info else STD
        n = cfg['num_classes']
        if init_info is not None and init_info.num_classes == n:
            self.class_names, self.palette = list(init_info.class_names), init_info.palette
        elif n == cityscapes.NUM_CLASSES:
            self.class_names, self.palette = list(cityscapes.CLASS_NAMES), cityscapes.PALETTE
        else:
            self.class_names = [f'class_{i}' for i in range(n)]
            self.palette = cityscapes.default_palette(n)
        # What the model is, for the runtime at validation and for its checkpoints.
        self.info = CheckpointInfo(
            arch=cfg['arch'], source='bisenet_ros', variant=cfg['variant'],
            num_classes=n, class_names=tuple(self.class_names),
            palette=tuple(tuple(c) for c in self.palette), mean=tuple(self.mean),
            std=tuple(self.std), input_size=tuple(cfg['input_size']))
        self.weight_bits = None
        self.float_layers = []
        if cfg['qat']:
            self._start_qat(init_info)
        self.model.to(self.device)
        self.channels_last = cfg['channels_last']
        if self.channels_last == 'auto':
            # Measured on CPU (V2 train step): NHWC is ~15 % faster with bf16 but ~20 %
            # slower in fp32, so it follows the autocast choice.
            self.channels_last = self.autocast_dtype is not None
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.rng = np.random.default_rng(cfg['seed'])
        self.train_set = build_dataset(
            cfg['dataset'], cfg['data_root'], cfg['train_split'],
            train_transform(cfg['crop_size'], cfg['scales'], cfg['jitter'], self.mean,
                            self.std, self.rng),
            cache=cfg['cache'])
        self.val_set = None
        if cfg['val_split']:
            self.val_set = build_dataset(cfg['dataset'], cfg['data_root'], cfg['val_split'],
                                         cache=cfg['cache'])
        self.criterion = OhemCELoss(cfg['ohem_thresh'])
        self.optimizer = torch.optim.SGD(param_groups(self.model, cfg['weight_decay']),
                                         lr=cfg['lr'], momentum=cfg['momentum'])
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.autocast_dtype == torch.float16)
        self.iteration = 0
        self.elapsed = 0.0
        self.warmup_elapsed = None
        self.best_miou = -1.0
        self.best_summary = None
        self.order = []
        self.epoch = 0
        self.stop_requested = False

    def _start_qat(self, init_info):
        """Quantise the loaded network for QAT: fp32 maths, NNCF quantisers, chosen weight bits."""
        from bisenet_ros.runtime.quantize import default_weight_bits
        from bisenet_ros.training.qat import (calibration_frames, float_end_layers,
                                              quantize_for_training)
        if init_info is None:
            raise ValueError('--qat fine-tunes a trained network: give it --init CHECKPOINT')
        if self.cfg['output'] and not str(self.cfg['output']).endswith('.onnx'):
            # e.g. a config's checkpoint path: an int8 graph must not overwrite it.
            raise ValueError(f'--qat writes an int8 .onnx file; --output {self.cfg["output"]} '
                             'must end in .onnx')
        # Fake quantisation under autocast would quantise bf16/fp16 rounding, not what runs.
        self.autocast_dtype = None
        self.cfg['channels_last'] = False
        bits = self.cfg['qat_weight_bits']
        self.weight_bits = default_weight_bits() if bits == 'auto' else int(bits)
        if self.cfg['qat_float_ends']:
            # The auxiliary heads are not exported: only the inference network's layers count.
            self.float_layers = [name for name in float_end_layers(self.model,
                                                                   self.cfg['num_classes'])
                                 if not name.startswith(AUX_PREFIXES)]
        self.model = quantize_for_training(self.model, calibration_frames(self.cfg, init_info),
                                           self.weight_bits, self.float_layers)
        self.log(f'QAT: NNCF quantisers inserted, {self.weight_bits}-bit weights'
                 + (f', float: {", ".join(self.float_layers)}' if self.float_layers else ''))

    # ---- state -------------------------------------------------------------------------

    def state(self):
        """Return everything ``resume`` needs."""
        return {'model': self.model.state_dict(), 'optimizer': self.optimizer.state_dict(),
                'scaler': self.scaler.state_dict(), 'iteration': self.iteration,
                'elapsed': self.elapsed, 'warmup_elapsed': self.warmup_elapsed,
                'best_miou': self.best_miou, 'best_summary': self.best_summary,
                'epoch': self.epoch, 'order': list(self.order), 'config': self.cfg,
                'rng': self.rng.bit_generator.state, 'torch_rng': torch.get_rng_state()}

    def save_last(self):
        """Write ``last.pth`` atomically, so an interruption mid-write keeps the old one."""
        tmp = self.out_dir / 'last.pth.tmp'
        torch.save(self.state(), tmp)
        os.replace(tmp, self.out_dir / 'last.pth')

    def resume(self, path):
        """Restore a ``last.pth`` written by :meth:`save_last`."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.scaler.load_state_dict(state['scaler'])
        self.iteration = state['iteration']
        self.elapsed = state['elapsed']
        self.warmup_elapsed = state['warmup_elapsed']
        self.best_miou = state['best_miou']
        self.best_summary = state['best_summary']
        self.epoch = state['epoch']
        self.order = list(state['order'])
        self.rng.bit_generator.state = state['rng']
        torch.set_rng_state(state['torch_rng'])
        self.log(f'resumed {path} at iteration {self.iteration} '
                 f'({self.elapsed / 60:.1f} min trained, best mIoU {self.best_miou:.4f})')

    # ---- schedule ----------------------------------------------------------------------

    def lr_factor(self):
        """Return the LR multiplier: poly over iterations, or over time when that is later."""
        cfg = self.cfg
        factor = poly_warmup_factor(self.iteration, cfg['max_iter'], cfg['warmup_iter'],
                                    cfg['warmup_ratio'], cfg['power'])
        if self.iteration >= cfg['warmup_iter'] and self.time_progress() > 0:
            factor = min(factor, (1.0 - self.time_progress()) ** cfg['power'])
        return factor

    def time_progress(self):
        """Return the fraction of the post-warmup time budget used (0 when unbudgeted)."""
        budget = self.cfg['time_budget_s']
        if not budget or self.warmup_elapsed is None:
            return 0.0
        span = max(1.0, budget - self.warmup_elapsed)
        return min(1.0, (self.elapsed - self.warmup_elapsed) / span)

    def finished(self):
        """Whether the schedule has run out (iterations or time)."""
        return self.iteration >= self.cfg['max_iter'] or self.time_progress() >= 1.0

    # ---- data --------------------------------------------------------------------------

    def next_batch(self):
        """Return one (images, labels) batch, reshuffling at each epoch end."""
        bs = self.cfg['batch_size']
        if len(self.order) < bs:
            self.order = list(self.rng.permutation(len(self.train_set)))
            self.epoch += 1
        indices, self.order = self.order[:bs], self.order[bs:]
        images, labels = zip(*(self.train_set[int(i)] for i in indices))
        images = torch.stack(images).to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, torch.stack(labels).to(self.device, non_blocking=True)

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    # ---- steps -------------------------------------------------------------------------

    def train_step(self):
        """Run one iteration; return the main and total loss values."""
        self.model.train()
        lr = self.cfg['lr'] * self.lr_factor()
        for group in self.optimizer.param_groups:
            group['lr'] = lr
        images, labels = self.next_batch()
        with self._autocast():
            outputs = self.model(images)
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        main = self.criterion(outputs[0], labels)
        total = main
        for aux in outputs[1:]:
            total = total + self.cfg['aux_weight'] * self.criterion(aux, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.iteration += 1
        return float(main.detach()), float(total.detach()), lr

    def validate(self):
        """Return the metric summary of the current model on the validation split."""
        cfg = self.cfg
        # The runtime's own path, as users will run the model; logits are upsampled
        # before the argmax, as the reference evaluation does.
        segmenter = Segmenter.from_model(
            self.model, self.info, device=self.device.type,
            precision='bf16' if self.autocast_dtype == torch.bfloat16 else 'fp32',
            label_resize='logits', channels_last=bool(self.channels_last))
        try:
            cm = evaluate(segmenter_predictor(segmenter), self.val_set,
                          cfg['num_classes'])
        finally:
            self.model.train()
        return summarize(cm, self.class_names, cfg['eval_classes'])

    # ---- outputs -----------------------------------------------------------------------

    def metadata(self, summary):
        """Return the checkpoint metadata of the model being trained."""
        cfg = self.cfg
        return dict(self.info.to_metadata(), **{
            'training': {
                'data': {'dataset': cfg['dataset'], 'root': str(cfg['data_root']),
                         'train_split': cfg['train_split'], 'val_split': cfg['val_split'],
                         'train_frames': len(self.train_set),
                         'val_frames': len(self.val_set) if self.val_set else 0},
                'recipe': {k: cfg[k] for k in (
                    'init', 'crop_size', 'scales', 'jitter', 'batch_size', 'max_iter',
                    'time_budget_s', 'lr', 'momentum', 'weight_decay', 'warmup_iter',
                    'warmup_ratio', 'power', 'aux_weight', 'ohem_thresh', 'amp',
                    'channels_last', 'seed')},
                'command': self.command,
                'iterations': self.iteration,
                'epochs': self.epoch,
                'time_s': round(self.elapsed, 1),
                'device': str(self.device),
                'autocast': str(self.autocast_dtype).replace('torch.', ''),
                'val_miou': summary['miou'] if summary else None,
                'val_pixel_accuracy': summary['pixel_accuracy'] if summary else None,
                'val_classes': summary['classes'] if summary else None,
                'val_per_class_iou': ({r['name']: r['iou'] for r in summary['per_class']}
                                      if summary else None),
            },
        })

    def save_best(self, summary):
        """Write best.pth (always) and the project checkpoint at ``output`` (when set)."""
        meta = self.metadata(summary)
        weights = eval_state_dict(self.model)
        torch.save({'model': weights, 'metadata': meta}, self.out_dir / 'best.pth')
        if self.cfg['output']:
            try:
                export_best(self.out_dir / 'best.pth', self.cfg['output'], self.log)
            except Exception as exc:  # noqa: B902 - a failed export must not end training
                self.log(f'could not write {self.cfg["output"]} ({exc!r}); best.pth is kept, '
                         'convert it later with --export-best')

    def write_metrics(self, record):
        """Append one JSON line to metrics.jsonl."""
        with open(self.out_dir / 'metrics.jsonl', 'a') as f:
            f.write(json.dumps(record) + '\n')

    # ---- loop --------------------------------------------------------------------------

    def run(self, max_process_iters=None):
        """Train until the schedule ends (or a stop is requested); return the best summary."""
        from tqdm import tqdm
        cfg = self.cfg
        start_iter = self.iteration
        bar = tqdm(total=cfg['max_iter'], initial=self.iteration, dynamic_ncols=True,
                   mininterval=5.0, file=sys.stdout)
        window = []
        try:
            while not self.finished() and not self.stop_requested:
                t0 = time.perf_counter()
                main, total, lr = self.train_step()
                dt = time.perf_counter() - t0
                window.append((main, total, dt))
                bar.update(1)
                bar.set_postfix(loss=f'{total:.3f}', lr=f'{lr:.4f}',
                                best=f'{max(self.best_miou, 0):.3f}')
                if self.iteration % cfg['log_every'] == 0:
                    self._log_train(window, lr)
                    window = []
                # A QAT run selects nothing on val: it is the held-out split of its evidence.
                if (self.val_set is not None and not cfg['qat']
                        and self.iteration % cfg['eval_every'] == 0):
                    self._evaluate_and_keep()
                # Wall time including evaluation, so a time budget covers the whole run.
                self.elapsed += time.perf_counter() - t0
                if self.warmup_elapsed is None and self.iteration >= cfg['warmup_iter']:
                    self.warmup_elapsed = self.elapsed
                if (max_process_iters is not None
                        and self.iteration - start_iter >= max_process_iters):
                    break
        except KeyboardInterrupt:
            self.stop_requested = True
        finally:
            bar.close()
        if self.stop_requested:
            self.save_last()
            self.log(f'interrupted at iteration {self.iteration}; state in '
                     f'{self.out_dir / "last.pth"} (continue with --resume)')
            return self.best_summary
        if window:
            self._log_train(window, lr)
        if cfg['qat']:
            self.save_last()
            if self.finished():
                from bisenet_ros.training.qat import finish
                finish(self)
            return self.best_summary
        if self.finished() and self.val_set is not None and \
                self.iteration % cfg['eval_every'] != 0:
            self._evaluate_and_keep()
        self.save_last()
        return self.best_summary

    def _log_train(self, window, lr):
        n = len(window)
        secs = sum(w[2] for w in window)
        record = {'type': 'train', 'iteration': self.iteration, 'epoch': self.epoch,
                  'loss_main': sum(w[0] for w in window) / n,
                  'loss_total': sum(w[1] for w in window) / n, 'lr': lr,
                  'it_per_s': n / secs if secs else None,
                  'img_per_s': n * self.cfg['batch_size'] / secs if secs else None,
                  'elapsed_s': round(self.elapsed, 1), 'time': time.time()}
        self.write_metrics(record)

    def _evaluate_and_keep(self):
        t0 = time.perf_counter()
        summary = self.validate()
        secs = time.perf_counter() - t0
        improved = summary['miou'] > self.best_miou
        record = {'type': 'val', 'iteration': self.iteration, 'epoch': self.epoch,
                  'miou': summary['miou'], 'pixel_accuracy': summary['pixel_accuracy'],
                  'per_class_iou': {r['name']: r['iou'] for r in summary['per_class']},
                  'best': improved, 'eval_s': round(secs, 1),
                  'elapsed_s': round(self.elapsed, 1), 'time': time.time()}
        self.write_metrics(record)
        self.log(f'\niteration {self.iteration}: val mIoU {summary["miou"]:.4f} pixel acc '
                 f'{summary["pixel_accuracy"]:.4f} ({secs:.0f} s)'
                 + (' (best)' if improved else ''))
        if improved:
            self.best_miou = summary['miou']
            self.best_summary = summary
            self.save_best(summary)
        self.save_last()


def export_best(best_path, output, log=print):
    """Write a best.pth (eval weights + metadata) as a project checkpoint at ``output``."""
    from bisenet_ros.checkpoint import save_checkpoint
    best = torch.load(best_path, map_location='cpu', weights_only=False)
    meta = best['metadata']
    model = build_model(meta['arch'], meta['num_classes'], aux=False, variant=meta['variant'])
    model.load_state_dict(best['model'])
    save_checkpoint(output, model.eval(), meta)
    log(f'wrote {output}')


def _seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
