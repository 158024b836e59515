"""Metrics and the baselines every lab compares against: pure functions over numpy arrays and pandas frames.

- Rating prediction: ``rmse``, ``mse``, ``mae``.
- Binary classification: ``accuracy``, ``precision``, ``recall``, ``f1`` (on labels, or on scores with a
  threshold) and ``roc_auc`` (on scores).
- Leave-one-out ranking (He et al. 2017, "Neural Collaborative Filtering", §4.1): for each user, one held-out
  positive is ranked among itself and sampled negatives (99 in the labs); ``hit_rate_at_k`` and ``ndcg_at_k``
  score the positive's rank. Ties count against the positive (pessimistic), so a model that gives every
  item the same score ranks each positive last instead of first.
- Standard errors of those figures, so a comparison can say whether a difference is beyond the noise of the
  test draw: per rating for RMSE (``rmse_standard_error``, delta method), per user for HR@k and NDCG@k
  (``hit_rate_standard_error``, ``ndcg_standard_error``); and of the difference between two models scored on the
  same test set, paired per rating or per user (``paired_standard_error``, ``rmse_difference_standard_error``,
  ``hit_rate_difference_standard_error``, ``ndcg_difference_standard_error``).
- Baselines over rating frames with columns ``user_id``, ``item_id``, ``rating``: global, per-user and
  per-item means, user+item biases, item popularity, majority class.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

USER, ITEM, RATING = "user_id", "item_id", "rating"
DEFAULT_BIAS_REG = 10.0
DEFAULT_BIAS_SWEEPS = 10


# --------------------------------------------------------------------------------------------------------
# Argument checks


def _vector(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name} must be finite, got {array[bad[0]]} at position {bad[0]}")
    return array


def _pair(y_true, y_pred, pred_name: str = "y_pred") -> tuple[np.ndarray, np.ndarray]:
    truth, prediction = _vector(y_true, "y_true"), _vector(y_pred, pred_name)
    if truth.shape != prediction.shape:
        raise ValueError(f"y_true has {truth.size} values but {pred_name} has {prediction.size}")
    return truth, prediction


def _binary(values: np.ndarray, name: str) -> np.ndarray:
    bad = np.flatnonzero((values != 0) & (values != 1))
    if bad.size:
        raise ValueError(f"{name} must hold only 0 and 1, got {values[bad[0]]:g} at position {bad[0]}")
    return values.astype(bool)


def _binary_pair(y_true, y_pred, threshold) -> tuple[np.ndarray, np.ndarray]:
    """Truth and predicted labels; ``y_pred`` holds labels, or scores when a threshold is given."""
    truth, prediction = _pair(y_true, y_pred)
    if threshold is None:
        return _binary(truth, "y_true"), _binary(prediction, "y_pred (labels, as no threshold is given)")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number or None, got {threshold!r}")
    return _binary(truth, "y_true"), prediction >= threshold


def _confusion(truth: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int]:
    """True positives, false positives, false negatives."""
    return (
        int(np.sum(truth & predicted)),
        int(np.sum(~truth & predicted)),
        int(np.sum(truth & ~predicted)),
    )


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------------------
# Rating prediction


def mse(y_true, y_pred) -> float:
    """Mean squared error (the loss FM and Object2Vec regressors log as ``mse``); min=0.

    MSE = sum_i (y_i - p_i)^2 / n

    Raises:
        ValueError: inputs empty, not 1-D, non-numeric, not finite, or of different lengths.
    """
    truth, prediction = _pair(y_true, y_pred)
    return float(np.mean((truth - prediction) ** 2))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error, in rating units; min=0.

    RMSE = sqrt(sum_i (y_i - p_i)^2 / n)

    Raises:
        ValueError: as ``mse``.
    """
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error (FM logs it as ``absolute_loss``); min=0.

    MAE = sum_i |y_i - p_i| / n

    Raises:
        ValueError: as ``mse``.
    """
    truth, prediction = _pair(y_true, y_pred)
    return float(np.mean(np.abs(truth - prediction)))


def _standard_error_of_mean(values: np.ndarray, unit: str) -> float:
    """sd / sqrt(n) with the sample sd (ddof=1): the standard error of a mean of independent draws."""
    if values.size < 2:
        raise ValueError(f"a standard error needs at least 2 {unit}s, got {values.size}")
    return float(np.std(values, ddof=1) / np.sqrt(values.size))


def rmse_standard_error(y_true, y_pred) -> float:
    """Standard error of ``rmse`` over the test ratings, by the delta method (ratings taken as independent).

    se(MSE) = sd_i((y_i - p_i)^2) / sqrt(n);  RMSE = sqrt(MSE), so se(RMSE) ~ se(MSE) / (2 RMSE); 0 when RMSE = 0

    Why: two models' RMSEs that differ by less than about two of these are within the noise of the test draw.

    Raises:
        ValueError: as ``mse``; fewer than 2 ratings.
    """
    truth, prediction = _pair(y_true, y_pred)
    squares = (truth - prediction) ** 2
    se_mse = _standard_error_of_mean(squares, "rating")
    root = np.sqrt(squares.mean())
    return float(se_mse / (2 * root)) if root > 0 else 0.0


def paired_standard_error(a, b) -> float:
    """Standard error of mean(a) - mean(b) when a_i and b_i are measured on the same unit i (a rating, a user).

    se = sd_i(a_i - b_i) / sqrt(n)

    Why: two models scored on the same test set share its draw (the hard ratings are hard for both), so the
    error of their difference is the spread of the per-unit differences, far smaller than sqrt(se_a^2 + se_b^2).
    Per-unit values: squared errors for MSE, 0/1 correct for accuracy, 0/1 hits for HR@k.

    Raises:
        ValueError: a or b not a finite numeric 1-D array; different lengths; fewer than 2 units.
    """
    first, second = _vector(a, "a"), _vector(b, "b")
    if first.shape != second.shape:
        raise ValueError(f"a has {first.size} values but b has {second.size}: pair them unit by unit")
    return _standard_error_of_mean(first - second, "unit")


def rmse_difference_standard_error(y_true, y_pred_a, y_pred_b) -> float:
    """Standard error of rmse(y_true, y_pred_a) - rmse(y_true, y_pred_b), paired over the test ratings (delta method).

    d_i = e_ai^2 / (2 RMSE_a) - e_bi^2 / (2 RMSE_b), e = y - p;  se = sd_i(d_i) / sqrt(n)

    Why: a model beats a baseline on this test set beyond the noise of its draw when the gap is at least about two
    of these.

    Raises:
        ValueError: as ``rmse_standard_error``; either RMSE 0 (the delta method needs a slope).
    """
    truth, first = _pair(y_true, y_pred_a, "y_pred_a")
    _, second = _pair(y_true, y_pred_b, "y_pred_b")
    squares_a, squares_b = (truth - first) ** 2, (truth - second) ** 2
    root_a, root_b = np.sqrt(squares_a.mean()), np.sqrt(squares_b.mean())
    if root_a == 0 or root_b == 0:
        raise ValueError("an RMSE of 0 has no slope for the delta method: compare the squared errors instead")
    return paired_standard_error(squares_a / (2 * root_a), squares_b / (2 * root_b))


# --------------------------------------------------------------------------------------------------------
# Binary classification


def accuracy(y_true, y_pred, threshold: float | None = None) -> float:
    """Share of correct predictions; min=0, max=1.

    accuracy = sum_i [p_i == y_i] / n, with p_i = [score_i >= threshold] when a threshold is given

    Args:
        y_true: true labels. Without a threshold any labels work (multi-class too); with one, 0 and 1.
        y_pred: predicted labels, or scores when ``threshold`` is given (FM predicts 1 iff score >= 0.5).
        threshold: turns scores into labels.

    Raises:
        ValueError: as ``mse``; labels other than 0/1 when a threshold is given; a threshold not a finite number.
    """
    if threshold is None:
        truth, prediction = _pair(y_true, y_pred)
        return float(np.mean(truth == prediction))
    truth, predicted = _binary_pair(y_true, y_pred, threshold)
    return float(np.mean(truth == predicted))


def precision(y_true, y_pred, threshold: float | None = None) -> float:
    """Share of predicted positives that are positive; 0 when nothing is predicted positive; min=0, max=1.

    precision = TP / (TP + FP)

    Args:
        y_true: 0/1 labels.
        y_pred: 0/1 predicted labels, or scores when ``threshold`` is given (positive iff score >= threshold).
        threshold: turns scores into labels.

    Raises:
        ValueError: as ``mse``; labels other than 0/1; a threshold not a finite number.
    """
    tp, fp, _ = _confusion(*_binary_pair(y_true, y_pred, threshold))
    return tp / (tp + fp) if tp + fp else 0.0


def recall(y_true, y_pred, threshold: float | None = None) -> float:
    """Share of positives predicted positive; 0 when there is no positive; min=0, max=1.

    recall = TP / (TP + FN)

    Args and Raises: as ``precision``.
    """
    tp, _, fn = _confusion(*_binary_pair(y_true, y_pred, threshold))
    return tp / (tp + fn) if tp + fn else 0.0


def f1(y_true, y_pred, threshold: float | None = None) -> float:
    """Harmonic mean of precision and recall; 0 when both are 0; min=0, max=1.

    F1 = 2 * precision * recall / (precision + recall) = 2 TP / (2 TP + FP + FN)

    Args and Raises: as ``precision``.
    """
    tp, fp, fn = _confusion(*_binary_pair(y_true, y_pred, threshold))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve: the chance a random positive scores above a random negative; min=0, max=1.

    AUC = (sum of the positives' ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg), ranks 1..n by ascending
    score with ties given their average rank (Mann-Whitney U), so a tie counts one half.

    Raises:
        ValueError: as ``mse``; labels other than 0/1; only one class present.
    """
    truth, score = _pair(y_true, scores, "scores")
    positive = _binary(truth, "y_true")
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"roc_auc needs both classes in y_true, got {n_pos} positives and {n_neg} negatives")
    distinct, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based average rank of each distinct score
    rank_sum = average_rank[inverse][positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# --------------------------------------------------------------------------------------------------------
# Leave-one-out ranking


def _score_matrix(scores, negative_scores) -> np.ndarray:
    """(n_users, 1 + n_negatives) float matrix with the positive in column 0."""
    if negative_scores is None:
        matrix = np.asarray(scores)
        name = "scores"
        if matrix.ndim != 2 or matrix.shape[1] < 2:
            raise ValueError(
                f"scores must be 2-D (users x candidates) with the positive in column 0 and at least one "
                f"negative, got shape {matrix.shape}"
            )
    else:
        positive, negative = np.asarray(scores), np.asarray(negative_scores)
        name = "scores and negative_scores"
        if positive.ndim != 1 or negative.ndim != 2 or negative.shape[1] < 1 or len(positive) != len(negative):
            raise ValueError(
                "with negative_scores, scores must be 1-D (n_users,) and negative_scores 2-D (n_users, n_negatives), "
                f"got {positive.shape} and {negative.shape}"
            )
        matrix = np.column_stack([positive, negative]) if positive.size else np.empty((0, 2))
    if matrix.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {matrix.dtype}")
    if matrix.shape[0] == 0:
        raise ValueError(f"{name} hold no users")
    if not np.isfinite(matrix).all():
        user = np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0]
        raise ValueError(f"{name} must be finite, got {matrix[user].tolist()} for user row {user}")
    return matrix


