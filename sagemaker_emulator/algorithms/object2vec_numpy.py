"""Object2Vec's training step in numpy for one-token sides (Lab 2's user → movie pairs), without Gluon.

Issue 24: a Gluon step costs about 4.3 CPU-ms of fixed overhead (autograd records, engine pushes, the trainer's
per-parameter updates) and runs its matrix products on one core. With ``max_seq_len`` 1 on both sides every
encoding is one embedding row, so the whole step is three matrix products per MLP layer (numpy's BLAS, about 80% of
a step's CPU at Lab 2's settings) around a few compiled loops (:mod:`object2vec_compiled`: lookups, comparator,
row gradients, Adam), all without the GIL, so Hogwild threads run in parallel. Same network, loss and optimizer as
the Gluon path: MXNet's Adam
(bias-corrected rate, ``rescale_grad`` 1 / batch, weight decay added to the gradient), lazy on the embedding
tables as MXNet's row_sparse Adam is (only the batch's rows, their gradients summed first), float32 throughout.
Parameters start from the Gluon network's initial values and are written back into it for evaluation and saving,
so the artifact is the same ``network.params``.
"""

from __future__ import annotations

import math
from types import ModuleType

import mxnet as mx
import numpy as np

from sagemaker_emulator.algorithms.object2vec_network import COMPARATORS, Object2VecNetwork

BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8


class _Adam:
    """One parameter's Adam state, updated as MXNet's ``adam_update`` does (its ``t`` counts this parameter's steps)."""

    def __init__(self, weight: np.ndarray, rate: float, decay: float, kernels: ModuleType):
        self.weight, self.rate, self.steps, self.kernels = np.ascontiguousarray(weight), rate, 0, kernels
        self.mean, self.variance = np.zeros_like(self.weight), np.zeros_like(self.weight)
        self.constants = (np.float32(decay), np.float32(EPSILON))

    def _step_size(self) -> np.float32:
        self.steps += 1
        return np.float32(self.rate * math.sqrt(1 - BETA2**self.steps) / (1 - BETA1**self.steps))

    def update(self, gradient: np.ndarray, rescale: np.float32) -> None:
        """A dense step: every element."""
        views = (self.weight.ravel(), self.mean.ravel(), self.variance.ravel(), np.ascontiguousarray(gradient).ravel())
        self.kernels.dense_adam(*views, self._step_size(), rescale, *self.constants)

    def update_rows(self, rows: np.ndarray, gradients: np.ndarray, rescale: np.float32, slots: np.ndarray) -> None:
        """A lazy step on the rows a batch looked up; ``gradients`` has one row per lookup, summed per row first.

        ``slots``: the calling thread's scratch, one -1 per table row (see ``object2vec_compiled.lazy_adam``).
        """
        touched, summed = np.empty_like(rows), np.empty_like(gradients)
        tables = (self.weight, self.mean, self.variance)
        self.kernels.lazy_adam(
            *tables, rows, gradients, slots, touched, summed, self._step_size(), rescale, *self.constants
        )


