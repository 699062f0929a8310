"""One fold of the micro experiment: the paper's CNN+LSTM and the LBP-TOP + linear SVM baseline.

CNN+LSTM (Breuer & Kimmel §4), on the training subjects only:
  (a) the emotion CNN is fine-tuned on single frames of the clips: onset, apex
      and offset carry the clip's label, the first and last frames are neutral.
      The micro classes have no neutral, so the frame head gets one extra
      class "neutral" (dropped with the head afterwards: only the backbone is
      kept). A first/last frame that *is* the onset/offset frame (SynthFACS,
      and CASME II's selected clips, start at onset) keeps the emotion label;
  (b) that CNN up to its dense features runs per frame under one LSTM;
  (c) trained with the backbone frozen, then optionally unfrozen.
The CNN starts from an emotion CNN trained once on the pipeline's emotion
dataset (`micro.cnn.pretrain_epochs`; the paper starts from its CK+ model),
whose people are not the micro subjects; or from scratch.

Every piece trains through ferops.train.fit (seeding, precision policy, Adam with
the paper's decay, the augmented stream), on models compiled once per stage and
put back to their starting variables for every fold (Resettable, fit's `reuse`).
With the backbone frozen, the LSTM trains on per-frame features computed once
per fold, which is the same training at a fraction of the cost.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.svm import LinearSVC

from ferops.config import Params, replace
from ferops.data.dataset import Dataset
from ferops.errors import FeropsError
from ferops.experiments.micro.leakage import SubjectScaler
from ferops.models import Head, build_model, feature_extractor, replace_head
from ferops.models.sequence import build_sequence_model, load_backbone, lstm_head, set_backbone_trainable
from ferops.train.devices import dtype_policy
from ferops.train.fit import fit, predict_proba
from ferops.train.precision import resolve as resolve_precision
from ferops.train.tasks import emotion_task

NEUTRAL = "neutral"
_EMOTION_ROLES = (1, 2, 3)  # key clips: first, onset, apex, offset, last


def frame_labels(clips: Dataset, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(clip index, time index, label) of every distinct frame the CNN is fine-tuned on, and the frame classes.

    key: onset/apex/offset -> the clip's label, first/last -> neutral unless they are the onset/offset frame.
    span: every distinct frame -> the clip's label.
    """
    numbers = clips.extras["clip_frames"]
    classes = tuple(clips.classes)
    rows = []
    for i, (frames, label) in enumerate(zip(numbers, clips.labels)):
        seen = set()
        order = [1, 2, 3, 0, 4] if mode == "key" else range(len(frames))  # emotion roles claim a frame first
        for t in order:
            if frames[t] in seen:
                continue
            seen.add(frames[t])
            neutral = mode == "key" and t not in _EMOTION_ROLES
            rows.append((i, t, -1 if neutral else int(label)))
    clip_idx, time_idx, labels = (np.array(c, np.int64) for c in zip(*rows))
    if (labels < 0).any():
        classes = classes + (NEUTRAL,)
        labels = np.where(labels < 0, len(classes) - 1, labels)
    return clip_idx, time_idx, labels, classes


def balanced_weights(labels: np.ndarray) -> dict[int, float]:
    """n / (K * n_k) per class present (sklearn's "balanced"): every class weighs alike in the loss, as in UF1/UAR."""
    classes, counts = np.unique(labels, return_counts=True)
    return {int(k): float(len(labels) / (len(classes) * c)) for k, c in zip(classes, counts)}


def _cnn_params(params: Params, epochs: int) -> Params:
    return replace(params, **{"train.epochs": max(epochs, 1), "model.width": params.micro.cnn.width})


