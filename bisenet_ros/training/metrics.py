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
Segmentation metrics from a confusion matrix (pure numpy).

Rows of the confusion matrix are ground truth, columns predictions. IoU of a
class is ``TP / (TP + FP + FN)``; a class that is neither labelled nor
predicted has no IoU (NaN) and is left out of the mean rather than counted as
0 or 1.
"""

from bisenet_ros.cityscapes import IGNORE_ID
import numpy as np


def confusion_matrix(pred, gt, num_classes, ignore=IGNORE_ID):
    """
    Return the (num_classes, num_classes) int64 confusion matrix of two label maps.

    Pixels whose ground truth is ``ignore`` (or outside ``[0, num_classes)``)
    are skipped; a prediction outside the range raises, since it means the
    model and the class table disagree.
    """
    pred = np.asarray(pred).ravel().astype(np.int64)
    gt = np.asarray(gt).ravel().astype(np.int64)
    if pred.shape != gt.shape:
        raise ValueError(f'prediction and ground truth differ in size: {pred.size} vs {gt.size}')
    keep = (gt != ignore) & (gt >= 0) & (gt < num_classes)
    pred, gt = pred[keep], gt[keep]
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f'prediction has class ids outside [0, {num_classes})')
    counts = np.bincount(gt * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_from_confusion(cm):
    """Return per-class IoU (float64, NaN where a class has an empty union)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(cm, classes=None):
    """Return the mean IoU over ``classes`` (all by default), ignoring NaN entries."""
    iou = iou_from_confusion(cm)
    if classes is not None:
        iou = iou[list(classes)]
    iou = iou[~np.isnan(iou)]
    return float(iou.mean()) if iou.size else float('nan')


def pixel_accuracy(cm, classes=None):
    """Return the fraction of correctly labelled pixels (over GT rows in ``classes``)."""
    cm = np.asarray(cm, dtype=np.float64)
    if classes is not None:
        rows = list(classes)
        correct, total = np.diag(cm)[rows].sum(), cm[rows].sum()
    else:
        correct, total = np.trace(cm), cm.sum()
    return float(correct / total) if total else float('nan')


def summarize(cm, class_names=None, classes=None):
    """Return a JSON-friendly dict: mIoU, pixel accuracy and per-class IoU."""
    iou = iou_from_confusion(cm)
    n = len(iou)
    selected = list(range(n)) if classes is None else list(classes)
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    per_class = []
    for c in selected:
        per_class.append({'id': int(c), 'name': names[c],
                          'iou': None if np.isnan(iou[c]) else float(iou[c]),
                          'pixels': int(np.asarray(cm)[c].sum())})
    return {'miou': mean_iou(cm, selected), 'pixel_accuracy': pixel_accuracy(cm, selected),
            'classes': selected, 'per_class': per_class}


def format_table(summary):
    """Return a plain-text per-class IoU table for ``summarize`` output."""
    width = max([len(r['name']) for r in summary['per_class']] + [5])
    lines = [f'{"id":>3}  {"class":<{width}}  {"IoU":>6}  {"pixels":>12}']
    for r in summary['per_class']:
        iou = '   n/a' if r['iou'] is None else f'{100 * r["iou"]:6.2f}'
        lines.append(f'{r["id"]:>3}  {r["name"]:<{width}}  {iou}  {r["pixels"]:>12}')
    lines.append(f'mIoU {100 * summary["miou"]:.2f}  pixel accuracy '
                 f'{100 * summary["pixel_accuracy"]:.2f}  ({len(summary["classes"])} classes)')
    return '\n'.join(lines)
