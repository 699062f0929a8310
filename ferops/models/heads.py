"""One output head per task on the backbone's 512 features.

The paper reuses one feature extractor for emotions, Action Units and (through
an LSTM) micro-expression clips; only the last layer differs. A `Head` is that
difference written down as data, so a task can say what it needs without
importing Keras layers, and a trained backbone can get a new head for transfer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import keras
from keras import layers

INTENSITY_MAX = 5.0  # FACS grades A..E as 1..5, absent 0


@dataclass(frozen=True)
class Head:
    n_outputs: int
    # softmax: one emotion per image; sigmoid: independent AU presences; intensity: 0..5 per AU
    activation: Literal["softmax", "sigmoid", "intensity"]
    # L1/L2 on the head's outputs: the paper's sparsity prior for AUs (few are active in any one face)
    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self) -> None:
        if self.n_outputs < 1:
            raise ValueError(f"a head needs at least one output, got {self.n_outputs}")
        if self.activation not in ("softmax", "sigmoid", "intensity"):
            raise ValueError(f"head activation {self.activation!r}: expected softmax, sigmoid or intensity")
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"head l1/l2 must be >= 0, got {self.l1}/{self.l2}")


OUTPUT = "output"  # the output layer's name, whatever the head


def attach_head(features, head: Head):
    """The output layer, always named "output" (the intensity head adds a x5 rescale after it)."""
    sparsity = keras.regularizers.L1L2(l1=head.l1, l2=head.l2) if head.l1 or head.l2 else None
    activation = "sigmoid" if head.activation == "intensity" else head.activation
    # float32 whatever the policy: softmax/sigmoid, the activity penalty and the loss stay exact under bf16/float16
    x = layers.Dense(head.n_outputs, activation=activation, activity_regularizer=sparsity, name=OUTPUT,
                     dtype="float32")(features)
    if head.activation == "intensity":
        # 5 * sigmoid keeps every prediction on the FACS scale; a linear head would need clipping wherever it is served
        x = layers.Rescaling(INTENSITY_MAX, name="intensity", dtype="float32")(x)
    return x


def float32_outputs(model: keras.Model) -> keras.Model:
    """`model` with every output cast to float32 where a mixed policy made it float16/bfloat16.

    Softmax, sigmoid and the losses on them then run in float32, as the Keras
    mixed-precision guide prescribes; a model whose outputs are float32 already
    is returned as it is.
    """
    low = [keras.backend.standardize_dtype(out.dtype) != "float32" for out in model.outputs]
    if not any(low):
        return model
    names = [f"output_float32{'' if i == 0 else f'_{i}'}" for i in range(len(low))]
    outputs = [keras.layers.Activation("linear", dtype="float32", name=name)(out) if cast else out
               for name, out, cast in zip(names, model.outputs, low)]
    return keras.Model(model.inputs, outputs[0] if len(outputs) == 1 else outputs, name=model.name)