def positive_ranks(scores, negative_scores=None) -> np.ndarray:
    """1-based rank of each user's held-out positive among its candidates, ties counted against the positive.

    rank_u = 1 + #{negatives j of user u : s_uj >= s_u+}

    Args:
        scores: (n_users, 1 + n_negatives) scores with the positive in column 0; or, when ``negative_scores``
            is given, the (n_users,) scores of the positives.
        negative_scores: optional (n_users, n_negatives) scores of the sampled negatives.

    Raises:
        ValueError: wrong shapes, no users, no negatives, non-numeric or non-finite scores.
    """
    matrix = _score_matrix(scores, negative_scores)
    return 1 + np.sum(matrix[:, 1:] >= matrix[:, :1], axis=1)


def _ranks_within_k(scores, negative_scores, k) -> tuple[np.ndarray, int]:
    ranks = positive_ranks(scores, negative_scores)
    k = _positive_int(k, "k")
    n_candidates = 1 + (np.shape(scores)[1] - 1 if negative_scores is None else np.shape(negative_scores)[1])
    if k > n_candidates:
        raise ValueError(f"k={k} exceeds the {n_candidates} candidates per user (the positive and its negatives)")
    return ranks, k


def hit_rate_at_k(scores, k: int, *, negative_scores=None) -> float:
    """Share of users whose held-out positive ranks in the top k of its candidates (HR@k); min=0, max=1.

    HR@k = sum_u [rank_u <= k] / n_users, rank_u as in ``positive_ranks`` (ties count against the positive)

    Args:
        scores, negative_scores: as ``positive_ranks``.
        k: cut-off, 1 <= k <= number of candidates per user.

    Raises:
        ValueError: as ``positive_ranks``; k not an integer in that range.
    """
    ranks, k = _ranks_within_k(scores, negative_scores, k)
    return float(np.mean(ranks <= k))


