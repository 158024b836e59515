"""Object2Vec's network in Gluon: two encoders, a comparator, an MLP and the output layer.

Every input side arrives as ``tokens`` (batch × time, right-padded with id 0) and ``lengths`` (batch).
Id 0 stays an ordinary token: padding is never looked up as data, because every encoder masks the
positions at or past a record's length (``SequenceMask`` / ``SequenceLast`` / ``SequenceReverse``).

The public contract leaves the encoder internals open, so these are our choices:

* ``pooled_embedding``: the mean of the record's token embeddings (width forced to enc_dim), no projection.
  With ``max_seq_len`` 1 every record is one token, and the mean is that token's embedding over its length 1:
  the general masked average would spend more than the lookup itself.
* ``hcnn``: ``layers`` stacked same-length 1-D convolutions of ``cnn_filter_width`` (ReLU, residual from the
  second layer on, token_embedding_dim channels), max-pooled over the valid positions, projected to enc_dim.
* ``bilstm``: ``layers`` bidirectional LSTM layers (token_embedding_dim units per direction; the backward pass
  reverses only each record's valid part), the last forward and backward states projected to enc_dim.

Dropout (on both encodings and after every MLP layer) multiplies by masks that the training loop draws and passes
in (:class:`TrainingGraph`): MXNet's Dropout draws each element with its own generator call, 5 ms of CPU per batch
at Lab 2's settings, as much as the MLP's matrix products; masks drawn with numpy cost a tenth of that.
"""

from __future__ import annotations

import json
from pathlib import Path

import mxnet as mx
from mxnet import gluon
from mxnet.contrib.amp.amp import bfloat16 as BFLOAT16
from mxnet.gluon import HybridBlock, nn, rnn

COMPARATORS = ("hadamard", "concat", "abs_diff")
"""Operators a comparator_list may name, each a function of the two encodings (widths d, 2d, d)."""
ARTIFACT = "model_algo-1"
HYPERPARAMETERS_FILE = "hyperparameters.json"
PARAMETERS_FILE = "network.params"


def _valid(F, tokens, lengths):
    """1 where a position holds one of the record's tokens, 0 on padding (batch × time).

    Built from the inputs alone, so nothing derived from it costs anything in the backward pass.
    """
    return F.SequenceMask(F.ones_like(tokens), sequence_length=lengths, use_sequence_length=True, axis=1)