class LookupTrainer:
    """The network's parameters as float32 arrays, trained one mini-batch at a time.

    Args:
        network: an initialised :class:`Object2VecNetwork` (its values are the starting point).
        hp: the job's resolved hyperparameters (``supports(hp)`` must hold).
    """

    def __init__(self, network: Object2VecNetwork, hp: dict):
        # numba costs about a second of CPU to import: only jobs that train here pay it (not Gluon jobs, not endpoints)
        from sagemaker_emulator.algorithms import object2vec_compiled

        self.kernels = object2vec_compiled
        self.network = network
        self.activation = hp["mlp_activation"]
        self.softmax = hp["output_layer"] == "softmax"
        self.blocks = {
            "embedding0": network.enc0.embedding,
            "embedding1": network.enc1.embedding,
            **{f"layer{depth}": layer for depth, layer in enumerate(network.mlp)},
            "output": network.output,
        }
        self.layers = len(network.mlp)
        self.codes = np.array([COMPARATORS.index(name) for name in network.comparators], np.int64)
        self.joined_width = network.enc_dim * sum(2 if name == "concat" else 1 for name in network.comparators)
        self.parameters: dict[str, _Adam] = {}
        for name, block in self.blocks.items():
            for kind in ("weight", "bias") if name.startswith(("layer", "output")) else ("weight",):
                value = getattr(block, kind).data().asnumpy().astype(np.float32)
                self.parameters[f"{name}.{kind}"] = _Adam(value, hp["learning_rate"], hp["weight_decay"], self.kernels)

    @staticmethod
    def fits(hp: dict) -> bool:
        """Whether a job's network and optimizer are those this step implements (else the Gluon step trains)."""
        return (
            all(hp[f"enc{side}_network"] == "pooled_embedding" and hp[f"enc{side}_max_seq_len"] == 1 for side in (0, 1))
            and hp["optimizer"] == "adam"
            and hp["token_embedding_storage_type"] == "row_sparse"
            and not hp["tied_token_embedding_weight"]
            and not any(hp[f"enc{side}_pretrained_embedding_file"] for side in (0, 1))
        )

    def _value(self, name: str) -> np.ndarray:
        return self.parameters[name].weight

    def slots(self) -> tuple[np.ndarray, np.ndarray]:
        """One thread's scratch for the lazy updates of the two embedding tables (all -1, one per row)."""
        return tuple(np.full(len(self._value(f"embedding{side}.weight")), -1, np.int64) for side in (0, 1))

    def step(
        self,
        users: np.ndarray,
        items: np.ndarray,
        labels: np.ndarray,
        masks: list[np.ndarray],
        slots: tuple[np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """One forward and backward pass and one update on a batch; returns each pair's loss and outputs.

        Args:
            users, items: the batch's token ids (int64), one per record and side.
            labels: values (regression) or class ids (softmax), float32.
            masks: the dropout masks of ``network.mask_widths()`` (kept / (1 - rate), or 0), or none.
            slots: this thread's :meth:`slots`.
        """
        rows = len(labels)
        tables = (self._value("embedding0.weight"), self._value("embedding1.weight"))
        width = tables[0].shape[1]
        side_masks = masks[:2] if masks else [np.empty((0, width), np.float32)] * 2
        e0, e1 = np.empty((rows, width), np.float32), np.empty((rows, width), np.float32)
        joined = np.empty((rows, self.joined_width), np.float32)
        self.kernels.compare(*tables, users, items, *side_masks, self.codes, e0, e1, joined)
        inputs = [joined]
        activated = []  # each layer's activations before dropout, for the activation's derivative
        for depth in range(self.layers):
            hidden = inputs[-1] @ self._value(f"layer{depth}.weight").T
            hidden += self._value(f"layer{depth}.bias")
            if self.activation == "relu":
                np.maximum(hidden, 0, out=hidden)
            elif self.activation == "tanh":
                np.tanh(hidden, out=hidden)
            activated.append(hidden)
            inputs.append(hidden * masks[2 + depth] if masks else hidden)
        outputs = inputs[-1] @ self._value("output.weight").T + self._value("output.bias")

        if self.softmax:
            shifted = outputs - outputs.max(axis=1, keepdims=True)
            probabilities = np.exp(shifted)
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            classes = labels.astype(np.int64)
            losses = -np.log(probabilities[np.arange(rows), classes])
            gradient = probabilities
            gradient[np.arange(rows), classes] -= 1
        else:
            error = outputs[:, 0] - labels
            losses = error * error
            gradient = (2 * error)[:, None]

        rescale = np.float32(1.0 / rows)
        for depth in range(self.layers, -1, -1):
            name = "output" if depth == self.layers else f"layer{depth}"
            weight = self._value(f"{name}.weight")
            below = inputs[depth]
            weight_gradient, bias_gradient = gradient.T @ below, gradient.sum(axis=0)
            gradient = gradient @ weight
            if depth:
                if masks:
                    gradient *= masks[1 + depth]
                if self.activation == "relu":
                    gradient *= activated[depth - 1] > 0
                elif self.activation == "tanh":
                    gradient *= 1 - activated[depth - 1] ** 2
            self.parameters[f"{name}.weight"].update(weight_gradient, rescale)
            self.parameters[f"{name}.bias"].update(bias_gradient, rescale)

        grad0, grad1 = np.empty_like(e0), np.empty_like(e1)
        self.kernels.compare_backward(gradient, e0, e1, *side_masks, self.codes, grad0, grad1)
        self.parameters["embedding0.weight"].update_rows(users, grad0, rescale, slots[0])
        self.parameters["embedding1.weight"].update_rows(items, grad1, rescale, slots[1])
        return losses, outputs

    def write_back(self) -> None:
        """Copy the trained values into the Gluon network (for evaluation and ``save_model``)."""
        for key, state in self.parameters.items():
            name, kind = key.split(".")
            getattr(self.blocks[name], kind).set_data(mx.nd.array(state.weight))
