"""Tests for common.evaluation: each metric pinned by a perfect prediction, a worst one (no hits), and a
worked example computed by hand in the test; each baseline by a hand-made frame; and the error paths."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from common import evaluation as ev

# --------------------------------------------------------------------------------------------------------
# Rating prediction

Y_TRUE = [3.0, 5.0, 2.0]


def test_regression_metrics_perfect():
    assert ev.mse(Y_TRUE, Y_TRUE) == ev.rmse(Y_TRUE, Y_TRUE) == ev.mae(Y_TRUE, Y_TRUE) == 0.0


def test_regression_metrics_constant_offset():
    off_by_two = np.add(Y_TRUE, 2.0)
    assert ev.mse(Y_TRUE, off_by_two) == 4.0
    assert ev.rmse(Y_TRUE, off_by_two) == 2.0
    assert ev.mae(Y_TRUE, off_by_two) == 2.0


def test_regression_metrics_worked_example():
    # errors 0.5, 0, -2 -> squares 0.25, 0, 4 (sum 4.25); absolute values sum to 2.5
    prediction = [2.5, 5.0, 4.0]
    assert ev.mse(Y_TRUE, prediction) == pytest.approx(4.25 / 3)
    assert ev.rmse(Y_TRUE, prediction) == pytest.approx(math.sqrt(4.25 / 3))
    assert ev.mae(Y_TRUE, prediction) == pytest.approx(2.5 / 3)


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "y_true has 3 values but y_pred has 2"),
        ([], [], "y_true is empty"),
        ([[1.0]], [[1.0]], r"y_true must be 1-D, got shape \(1, 1\)"),
        ([1.0, 2.0], [1.0, np.nan], "y_pred must be finite, got nan at position 1"),
        (["a"], [1.0], "y_true must be numeric, got dtype <U1"),
    ],
)
@pytest.mark.parametrize("metric", [ev.mse, ev.rmse, ev.mae])
def test_regression_metric_errors(metric, y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        metric(y_true, y_pred)


def test_rmse_standard_error_worked_example():
    # squared errors 0.25, 0, 4: se(MSE) = stdev / sqrt(3); se(RMSE) = se(MSE) / (2 RMSE)
    squares = [0.25, 0.0, 4.0]
    se_mse = statistics.stdev(squares) / math.sqrt(3)
    expected = se_mse / (2 * math.sqrt(4.25 / 3))
    assert ev.rmse_standard_error(Y_TRUE, [2.5, 5.0, 4.0]) == pytest.approx(expected)
    assert ev.rmse_standard_error(Y_TRUE, Y_TRUE) == 0.0


def test_rmse_standard_error_matches_the_spread_of_resampled_test_sets():
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, 4000).astype(float)
    prediction = truth + rng.normal(0.0, 0.9, truth.size)
    draws = rng.integers(0, truth.size, (300, truth.size))
    bootstrap = np.std([ev.rmse(truth[rows], prediction[rows]) for rows in draws])
    assert ev.rmse_standard_error(truth, prediction) == pytest.approx(bootstrap, rel=0.15)


def test_rmse_standard_error_errors():
    with pytest.raises(ValueError, match="a standard error needs at least 2 ratings, got 1"):
        ev.rmse_standard_error([3.0], [2.0])
    with pytest.raises(ValueError, match="y_true has 3 values but y_pred has 2"):
        ev.rmse_standard_error(Y_TRUE, [1.0, 2.0])


def test_paired_standard_error_is_the_spread_of_the_differences():
    assert ev.paired_standard_error([1, 0, 1, 1], [0, 0, 1, 0]) == pytest.approx(statistics.stdev([1, 0, 0, 1]) / 2)
    assert ev.paired_standard_error([3.0, 1.0], [2.0, 0.0]) == 0.0  # a constant gap: no noise in it


def test_paired_standard_error_is_smaller_than_the_unpaired_one_when_models_share_hard_ratings():
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, 4000).astype(float)
    hard = rng.normal(0.0, 0.9, truth.size)  # noise both models miss
    first, second = truth + hard, truth + hard + rng.normal(0.0, 0.3, truth.size)
    paired = ev.rmse_difference_standard_error(truth, first, second)
    assert paired < 0.5 * math.hypot(ev.rmse_standard_error(truth, first), ev.rmse_standard_error(truth, second))
    draws = rng.integers(0, truth.size, (300, truth.size))
    gaps = [ev.rmse(truth[rows], first[rows]) - ev.rmse(truth[rows], second[rows]) for rows in draws]
    assert paired == pytest.approx(np.std(gaps), rel=0.15)


def test_rmse_difference_standard_error_worked_example():
    # errors a: 0.5, 0, 2 (RMSE sqrt(4.25/3)); b: 1, 1, 1 (RMSE 1): d_i = e_a^2 / (2 RMSE_a) - e_b^2 / 2
    root_a = math.sqrt(4.25 / 3)
    d = [0.25 / (2 * root_a) - 0.5, -0.5, 4 / (2 * root_a) - 0.5]
    expected = statistics.stdev(d) / math.sqrt(3)
    assert ev.rmse_difference_standard_error(Y_TRUE, [2.5, 5.0, 4.0], [4.0, 4.0, 1.0]) == pytest.approx(expected)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ev.paired_standard_error([1.0, 2.0], [1.0]), "a has 2 values but b has 1: pair them unit by unit"),
        (lambda: ev.paired_standard_error([1.0], [1.0]), "a standard error needs at least 2 units, got 1"),
        (lambda: ev.paired_standard_error([1.0, np.inf], [1.0, 2.0]), "a must be finite"),
        (lambda: ev.rmse_difference_standard_error(Y_TRUE, Y_TRUE, [1.0, 2.0, 3.0]), "an RMSE of 0 has no slope"),
        (lambda: ev.rmse_difference_standard_error(Y_TRUE, [1.0, 2.0], Y_TRUE), "y_true has 3 values but y_pred_a"),
    ],
)
def test_paired_standard_error_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------------------
# Binary classification

LABELS = [1, 1, 0, 0, 1, 0]
SCORES = [0.9, 0.4, 0.6, 0.1, 0.5, 0.5]


@pytest.mark.parametrize("metric", [ev.accuracy, ev.precision, ev.recall, ev.f1])
def test_classification_metrics_perfect(metric):
    assert metric(LABELS, LABELS) == 1.0
    assert metric(LABELS, [0.8, 0.7, 0.2, 0.0, 0.5, 0.49], threshold=0.5) == 1.0


@pytest.mark.parametrize("metric", [ev.accuracy, ev.precision, ev.recall, ev.f1])
def test_classification_metrics_all_wrong(metric):
    assert metric(LABELS, 1 - np.array(LABELS)) == 0.0


def test_classification_metrics_worked_example():
    # score >= 0.5 -> predicted [1, 0, 1, 0, 1, 1]: TP = 2 (rows 0, 4), FP = 2 (rows 2, 5), FN = 1 (row 1), TN = 1
    assert ev.accuracy(LABELS, SCORES, threshold=0.5) == 3 / 6
    assert ev.precision(LABELS, SCORES, threshold=0.5) == 2 / 4
    assert ev.recall(LABELS, SCORES, threshold=0.5) == 2 / 3
    assert ev.f1(LABELS, SCORES, threshold=0.5) == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert ev.f1(LABELS, SCORES, threshold=0.5) == pytest.approx(4 / 7)


def test_nothing_predicted_positive_gives_zero_not_nan():
    assert ev.precision(LABELS, [0] * 6) == 0.0
    assert ev.recall([0, 0], [1, 0]) == 0.0
    assert ev.f1([0, 0], [0, 0]) == 0.0


def test_accuracy_on_multiclass_labels():
    assert ev.accuracy([0, 2, 1, 2], [0, 2, 2, 1]) == 0.5


def test_roc_auc_perfect_reversed_and_tied():
    assert ev.roc_auc(LABELS, LABELS) == 1.0
    assert ev.roc_auc(LABELS, 1 - np.array(LABELS)) == 0.0
    assert ev.roc_auc(LABELS, [0.3] * 6) == 0.5


def test_roc_auc_worked_example_with_a_tie():
    # positives score 0.9, 0.4, 0.5; negatives 0.6, 0.1, 0.5. Pairs won: 0.9 beats all 3; 0.4 beats 0.1;
    # 0.5 beats 0.1 and ties 0.5 (a half): 3 + 1 + 1.5 = 5.5 of 9 pairs.
    assert ev.roc_auc(LABELS, SCORES) == pytest.approx(5.5 / 9)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ev.precision([0, 2], [0, 1]), "y_true must hold only 0 and 1, got 2 at position 1"),
        (lambda: ev.recall([0, 1], [0.3, 0.7]), r"y_pred \(labels, as no threshold is given\) must hold only 0 and 1"),
        (lambda: ev.f1([0, 1], [0.3, 0.7], threshold="0.5"), "threshold must be a finite number or None, got '0.5'"),
        (lambda: ev.accuracy([0, 1], [0.3, 0.7], threshold=np.nan), "threshold must be a finite number or None"),
        (lambda: ev.accuracy([0, 1], [0.3]), "y_true has 2 values but y_pred has 1"),
        (lambda: ev.roc_auc([1, 1], [0.3, 0.4]), "needs both classes in y_true, got 2 positives and 0 negatives"),
        (lambda: ev.roc_auc([1, 0], [0.3]), "y_true has 2 values but scores has 1"),
    ],
)
def test_classification_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------------------
# Leave-one-out ranking

# column 0 is the held-out positive; the positive ranks 1, 3, 2 (a tie counts against it) and 5
RANKED = np.array(
    [
        [0.9, 0.1, 0.2, 0.3, 0.4],
        [0.5, 0.6, 0.1, 0.7, 0.2],
        [0.3, 0.3, 0.1, 0.1, 0.1],
        [0.0, 0.1, 0.2, 0.3, 0.4],
    ]
)


def test_positive_ranks_count_ties_against_the_positive():
    np.testing.assert_array_equal(ev.positive_ranks(RANKED), [1, 3, 2, 5])
    np.testing.assert_array_equal(ev.positive_ranks(RANKED[:, 0], negative_scores=RANKED[:, 1:]), [1, 3, 2, 5])
    np.testing.assert_array_equal(ev.positive_ranks(np.zeros((2, 100))), [100, 100])


@pytest.mark.parametrize("metric", [ev.hit_rate_at_k, ev.ndcg_at_k])
def test_ranking_metrics_perfect_and_no_hits(metric):
    best = np.column_stack([np.ones(3), np.zeros((3, 99))])
    assert metric(best, 1) == 1.0
    assert metric(best, 10) == 1.0
    assert metric(1 - best, 10) == 0.0
    assert metric(np.zeros((3, 100)), 10) == 0.0  # constant scores get no credit


def test_hit_rate_worked_example():
    assert [ev.hit_rate_at_k(RANKED, k) for k in (1, 2, 3, 4, 5)] == [0.25, 0.5, 0.75, 0.75, 1.0]
    assert ev.hit_rate_at_k(RANKED[:, 0], 3, negative_scores=RANKED[:, 1:]) == 0.75


def test_ndcg_worked_example():
    # ranks 1, 3, 2, 5 -> gains 1/log2(2) = 1, 1/log2(4) = 0.5, 1/log2(3), and 0 beyond k = 3
    expected = (1 + 0.5 + 1 / math.log2(3) + 0) / 4
    assert ev.ndcg_at_k(RANKED, 3) == pytest.approx(expected)
    assert ev.ndcg_at_k(RANKED, 3) == pytest.approx(0.5327324)
    assert ev.ndcg_at_k(RANKED[:, 0], 3, negative_scores=RANKED[:, 1:]) == pytest.approx(expected)
    assert ev.ndcg_at_k(RANKED, 1) == 0.25


def test_ranking_standard_errors_worked_example():
    # ranks 1, 3, 2, 5 at k = 3: hits 1, 1, 1, 0 and gains 1, 1/log2(4), 1/log2(3), 0, one draw per user
    assert ev.hit_rate_standard_error(RANKED, 3) == pytest.approx(statistics.stdev([1, 1, 1, 0]) / 2)
    gains = [1, 0.5, 1 / math.log2(3), 0]
    assert ev.ndcg_standard_error(RANKED, 3) == pytest.approx(statistics.stdev(gains) / 2)
    assert ev.ndcg_standard_error(RANKED[:, 0], 3, negative_scores=RANKED[:, 1:]) == pytest.approx(
        statistics.stdev(gains) / 2
    )
    assert ev.hit_rate_standard_error(RANKED, 5) == 0.0  # every user a hit: no spread


def test_ranking_difference_standard_errors_pair_the_users():
    # RANKED has ranks 1, 3, 2, 5; reversing the users' negatives gives other ranks to the same users
    other = np.column_stack([RANKED[:, 0], RANKED[::-1, 1:]])
    hits = (ev.positive_ranks(RANKED) <= 3).astype(float), (ev.positive_ranks(other) <= 3).astype(float)
    assert ev.hit_rate_difference_standard_error(RANKED, other, 3) == pytest.approx(
        statistics.stdev(hits[0] - hits[1]) / 2
    )

    def gain(ranks):
        return np.where(ranks <= 3, 1 / np.log2(ranks + 1), 0.0)

    assert ev.ndcg_difference_standard_error(RANKED, other, 3) == pytest.approx(
        statistics.stdev(gain(ev.positive_ranks(RANKED)) - gain(ev.positive_ranks(other))) / 2
    )
    assert ev.hit_rate_difference_standard_error(RANKED, RANKED, 3) == 0.0
    with pytest.raises(ValueError, match=r"scores_a \(4, 5\) and scores_b \(4, 4\) must rank the same candidates"):
        ev.ndcg_difference_standard_error(RANKED, RANKED[:, :4], 3)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ev.hit_rate_standard_error(RANKED[:1], 3), "a standard error needs at least 2 users, got 1"),
        (lambda: ev.ndcg_standard_error(RANKED, 6), r"k=6 exceeds the 5 candidates per user"),
        (lambda: ev.hit_rate_at_k(RANKED, 0), "k must be an integer >= 1, got 0"),
        (lambda: ev.ndcg_at_k(RANKED, 2.0), r"k must be an integer >= 1, got 2.0"),
        (lambda: ev.hit_rate_at_k(RANKED, 6), r"k=6 exceeds the 5 candidates per user"),
        (lambda: ev.hit_rate_at_k(RANKED[:, 0], 1), r"scores must be 2-D \(users x candidates\)"),
        (lambda: ev.hit_rate_at_k(RANKED[:, :1], 1), r"at least one negative, got shape \(4, 1\)"),
        (lambda: ev.ndcg_at_k(np.zeros((0, 5)), 1), "scores hold no users"),
        (
            lambda: ev.ndcg_at_k(RANKED[:3, 0], 1, negative_scores=RANKED[:, 1:]),
            r"negative_scores 2-D \(n_users, n_negatives\), got \(3,\) and \(4, 4\)",
        ),
        (lambda: ev.positive_ranks([[0.1, np.nan]]), r"scores must be finite, got \[0.1, nan\] for user row 0"),
    ],
)
def test_ranking_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------------------
# Baselines

TRAIN = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 20, 10, 30], "rating": [4.0, 2.0, 5.0, 1.0]})
# user 9 and item 99 are unseen in training
TEST = pd.DataFrame({"user_id": [1, 2, 9, 3], "item_id": [30, 20, 10, 99]})


def test_global_mean():
    np.testing.assert_array_equal(ev.predict_global_mean(TRAIN, TEST), [3.0] * 4)


def test_user_mean_falls_back_to_the_global_mean():
    np.testing.assert_array_equal(ev.predict_user_mean(TRAIN, TEST), [3.0, 5.0, 3.0, 1.0])


def test_cold_items_mask_counts_training_ratings_per_item():
    # item 10 has 2 training ratings, 20 and 30 one each, 99 none
    np.testing.assert_array_equal(ev.cold_items_mask(TRAIN, TEST, max_ratings=1), [True, True, False, True])
    np.testing.assert_array_equal(ev.cold_items_mask(TRAIN, TEST, max_ratings=0), [False, False, False, True])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ev.cold_items_mask(TRAIN, TEST, max_ratings=-1), "max_ratings must be an integer >= 0"),
        (lambda: ev.cold_items_mask(TRAIN, TEST, max_ratings=1.5), "max_ratings must be an integer >= 0"),
        (lambda: ev.cold_items_mask(TRAIN.iloc[:0], TEST), "train is empty"),
        (lambda: ev.cold_items_mask(TRAIN, TEST.drop(columns="item_id")), r"test lacks column\(s\) \['item_id'\]"),
    ],
)
def test_cold_items_mask_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_item_mean_falls_back_to_the_global_mean():
    np.testing.assert_array_equal(ev.predict_item_mean(TRAIN, TEST), [1.0, 2.0, 4.5, 3.0])


def test_bias_one_sweep_worked_example():
    # mu = 3. Items first: b_10 = (1 + 2) / 2 = 1.5, b_20 = -1, b_30 = -2. Then users: b_1 = ((4 - 3 - 1.5)
    # + (2 - 3 + 1)) / 2 = -0.25, b_2 = 5 - 3 - 1.5 = 0.5, b_3 = 1 - 3 + 2 = 0; unseen user 9 / item 99: 0.
    predicted = ev.predict_bias(TRAIN, TEST, reg=0.0, sweeps=1)
    np.testing.assert_allclose(predicted, [3 - 0.25 - 2, 3 + 0.5 - 1, 3 + 1.5, 3 + 0])


def test_bias_recovers_additive_ratings_and_shrinks_to_the_mean():
    users, items = np.meshgrid(np.arange(5), np.arange(4), indexing="ij")
    frame = pd.DataFrame({"user_id": users.ravel(), "item_id": items.ravel()})
    frame["rating"] = 3.0 + 0.5 * frame["user_id"] - 0.25 * frame["item_id"]
    np.testing.assert_allclose(ev.predict_bias(frame, frame, reg=0.0, sweeps=2), frame["rating"])
    np.testing.assert_allclose(ev.predict_bias(frame, frame, reg=1e12), frame["rating"].mean())


def test_popularity_scores_keep_the_shape_of_the_candidates():
    candidates = np.array([[10, 20, 99], [30, 10, 10]])
    np.testing.assert_array_equal(ev.popularity_scores(TRAIN, candidates), [[2, 1, 0], [1, 2, 2]])
    assert ev.popularity_scores(TRAIN[["item_id"]], [30]).tolist() == [1]


def test_majority_class():
    assert ev.majority_class([0, 1, 1, 0, 1]) == 1
    assert ev.majority_class([2, 1, 2, 1]) == 1  # tie: the smallest label
    assert ev.majority_class(np.array(["a", "b", "b"])) == "b"


def test_an_empty_test_frame_gives_an_empty_prediction():
    assert ev.predict_bias(TRAIN, TEST.iloc[:0]).shape == (0,)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ev.predict_user_mean(TRAIN.drop(columns="rating"), TEST), r"train lacks column\(s\) \['rating'\]"),
        (lambda: ev.predict_item_mean(TRAIN, TEST.drop(columns="item_id")), r"test lacks column\(s\) \['item_id'\]"),
        (lambda: ev.predict_global_mean(TRAIN.iloc[:0], TEST), "train is empty"),
        (lambda: ev.predict_global_mean(TRAIN.to_numpy(), TEST), "train must be a pandas DataFrame, got ndarray"),
        (lambda: ev.predict_bias(TRAIN.assign(rating=np.nan), TEST), r"train\['rating'\] must be finite"),
        (lambda: ev.predict_bias(TRAIN, TEST, reg=-1.0), "reg must be a finite number >= 0, got -1.0"),
        (lambda: ev.predict_bias(TRAIN, TEST, sweeps=0), "sweeps must be an integer >= 1, got 0"),
        (lambda: ev.popularity_scores(TRAIN.iloc[:0], [10]), "train is empty"),
        (lambda: ev.majority_class([]), r"labels must be a non-empty 1-D array, got shape \(0,\)"),
    ],
)
def test_baseline_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