def pretrain_cnn(params: Params, emotion: Dataset | None, input_shape: tuple[int, ...]) -> list | None:
    """Weights of an emotion CNN trained once on `emotion` (none of the micro subjects), or None (from scratch)."""
    epochs = params.micro.cnn.pretrain_epochs
    if not epochs or emotion is None:
        return None
    if tuple(emotion.images.shape[1:]) != tuple(input_shape):
        raise FeropsError(f"micro.cnn.pretrain_epochs: the emotion dataset {emotion.name} holds "
                          f"{emotion.images.shape[1:]} images but the micro clips are {input_shape}; match "
                          f"micro.clip.size/channels to preprocess.image_size/channels, or set pretrain_epochs: 0")
    task = emotion_task(emotion.classes)
    y = task.targets(emotion)
    p = _cnn_params(params, epochs)
    # A builder, not a built model: fit builds it after seeding, so the weights do not depend on what ran before.
    model = fit(p, task, emotion.images, y, model=lambda: build_model(p.model, task.head, input_shape, name="micro_cnn"),
                seed_offset=10_000).model
    return [len(emotion.classes), model.get_weights()]


def frame_cnn(params: Params, pretrained: list | None, n_classes: int, input_shape) -> keras.Model:
    """A fresh paper CNN (micro width) for `n_classes` frame classes, from the pretrained backbone if any."""
    model_params = _cnn_params(params, 1).model
    if pretrained is None:
        return build_model(model_params, Head(n_classes, "softmax"), input_shape, name="micro_cnn")
    n_pre, weights = pretrained
    model = build_model(model_params, Head(n_pre, "softmax"), input_shape, name="micro_cnn")
    model.set_weights(weights)
    return replace_head(model, Head(n_classes, "softmax"))


def snapshot(model: keras.Model) -> list:
    """Every variable of `model` with its value now: weights and the dropout layers' seed-generator states.

    get_weights() leaves the seed states out; a reused model would then draw other dropout masks
    than a fresh one, and a fold's result would depend on which folds its process trained before.
    """
    return [(variable, np.array(variable.numpy())) for variable in model.variables]


def restore(saved: list) -> None:
    for variable, value in saved:
        variable.assign(value)


class Resettable:
    """A model trained through `fit` once per fold, put back to its starting variables before each.

    LOSO trains the same architecture once per subject (27 times on CASME II's 26). fit's
    `reuse` keeps the model compiled (no retracing: 2-4 s a fold on 2 CPU cores) and zeroes
    Adam's state; restoring every variable (weights and the dropout layers' seed states)
    first gives every fold the start a new model would have.
    """

    def __init__(self, model: keras.Model, params: Params, task):
        self.model, self.params, self.task = model, params, task
        self.start = snapshot(model)

    def reset(self) -> None:
        restore(self.start)

    def train(self, x, y: np.ndarray, epochs: int, seed: int, augment: bool, balance: bool = False) -> keras.Model:
        self.reset()
        fit(replace(self.params, **{"train.epochs": epochs}), self.task, x, y, model=self.model, reuse=True,
            seed_offset=seed - self.params.seed, augment=augment, verbose=0,
            class_weight=balanced_weights(y) if balance else None)
        return self.model