def ndcg_at_k(scores, k: int, *, negative_scores=None) -> float:
    """Normalised discounted cumulative gain at k with one relevant item per user (NDCG@k); min=0, max=1.

    NDCG@k = sum_u [rank_u <= k] / log2(rank_u + 1) / n_users (IDCG = 1: the single positive ranked first)

    Args and Raises: as ``hit_rate_at_k``.
    """
    ranks, k = _ranks_within_k(scores, negative_scores, k)
    return float(np.mean(np.where(ranks <= k, 1 / np.log2(ranks + 1), 0.0)))


def hit_rate_standard_error(scores, k: int, *, negative_scores=None) -> float:
    """Standard error of ``hit_rate_at_k`` over users (each user's hit, 0 or 1, one independent draw).

    se = sd_u([rank_u <= k]) / sqrt(n_users)

    Args and Raises: as ``hit_rate_at_k``; also fewer than 2 users.
    """
    ranks, k = _ranks_within_k(scores, negative_scores, k)
    return _standard_error_of_mean((ranks <= k).astype(np.float64), "user")


def ndcg_standard_error(scores, k: int, *, negative_scores=None) -> float:
    """Standard error of ``ndcg_at_k`` over users (each user's gain one independent draw).

    se = sd_u([rank_u <= k] / log2(rank_u + 1)) / sqrt(n_users)

    Args and Raises: as ``hit_rate_standard_error``.
    """
    ranks, k = _ranks_within_k(scores, negative_scores, k)
    return _standard_error_of_mean(np.where(ranks <= k, 1 / np.log2(ranks + 1), 0.0), "user")


