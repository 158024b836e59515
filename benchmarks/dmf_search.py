"""Choose Lab 1b's settings on validation splits carved from the training data; the test split is never read.

Two searches, each on the notebook's own data and seed:

- ``ncf``: NeuMF (notebook section 7). Fitted on ``leave_one_out(loo_train, seed=1)``'s train part, scored on its
  held-out latest interactions with 99 negatives (the notebook's ``ncf_valid``): validation HR@10 and NDCG@10
  after every epoch, so one run gives every epoch count.
- ``dmf``: the rating models (sections 3-6). Fitted on ``split_holdout(train, seed=1)``'s fit part, scored on its
  validation part: validation RMSE after every epoch, overall and on the cold movies (at most 5 fit ratings).

Each row prints one setting at its best validation epoch (by NDCG@10, or by RMSE). The rows named "notebook
12-02" are the notebook's settings before this search. Chosen from these figures: NeuMF "64 factors, lr 0.002"
(the best validation HR@10 and NDCG@10 on both datasets); the rating models stay as they were, since no DMF
variant came near MF + biases (the notebook's section 4 says why).

    .venv/bin/python benchmarks/dmf_search.py [--dataset ml-latest-small] [--task ncf|dmf] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import time

import common  # noqa: F401  (numpy alias before mxnet)

# isort: split
import mxnet as mx
import numpy as np
import pandas as pd
from mxnet import autograd, gluon
from mxnet.gluon import nn

from common import data, evaluation
from common.labs import load_lab_module

# The notebook's models, batches, predict and negative sampler (its #@save cells, written to dmf_models.py).
models = load_lab_module("lab1", "dmf_models")
DMF, GenreDMF, MF, NeuMF = models.DMF, models.GenreDMF, models.MF, models.NeuMF
batches, predict, sample_negatives = models.batches, models.predict, models.sample_negatives

SEED = 0
K = 10
COLD_MAX_RATINGS = 5

# NeuMF settings looked at, in rounds: name -> overrides of NCF_DEFAULT
NCF_DEFAULT = {
    "factors": 16,
    "hidden": (64, 32, 16),
    "negatives": 4,
    "lr": 0.005,
    "wd": 0.0,
    "batch": 4096,
    "epochs": 5,
}
NCF_SETTINGS = {
    "notebook 12-02": {},
    "10 epochs": {"epochs": 10},
    "32 factors": {"factors": 32, "epochs": 10},
    "64 factors": {"factors": 64, "epochs": 10},
    "8 negatives": {"negatives": 8, "epochs": 10},
    "lr 0.002": {"lr": 0.002, "epochs": 10},
    "wd 1e-5": {"wd": 1e-5, "epochs": 10},
    "wd 1e-4": {"wd": 1e-4, "epochs": 10},
    "MLP 128-64-32": {"hidden": (128, 64, 32), "epochs": 10},
    # round 2: the gains above combined, with room for more epochs
    "64 factors, 20 epochs": {"factors": 64, "epochs": 20},
    "128 factors, 20 epochs": {"factors": 128, "epochs": 20},
    "64 factors, 8 negatives": {"factors": 64, "negatives": 8, "epochs": 20},
    # round 3: synthetic overfits with 64 factors by epoch 3; smaller steps, or more negatives per positive
    "32 factors, 8 negatives": {"factors": 32, "negatives": 8, "epochs": 20},
    "64 factors, lr 0.002": {"factors": 64, "lr": 0.002, "epochs": 20},
}

RATING_DEFAULT = {
    "kind": "dmf",
    "pretrain_mf": 0,
    "genre_factors": 0,
    "user_factors": 32,
    "item_factors": 32,
    "hidden": (64, 64),
    "dropout": 0.0,
    "lr": 0.002,
    "wd": 1e-4,
    "epochs": 10,
    "batch": 1024,
}
RATING_SETTINGS = {
    "MF + biases (notebook)": {"kind": "mf", "lr": 0.005},
    "DMF (notebook 12-02)": {},
    "DMF wd 1e-3": {"wd": 1e-3},
    "DMF dropout 0.3": {"dropout": 0.3},
    "DMF dropout 0.5": {"dropout": 0.5},
    "DMF MLP 128-64": {"hidden": (128, 64)},
    "DMF MLP 64": {"hidden": (64,)},
    "DMF lr 0.001": {"lr": 0.001, "epochs": 15},
    "DMF 16/32": {"user_factors": 16},
    "DMF 16/32 + genres (notebook)": {"user_factors": 16, "genre_factors": 8},
    "DMF from MF (5 epochs)": {"pretrain_mf": 5},
    "DMF from MF, lr 0.0005": {"pretrain_mf": 5, "lr": 0.0005},
}


def dropout_dmf(dropout: float, genre_mix=None, genre_factors=0, **architecture) -> DMF:
    """DMF (with genres when ``genre_factors``) whose MLP has dropout after each hidden layer (exercise 1)."""
    net = GenreDMF(genre_mix, genre_factors, **architecture) if genre_factors else DMF(**architecture)
    with net.name_scope():
        net.mlp = nn.HybridSequential()
        for width in architecture["hidden"]:
            net.mlp.add(nn.Dense(width, activation="relu"), nn.Dropout(dropout))
        net.mlp.add(nn.Dense(1))
    return net


class Lab:
    """The notebook's data steps for one dataset: index, rating fit/validation, NCF fit/validation candidates."""

    def __init__(self, name: str):
        ds = data.load_dataset(name)
        ratings, movies = ds.ratings, ds.items
        self.user_index = pd.Index(np.unique(ratings.user_id))
        self.item_index = pd.Index(movies.item_id)
        self.n_users, self.n_items = len(self.user_index), len(self.item_index)
        genre_of = movies.genres.explode().dropna()
        genre_names = pd.Index(sorted(genre_of.unique()))
        self.genre_mix = np.zeros((self.n_items, len(genre_names)), dtype=np.float32)
        self.genre_mix[
            self.item_index.get_indexer(movies.item_id[genre_of.index]), genre_names.get_indexer(genre_of)
        ] = 1
        self.genre_mix /= np.maximum(self.genre_mix.sum(axis=1, keepdims=True), 1)
        train_df, _ = data.split_holdout(ds, seed=SEED)
        fit_df, valid_df = data.split_holdout(train_df, seed=SEED + 1)
        self.fit, self.valid = self.arrays(fit_df), self.arrays(valid_df)
        self.cold = evaluation.cold_items_mask(fit_df, valid_df, max_ratings=COLD_MAX_RATINGS)
        loo_train, _, _ = data.leave_one_out(ratings, n_negatives=99, seed=SEED)
        ncf_fit, ncf_valid, ncf_negatives = data.leave_one_out(loo_train, n_negatives=99, seed=SEED + 1)
        self.pos_users, self.pos_items = self.arrays(ncf_fit)[:2]
        self.seen = np.unique(self.pos_users.astype(np.int64) * self.n_items + self.pos_items)
        items = np.column_stack([ncf_valid.item_id.to_numpy(), ncf_negatives])
        users = np.repeat(ncf_valid.user_id.to_numpy()[:, None], items.shape[1], axis=1)
        self.candidates = (
            self.user_index.get_indexer(users.ravel()).reshape(users.shape).astype(np.int32),
            self.item_index.get_indexer(items.ravel()).reshape(items.shape).astype(np.int32),
        )

    def arrays(self, frame):
        return (
            self.user_index.get_indexer(frame.user_id).astype(np.int32),
            self.item_index.get_indexer(frame.item_id).astype(np.int32),
            frame.rating.to_numpy(np.float32),
        )


