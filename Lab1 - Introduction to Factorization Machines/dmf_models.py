"""The definitions of notebook "1b - Deep Matrix Factorization with MXNet.ipynb" marked ``#@save``, written here by
``python -m common.labs``: edit them in the notebook, then run that command again. Script-mode jobs and
the benchmarks import them from this file."""

import numpy as np

# mxnet 1.9.1 still refers to numpy.bool, which numpy removed in 1.24; restore the alias as it used to be
# (the workshop's `common` package does the same) before importing mxnet: this module also runs in a job.
if "bool" not in vars(np):
    np.bool = bool

import mxnet as mx  # noqa: E402
from mxnet import gluon  # noqa: E402
from mxnet.gluon import nn  # noqa: E402


def batches(arrays, size, rng=None):
    # Yield lists of NDArrays, `size` rows at a time, in a random order when an rng is given.
    order = rng.permutation(len(arrays[0])) if rng is not None else np.arange(len(arrays[0]))
    for start in range(0, len(order), size):
        rows = order[start : start + size]
        yield [mx.nd.array(a[rows]) for a in arrays]


def predict(net, users, items):
    return np.concatenate([net(u, i).asnumpy() for u, i in batches((users, items), 65536)])


class MF(gluon.HybridBlock):
    def __init__(self, n_users, n_items, factors, mu):
        super().__init__()
        self.mu = mu
        self.P = nn.Embedding(n_users, factors, sparse_grad=True)
        self.Q = nn.Embedding(n_items, factors, sparse_grad=True)
        self.b_u = nn.Embedding(n_users, 1, sparse_grad=True)
        self.b_i = nn.Embedding(n_items, 1, sparse_grad=True)

    def hybrid_forward(self, F, u, i):
        dot = (self.P(u) * self.Q(i)).sum(axis=1)
        return self.mu + self.b_u(u).reshape((-1,)) + self.b_i(i).reshape((-1,)) + dot


class DMF(gluon.HybridBlock):
    def __init__(self, num_users, num_items, user_factors, item_factors, hidden, global_mean, **kwargs):
        super().__init__(**kwargs)
        self.global_mean = float(global_mean)
        self.user_embedding = nn.Embedding(num_users, user_factors, sparse_grad=True)
        self.item_embedding = nn.Embedding(num_items, item_factors, sparse_grad=True)
        self.mlp = nn.HybridSequential()
        for width in hidden:
            self.mlp.add(nn.Dense(width, activation="relu"))
        self.mlp.add(nn.Dense(1))

    def hybrid_forward(self, F, users, items):
        x = F.concat(self.user_embedding(users), self.item_embedding(items), dim=1)
        return self.mlp(x).reshape((-1,)) + self.global_mean


class GenreDMF(DMF):
    def __init__(self, genre_mix, genre_factors, **dmf_args):
        super().__init__(**dmf_args)
        self.genre_mix = nn.Embedding(*genre_mix.shape, weight_initializer=mx.init.Constant(genre_mix))
        self.genre_mix.weight.grad_req = "null"  # fixed: not trained
        self.genre_embedding = nn.Dense(genre_factors, use_bias=False)  # mix @ E = mean of genre vectors

    def hybrid_forward(self, F, users, items):
        genres = self.genre_embedding(self.genre_mix(items))
        x = F.concat(self.user_embedding(users), self.item_embedding(items), genres, dim=1)
        return self.mlp(x).reshape((-1,)) + self.global_mean


def sample_negatives(users, per_positive, seen, n_items, rng):
    # `per_positive` movies per user drawn uniformly from n_items; pairs found in `seen` are drawn again
    users = np.repeat(users, per_positive)
    items = rng.integers(0, n_items, len(users), dtype=np.int32)
    redraw = np.arange(len(users))
    while len(redraw):
        keys = users[redraw].astype(np.int64) * n_items + items[redraw]
        redraw = redraw[seen[np.minimum(np.searchsorted(seen, keys), len(seen) - 1)] == keys]
        items[redraw] = rng.integers(0, n_items, len(redraw))
    return users, items


class NeuMF(gluon.HybridBlock):
    def __init__(self, n_users, n_items, factors, hidden):
        super().__init__()
        self.P = nn.Embedding(n_users, factors, sparse_grad=True)  # GMF branch
        self.Q = nn.Embedding(n_items, factors, sparse_grad=True)
        self.P_mlp = nn.Embedding(n_users, hidden[0] // 2, sparse_grad=True)  # MLP branch
        self.Q_mlp = nn.Embedding(n_items, hidden[0] // 2, sparse_grad=True)
        self.mlp = nn.HybridSequential()
        for width in hidden[1:]:
            self.mlp.add(nn.Dense(width, activation="relu"))
        self.out = nn.Dense(1)

    def hybrid_forward(self, F, u, i):
        gmf = self.P(u) * self.Q(i)
        mlp = self.mlp(F.concat(self.P_mlp(u), self.Q_mlp(i), dim=1))
        return self.out(F.concat(gmf, mlp, dim=1)).reshape((-1,))