def _gains(scores, k: int, hits_only: bool) -> np.ndarray:
    ranks, k = _ranks_within_k(scores, None, k)
    return (ranks <= k).astype(np.float64) if hits_only else np.where(ranks <= k, 1 / np.log2(ranks + 1), 0.0)


def hit_rate_difference_standard_error(scores_a, scores_b, k: int) -> float:
    """Standard error of HR@k(scores_a) - HR@k(scores_b), paired over users (both rank the same candidates).

    se = sd_u([rank_au <= k] - [rank_bu <= k]) / sqrt(n_users)

    Args:
        scores_a, scores_b: (n_users, 1 + n_negatives) scores of the same users' candidates, positive in column 0.
        k: as ``hit_rate_at_k``.

    Raises:
        ValueError: as ``hit_rate_standard_error``; the two score matrices of different shapes.
    """
    if np.shape(scores_a) != np.shape(scores_b):
        raise ValueError(
            f"scores_a {np.shape(scores_a)} and scores_b {np.shape(scores_b)} must rank the same candidates"
        )
    return paired_standard_error(_gains(scores_a, k, True), _gains(scores_b, k, True))


def ndcg_difference_standard_error(scores_a, scores_b, k: int) -> float:
    """Standard error of NDCG@k(scores_a) - NDCG@k(scores_b), paired over users.

    se = sd_u(gain_au - gain_bu) / sqrt(n_users), gain_u = [rank_u <= k] / log2(rank_u + 1)

    Args and Raises: as ``hit_rate_difference_standard_error``.
    """
    if np.shape(scores_a) != np.shape(scores_b):
        raise ValueError(
            f"scores_a {np.shape(scores_a)} and scores_b {np.shape(scores_b)} must rank the same candidates"
        )
    return paired_standard_error(_gains(scores_a, k, False), _gains(scores_b, k, False))