def ncf_curve(lab: Lab, setting: dict) -> pd.DataFrame:
    """Validation HR@10 / NDCG@10 after each epoch of NeuMF trained as the notebook's ``fit_implicit``."""
    mx.random.seed(SEED)
    net = NeuMF(lab.n_users, lab.n_items, setting["factors"], setting["hidden"])
    net.initialize(mx.init.Normal(0.01))
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": setting["lr"], "wd": setting["wd"]})
    loss_fn, rng, rows = gluon.loss.SigmoidBinaryCrossEntropyLoss(), np.random.default_rng(SEED), []
    for epoch in range(1, setting["epochs"] + 1):
        neg_users, neg_items = sample_negatives(lab.pos_users, setting["negatives"], lab.seen, lab.n_items, rng)
        labels = np.r_[np.ones(len(lab.pos_users)), np.zeros(len(neg_users))].astype(np.float32)
        samples = (np.r_[lab.pos_users, neg_users], np.r_[lab.pos_items, neg_items], labels)
        for u, i, y in batches(samples, setting["batch"], rng):
            with autograd.record():
                loss = loss_fn(net(u, i), y)
            loss.backward()
            trainer.step(u.shape[0])
        scores = predict(net, lab.candidates[0].ravel(), lab.candidates[1].ravel()).reshape(lab.candidates[0].shape)
        rows.append(
            {"epoch": epoch, "HR@10": evaluation.hit_rate_at_k(scores, K), "NDCG@10": evaluation.ndcg_at_k(scores, K)}
        )
    return pd.DataFrame(rows).set_index("epoch")