class PooledEmbeddingEncoder(HybridBlock):
    """Average of the valid tokens' embeddings; ``single_token`` when the side's max_seq_len is 1."""

    def __init__(self, embedding: nn.Embedding, width: int, single_token: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding
        self.width = width
        self.single_token = single_token

    def hybrid_forward(self, F, tokens, lengths):
        if self.single_token:  # batch × 1 tokens: the one embedding over its length 1
            # Divided by a full-size copy of the lengths: a broadcast divide's backward pass costs 15 times as much.
            lengths = F.repeat(F.expand_dims(lengths, axis=1), repeats=self.width, axis=1)
            return F.reshape(self.embedding(tokens), shape=(0, -1)) / lengths
        # A weighted sum as one batched product: 1/length on valid positions, 0 on padding. Much faster on CPU
        # than masking then sum and divide, whose backward passes dominate a step with one-token inputs.
        weights = F.broadcast_div(_valid(F, tokens, lengths), F.expand_dims(lengths, axis=1))
        return F.squeeze(F.batch_dot(F.expand_dims(weights, axis=1), self.embedding(tokens)), axis=1)


class HcnnEncoder(HybridBlock):
    """Stacked 1-D convolutions over the token embeddings, max-pooled over time, projected to enc_dim."""

    def __init__(self, embedding: nn.Embedding, channels: int, layers: int, filter_width: int, enc_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding
        self.channels = channels
        self.even_width = filter_width % 2 == 0
        with self.name_scope():
            self.convolutions = nn.HybridSequential()
            for _ in range(layers):
                self.convolutions.add(
                    nn.Conv1D(
                        channels, filter_width, padding=filter_width // 2, activation="relu", in_channels=channels
                    )
                )
            self.projection = nn.Dense(enc_dim, in_units=channels)

    def hybrid_forward(self, F, tokens, lengths):
        # Channels-first (batch × channels × time) throughout, as MXNet's convolution and global pooling want it.
        # A full-size mask, not a broadcast multiply, whose backward pass would reduce over it at every layer.
        mask = F.repeat(F.expand_dims(_valid(F, tokens, lengths), axis=1), repeats=self.channels, axis=1)
        hidden = F.transpose(self.embedding(tokens), axes=(0, 2, 1)) * mask
        for depth, convolution in enumerate(self.convolutions):
            output = convolution(hidden)
            if self.even_width:  # one position too many: cut back to the input's length
                output = F.slice_like(output, hidden, axes=(2,))
            output = output * mask
            hidden = output + hidden if depth > 0 else output
        # After ReLU every value is >= 0, so the zeroed padding never wins the max.
        pooled = F.Pooling(hidden, kernel=(1,), pool_type="max", global_pool=True)
        return self.projection(F.flatten(pooled))


class BilstmEncoder(HybridBlock):
    """Bidirectional LSTM layers; the final forward and backward states are projected to enc_dim."""

    def __init__(self, embedding: nn.Embedding, hidden: int, layers: int, enc_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding
        with self.name_scope():
            self.forward_layers = nn.HybridSequential()
            self.backward_layers = nn.HybridSequential()
            for depth in range(layers):
                width = hidden if depth == 0 else 2 * hidden
                self.forward_layers.add(rnn.LSTM(hidden, layout="TNC", input_size=width))
                self.backward_layers.add(rnn.LSTM(hidden, layout="TNC", input_size=width))
            self.projection = nn.Dense(enc_dim, in_units=2 * hidden)

    def hybrid_forward(self, F, tokens, lengths):
        def reverse(sequence):
            return F.SequenceReverse(sequence, sequence_length=lengths, use_sequence_length=True)

        def last(sequence):
            return F.SequenceLast(sequence, sequence_length=lengths, use_sequence_length=True)

        hidden = F.transpose(self.embedding(tokens), axes=(1, 0, 2))  # time × batch × channels
        for forward, backward in zip(self.forward_layers, self.backward_layers):
            ahead, behind = forward(hidden), backward(reverse(hidden))  # behind runs from each record's end
            hidden = F.concat(ahead, reverse(behind), dim=2)  # the next layer's input
        return self.projection(F.concat(last(ahead), last(behind), dim=1))


def _encoder(spec: dict, embedding: nn.Embedding, enc_dim: int, prefix: str) -> HybridBlock:
    network = spec["network"]
    if network == "pooled_embedding":
        return PooledEmbeddingEncoder(embedding, enc_dim, spec["max_seq_len"] == 1, prefix=prefix)
    if network == "hcnn":
        return HcnnEncoder(
            embedding, spec["token_embedding_dim"], spec["layers"], spec["cnn_filter_width"], enc_dim, prefix=prefix
        )
    return BilstmEncoder(embedding, spec["token_embedding_dim"], spec["layers"], enc_dim, prefix=prefix)


class Object2VecNetwork(HybridBlock):
    """in0, in1 → enc0, enc1 → comparator → MLP → output (num_classes logits, or one regression value).

    Args:
        config: the settings made by :func:`network_config`.
    """

    def __init__(self, config: dict, **kwargs):
        super().__init__(**kwargs)
        self.comparators = tuple(config["comparators"])
        self.dropout = config["dropout"]
        self.enc_dim = enc_dim = config["enc_dim"]
        self.mlp_dim = config["mlp_dim"]
        with self.name_scope():
            embeddings = [
                nn.Embedding(
                    spec["vocab_size"],
                    spec["token_embedding_dim"],
                    sparse_grad=config["sparse_grad"],
                    weight_initializer=mx.init.Uniform(0.01),
                    prefix=f"embedding{side}_",
                )
                for side, spec in enumerate(config["encoders"])
            ]
            if config["tied"]:
                embeddings[1] = embeddings[0]
            self.enc0 = _encoder(config["encoders"][0], embeddings[0], enc_dim, "enc0_")
            self.enc1 = _encoder(config["encoders"][1], embeddings[1], enc_dim, "enc1_")
            self.mlp = nn.HybridSequential(prefix="mlp_")
            activation = None if config["mlp_activation"] == "linear" else config["mlp_activation"]
            width = enc_dim * sum(2 if name == "concat" else 1 for name in self.comparators)
            for _ in range(config["mlp_layers"]):
                self.mlp.add(nn.Dense(config["mlp_dim"], activation=activation, in_units=width))
                width = config["mlp_dim"]
            self.output = nn.Dense(config["outputs"], in_units=width, prefix="output_")

    def encoder(self, side: int) -> HybridBlock:
        """One side's encoder (what the embeddings endpoint runs)."""
        return self.enc0 if side == 0 else self.enc1

    def mask_widths(self) -> list[int]:
        """The width of each dropout mask a training step takes: enc0, enc1, then every MLP layer; none without."""
        if self.dropout == 0:
            return []
        return [self.enc_dim, self.enc_dim] + [self.mlp_dim] * len(self.mlp)

    def scores(self, F, tokens0, lengths0, tokens1, lengths1, masks=(), bfloat16=False):
        """The outputs, with dropout as multiplication by ``masks`` (one per :meth:`mask_widths`) when given.

        ``bfloat16``: the MLP's matrix products in bfloat16 (see :class:`TrainingGraph`).
        """
        e0 = self.enc0(tokens0, lengths0)
        e1 = self.enc1(tokens1, lengths1)
        if masks:
            e0, e1 = e0 * masks[0], e1 * masks[1]
        parts = {
            "hadamard": lambda: [e0 * e1],
            "concat": lambda: [e0, e1],
            "abs_diff": lambda: [F.abs(e0 - e1)],
        }
        hidden = F.concat(*[part for name in self.comparators for part in parts[name]()], dim=1)
        for depth, layer in enumerate(self.mlp):
            hidden = _dense_bfloat16(F, layer, hidden) if bfloat16 else layer(hidden)
            if masks:
                hidden = hidden * masks[2 + depth]
        return self.output(hidden)

    def hybrid_forward(self, F, tokens0, lengths0, tokens1, lengths1):
        return self.scores(F, tokens0, lengths0, tokens1, lengths1)


def _dense_bfloat16(F, layer: nn.Dense, hidden):
    """``layer(hidden)`` with its matrix product in bfloat16 (oneDNN accumulates in float32); weights stay float32."""
    weight, bias = (p.var() if F is mx.sym else p.data() for p in (layer.weight, layer.bias))
    low = [F.amp_cast(x, dtype=BFLOAT16) for x in (hidden, weight, bias)]
    out = F.amp_cast(F.FullyConnected(*low, num_hidden=layer._units), dtype="float32")
    return out if layer.act is None else layer.act(out)


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), twice float32's rate; else emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class TrainingGraph(HybridBlock):
    """One training step's forward pass: the network's outputs with dropout masks applied, and each pair's loss.

    Shares the network's parameters. Returns (loss per pair, outputs); the loss is the network's own (softmax
    cross-entropy, or squared error, ``L2Loss(weight=2)``), so the graph holds the whole step. With ``bfloat16``
    the MLP's matrix products, most of a step's arithmetic at Lab 2's settings, run in bfloat16 as mixed-precision
    training does: parameters, optimizer state, encoders and loss stay float32; evaluation and serving use float32.
    """

    def __init__(self, network: Object2VecNetwork, softmax: bool, bfloat16: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.bfloat16 = bfloat16
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss() if softmax else gluon.loss.L2Loss(weight=2.0)

    def hybrid_forward(self, F, tokens0, lengths0, tokens1, lengths1, labels, *masks):
        outputs = self.network.scores(F, tokens0, lengths0, tokens1, lengths1, masks, self.bfloat16)
        return self.loss(outputs, labels), outputs


def network_config(hp: dict) -> dict:
    """The network's settings, from the resolved hyperparameters (``object2vec.resolve_hyperparameters``)."""
    keys = ("network", "max_seq_len", "vocab_size", "token_embedding_dim", "layers", "cnn_filter_width")
    return {
        "encoders": [{key: hp[f"enc{side}_{key}"] for key in keys} for side in (0, 1)],
        "enc_dim": hp["enc_dim"],
        "comparators": [name.strip() for name in hp["comparator_list"].split(",")],
        "mlp_dim": hp["mlp_dim"],
        "mlp_layers": hp["mlp_layers"],
        "mlp_activation": hp["mlp_activation"],
        "outputs": hp["num_classes"] if hp["output_layer"] == "softmax" else 1,
        "dropout": hp["dropout"],
        "tied": hp["tied_token_embedding_weight"],
        "sparse_grad": hp["token_embedding_storage_type"] == "row_sparse",
    }


def build_network(hp: dict) -> Object2VecNetwork:
    """A network for the resolved hyperparameters, its parameters initialised (Xavier; embeddings uniform ±0.01)."""
    network = Object2VecNetwork(network_config(hp))
    network.initialize(mx.init.Xavier())
    return network


def save_model(network: Object2VecNetwork, hp: dict, model_dir: Path) -> None:
    """Write the artifact: ``model_algo-1/hyperparameters.json`` (resolved) and ``model_algo-1/network.params``."""
    folder = Path(model_dir) / ARTIFACT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / HYPERPARAMETERS_FILE).write_text(json.dumps(hp, indent=1, sort_keys=True))
    network.save_parameters(str(folder / PARAMETERS_FILE))


def load_model(model_dir: Path) -> tuple[Object2VecNetwork, dict]:
    """The trained network (hybridized) and its resolved hyperparameters, from a folder holding ``model_algo-1/``."""
    folder = Path(model_dir) / ARTIFACT
    hp = json.loads((folder / HYPERPARAMETERS_FILE).read_text())
    network = Object2VecNetwork(network_config(hp))
    network.load_parameters(str(folder / PARAMETERS_FILE))
    network.hybridize(static_alloc=True)
    return network, hp