# --------------------------------------------------------------------------------------------------------
# Baselines


def _frame(frame, name: str, columns: tuple, allow_empty: bool) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; needs {list(columns)}, has {list(frame.columns)}")
    if not allow_empty and frame.empty:
        raise ValueError(f"{name} is empty")
    if RATING in columns:
        _vector(frame[RATING].to_numpy(), f"{name}[{RATING!r}]")
    return frame


def _train_test(train, test, keys: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    return _frame(train, "train", (*keys, RATING), allow_empty=False), _frame(test, "test", keys, allow_empty=True)


def predict_global_mean(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Predict the mean training rating for every test row.

    p_ui = mu = sum r / n_train

    Returns:
        float array aligned with the rows of ``test``.

    Raises:
        ValueError: train not a frame, empty, lacking ``rating`` or with non-finite ratings; test not a frame.
    """
    train, test = _train_test(train, test, ())
    return np.full(len(test), train[RATING].mean(), dtype=np.float64)


def _group_mean(train: pd.DataFrame, test: pd.DataFrame, key: str) -> np.ndarray:
    means = train.groupby(key)[RATING].mean()
    return test[key].map(means).fillna(train[RATING].mean()).to_numpy(dtype=np.float64)


def predict_user_mean(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Predict each user's mean training rating; the global mean for users unseen in training.

    p_ui = sum_{j in R(u)} r_uj / |R(u)|, or mu when R(u) is empty

    Raises:
        ValueError: as ``predict_global_mean``, or a frame lacking ``user_id``.
    """
    train, test = _train_test(train, test, (USER,))
    return _group_mean(train, test, USER)


def predict_item_mean(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Predict each item's mean training rating; the global mean for items unseen in training.

    p_ui = sum_{v in R(i)} r_vi / |R(i)|, or mu when R(i) is empty

    Raises:
        ValueError: as ``predict_global_mean``, or a frame lacking ``item_id``.
    """
    train, test = _train_test(train, test, (ITEM,))
    return _group_mean(train, test, ITEM)


def predict_bias(
    train: pd.DataFrame, test: pd.DataFrame, reg: float = DEFAULT_BIAS_REG, sweeps: int = DEFAULT_BIAS_SWEEPS
) -> np.ndarray:
    """Predict with regularised user and item biases (Koren 2010, "Factor in the Neighbors", §2.1).

    p_ui = mu + b_u + b_i, fitted by alternating b_i = sum_u (r_ui - mu - b_u) / (reg + |R(i)|) and
    b_u = sum_i (r_ui - mu - b_i) / (reg + |R(u)|), starting from b = 0; unseen users or items get bias 0.

    Args:
        reg: shrinkage towards 0 for users and items with few ratings, >= 0.
        sweeps: alternating least-squares sweeps (item biases, then user biases), >= 1.

    Raises:
        ValueError: as ``predict_user_mean`` and ``predict_item_mean``; reg negative or not finite; sweeps < 1.
    """
    train, test = _train_test(train, test, (USER, ITEM))
    if isinstance(reg, bool) or not isinstance(reg, numbers.Real) or not 0 <= reg < np.inf:
        raise ValueError(f"reg must be a finite number >= 0, got {reg!r}")
    sweeps = _positive_int(sweeps, "sweeps")
    users, user_ids = pd.factorize(train[USER])
    items, item_ids = pd.factorize(train[ITEM])
    ratings = train[RATING].to_numpy(dtype=np.float64)
    mu = ratings.mean()
    user_count = np.bincount(users, minlength=len(user_ids)) + reg
    item_count = np.bincount(items, minlength=len(item_ids)) + reg
    user_bias = np.zeros(len(user_ids))
    item_bias = np.zeros(len(item_ids))
    for _ in range(sweeps):
        item_bias = np.bincount(items, ratings - mu - user_bias[users], len(item_ids)) / item_count
        user_bias = np.bincount(users, ratings - mu - item_bias[items], len(user_ids)) / user_count
    test_users = pd.Index(user_ids).get_indexer(test[USER])
    test_items = pd.Index(item_ids).get_indexer(test[ITEM])
    return (
        mu
        + np.where(test_users >= 0, user_bias[test_users], 0.0)
        + np.where(test_items >= 0, item_bias[test_items], 0.0)
    )


def cold_items_mask(train: pd.DataFrame, test: pd.DataFrame, max_ratings: int = 5) -> np.ndarray:
    """Mark the test rows whose item has at most ``max_ratings`` training ratings: the cold-start slice.

    Why: a model's average error is dominated by popular items; the few-ratings slice is where side information
    (genres) can help, so the labs report both slices.

    Returns:
        bool array aligned with the rows of ``test`` (items never seen in training count as 0 ratings).

    Raises:
        ValueError: a frame lacking ``item_id``, train empty, or max_ratings negative or not an integer.
    """
    train = _frame(train, "train", (ITEM,), allow_empty=False)
    test = _frame(test, "test", (ITEM,), allow_empty=True)
    if isinstance(max_ratings, bool) or not isinstance(max_ratings, numbers.Integral) or max_ratings < 0:
        raise ValueError(f"max_ratings must be an integer >= 0, got {max_ratings!r}")
    counts = test[ITEM].map(train[ITEM].value_counts()).fillna(0).to_numpy()
    return counts <= max_ratings


def popularity_scores(train: pd.DataFrame, items) -> np.ndarray:
    """Score items by their number of training interactions (0 for items never seen).

    score_i = |R(i)|

    Args:
        train: interactions with an ``item_id`` column (ratings not needed).
        items: item ids of any shape, e.g. the (n_users, 1 + n_negatives) candidates of the leave-one-out
            protocol, ready for ``hit_rate_at_k``.

    Returns:
        int64 array of the shape of ``items``.

    Raises:
        ValueError: train not a frame, empty or lacking ``item_id``.
    """
    train = _frame(train, "train", (ITEM,), allow_empty=False)
    items = np.asarray(items)
    counts = train[ITEM].value_counts()
    scores = pd.Series(items.ravel()).map(counts).fillna(0).to_numpy(dtype=np.int64)
    return scores.reshape(items.shape)


def majority_class(labels):
    """The most frequent label (the smallest one on a tie): what a classifier that ignores its input predicts.

    majority = argmax_c sum_i [y_i == c]

    Raises:
        ValueError: labels empty or not 1-D.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    values, counts = np.unique(labels, return_counts=True)
    return values[np.argmax(counts)].item()