def rating_net(lab: Lab, setting: dict) -> gluon.HybridBlock:
    mu = float(lab.fit[2].mean())
    if setting["kind"] == "mf":
        return MF(lab.n_users, lab.n_items, 32, mu)
    return dropout_dmf(
        setting["dropout"],
        lab.genre_mix,
        setting["genre_factors"],
        num_users=lab.n_users,
        num_items=lab.n_items,
        user_factors=setting["user_factors"],
        item_factors=setting["item_factors"],
        hidden=list(setting["hidden"]),
        global_mean=mu,
    )


def rating_curve(lab: Lab, setting: dict) -> pd.DataFrame:
    """Validation RMSE (all, cold, warm movies) after each epoch, trained as the notebook's ``fit_ratings``.

    ``pretrain_mf`` epochs > 0: first train the notebook's MF that long, then start DMF's embeddings from MF's
    P and Q (the NCF paper's pretraining, He et al. 2017 §3.4.1, with MF in the role of GMF).
    """
    mx.random.seed(SEED)
    net = rating_net(lab, setting)
    net.initialize(mx.init.Xavier())
    if setting["pretrain_mf"]:
        mf = rating_net(lab, {**setting, "kind": "mf"})
        mf.initialize(mx.init.Xavier())
        train_epochs(mf, lab, {**setting, **RATING_SETTINGS["MF + biases (notebook)"]}, setting["pretrain_mf"])
        net.user_embedding.weight.set_data(mf.P.weight.data())
        net.item_embedding.weight.set_data(mf.Q.weight.data())
    return train_epochs(net, lab, setting, setting["epochs"])


def train_epochs(net, lab: Lab, setting: dict, epochs: int) -> pd.DataFrame:
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": setting["lr"], "wd": setting["wd"]})
    loss_fn, rng, rows = gluon.loss.L2Loss(), np.random.default_rng(SEED), []
    for epoch in range(1, epochs + 1):
        for u, i, r in batches(lab.fit, setting["batch"], rng):
            with autograd.record():
                loss = loss_fn(net(u, i), r)
            loss.backward()
            trainer.step(u.shape[0])
        error = (predict(net, *lab.valid[:2]) - lab.valid[2]) ** 2
        rows.append(
            {
                "epoch": epoch,
                "RMSE": error.mean() ** 0.5,
                "cold RMSE": error[lab.cold].mean() ** 0.5,
                "warm RMSE": error[~lab.cold].mean() ** 0.5,
            }
        )
    return pd.DataFrame(rows).set_index("epoch")


def search(lab: Lab, task: str, only: list[str] | None) -> None:
    defaults, settings, curve, best, key = (
        (NCF_DEFAULT, NCF_SETTINGS, ncf_curve, "idxmax", "NDCG@10")
        if task == "ncf"
        else (RATING_DEFAULT, RATING_SETTINGS, rating_curve, "idxmin", "RMSE")
    )
    for name, overrides in settings.items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        history = curve(lab, {**defaults, **overrides})
        epoch = getattr(history[key], best)()
        figures = "  ".join(f"{column} {value:.4f}" for column, value in history.loc[epoch].items())
        print(f"  {name:<28} best epoch {epoch:>2}: {figures}   ({time.perf_counter() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-latest-small", choices=("ml-latest-small", "synthetic"))
    parser.add_argument("--task", default="ncf", choices=("ncf", "dmf"))
    parser.add_argument("--only", nargs="*", help="setting names to run (default: all)")
    args = parser.parse_args()
    lab = Lab(args.dataset)
    print(f"{args.dataset}, {args.task}: validation figures at each setting's best epoch")
    search(lab, args.task, args.only)


if __name__ == "__main__":
    main()