class CnnLstm:
    """Steps (a)-(c) for any set of training clips, with the models built and compiled once (see Resettable)."""

    def __init__(self, params: Params, clips: Dataset, pretrained: list | None):
        mp = params.micro
        self.params, self.clips = params, clips
        self.clip_idx, self.time_idx, self.frame_y, frame_classes = frame_labels(clips, mp.clip.frames)
        with dtype_policy(resolve_precision(params.train.precision)):  # as fit builds its models
            cnn = frame_cnn(params, pretrained, len(frame_classes), tuple(clips.images.shape[2:]))
            self.model = build_sequence_model(cnn, len(clips.classes), clips.images.shape[1], mp.lstm.units,
                                              mp.lstm.dropout, mp.lstm.recurrent_dropout, inputs=mp.lstm.inputs)
        self.cnn = Resettable(cnn, _cnn_params(params, mp.cnn.epochs), emotion_task(frame_classes))
        self.features = feature_extractor(cnn)
        self.head = Resettable(lstm_head(self.model), params, emotion_task(clips.classes))
        self.frame_classes = frame_classes
        self.model_start = snapshot(self.model)  # the frozen backbone's dropout seeds, used by the fine-tuning

    def train(self, train: np.ndarray, seed: int) -> keras.Model:
        """The CNN+LSTM trained on the clips `train` only (the returned model is reused by the next call)."""
        mp, images = self.params.micro, self.clips.images
        subjects = self.clips.subjects
        self.fitted_on = {}  # whose clips each trained piece saw, for the leakage guard
        restore(self.model_start)
        if mp.cnn.epochs:
            rows = np.isin(self.clip_idx, train)
            self.fitted_on["CNN fine-tuning frames"] = frozenset(subjects[self.clip_idx[rows]])
            self.cnn.train(images[self.clip_idx[rows], self.time_idx[rows]], self.frame_y[rows], mp.cnn.epochs,
                           seed, augment=True, balance=mp.balance)
        else:
            self.cnn.reset()
        load_backbone(self.model, self.cnn.model)
        self.head.train(self.clip_features(train), self.clips.labels[train], mp.lstm.epochs, seed, augment=False,
                        balance=mp.balance)
        self.fitted_on["LSTM clips"] = frozenset(subjects[train])
        if mp.lstm.finetune_epochs:  # the whole model on clips: ferops' fit, traced anew (paper-scale runs only)
            set_backbone_trainable(self.model, True)
            fit(replace(self.params, **{"train.epochs": mp.lstm.finetune_epochs}), emotion_task(self.clips.classes),
                images[train], self.clips.labels[train], model=self.model, seed_offset=seed - self.params.seed,
                verbose=0)  # compiled anew: the backbone's trainable flag changed since the last compile
            set_backbone_trainable(self.model, False)
        return self.model

    def clip_features(self, index: np.ndarray) -> np.ndarray:
        """N x T x D dense features of the clips `index` under the current CNN (inference mode)."""
        index = np.asarray(index)
        # A frame picked twice (first = onset when a clip starts at its onset) is run once.
        numbers = self.clips.extras["clip_frames"][index]
        keys = index[:, None] * (numbers.max() + 1) + numbers
        unique, first, back = np.unique(keys, return_index=True, return_inverse=True)
        rows, steps = np.divmod(first, numbers.shape[1])
        frames = self.clips.images[index[rows], steps].astype(np.float32)
        # Direct calls in large chunks: model.predict's per-call setup costs more than this small CNN's work.
        chunks = [np.asarray(self.features(frames[i:i + 1024], training=False)) for i in range(0, len(frames), 1024)]
        return np.concatenate(chunks)[back.reshape(numbers.shape)]

    def predict(self, index: np.ndarray) -> np.ndarray:
        """Class probabilities of the clips `index` (the frozen-backbone path: features, then the head)."""
        if self.params.micro.lstm.finetune_epochs:
            return predict_proba(self.model, self.clips.images[index], batch_size=64)
        return np.asarray(self.head.model(self.clip_features(index), training=False))  # direct: no predict() setup


def lbp_svm(features: np.ndarray, labels: np.ndarray, subjects: np.ndarray, train: np.ndarray, test: np.ndarray,
            c: float, seed: int, n_classes: int, balance: bool) -> tuple[np.ndarray, SubjectScaler]:
    """Decision values (N_test x n_classes) of a LinearSVC on standardised LBP-TOP features.

    The scaler sees the training subjects' rows only (and records them for the leakage guard).
    A class absent from the training subjects gets -inf: it can never be predicted.
    """
    scaler = SubjectScaler().fit(features[train], subjects=subjects[train])
    svm = LinearSVC(C=c, random_state=seed, max_iter=5000, class_weight="balanced" if balance else None)
    svm.fit(scaler.transform(features[train]), labels[train])
    values = svm.decision_function(scaler.transform(features[test]))
    if values.ndim == 1:  # two classes: sklearn returns one column, positive = classes_[1]
        values = np.stack([-values, values], axis=1)
    out = np.full((len(test), n_classes), -np.inf)
    out[:, svm.classes_] = values
    return out, scaler
