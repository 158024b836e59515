"""common.scale: size-driven parameters keep the small datasets' settings and shrink at ml-20m's size."""

from __future__ import annotations

import pytest

from common import scale

ML_LATEST_SMALL = 100_836
ML_20M = 20_000_263


@pytest.mark.parametrize(
    ("n_ratings", "expected"),
    [
        pytest.param(
            ML_LATEST_SMALL,
            scale.Sizes(
                epochs=10,
                batch_size=1024,
                ncf_epochs=20,
                ncf_batch_size=4096,
                implicit_negatives=8,
                negative_sampling_power=0.0,
                tuning_jobs=12,
                o2v_epochs=8,
                tsne_movies=5_000,
                history_ratings=1_000_000,
                embedder_storage="dense",
            ),
            id="ml-latest-small keeps the settings chosen on it",
        ),
        pytest.param(
            ML_20M,
            scale.Sizes(
                epochs=5,
                batch_size=25_000,
                ncf_epochs=2,
                ncf_batch_size=65_536,
                implicit_negatives=2,
                negative_sampling_power=0.5,
                tuning_jobs=4,
                o2v_epochs=2,
                tsne_movies=5_000,
                history_ratings=1_000_000,
                embedder_storage="row_sparse",
            ),
            id="ml-20m gets 1b section 8's settings and fewer passes elsewhere",
        ),
    ],
)
def test_sizes_follow_the_number_of_ratings(n_ratings, expected):
    assert scale.for_size(n_ratings) == expected


def test_a_huge_dataset_stops_at_the_floors():
    sizes = scale.for_size(10**9)
    assert (sizes.epochs, sizes.ncf_epochs, sizes.implicit_negatives, sizes.tuning_jobs, sizes.o2v_epochs) == (
        2,
        2,
        1,
        4,
        2,
    )


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "100"])
def test_a_size_that_is_not_a_positive_integer_is_refused(bad):
    with pytest.raises(ValueError, match="n_ratings must be a positive integer"):
        scale.for_size(bad)


def test_full_scale_is_ml_20m_on_aws_and_the_stand_in_locally_without_the_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("WORKSHOP_DATA_MIRROR", raising=False)
    assert scale.full_scale_dataset("aws") == "ml-20m"
    assert scale.full_scale_dataset("local") == "synthetic-20m"
    (tmp_path / "ml-20m.zip").write_bytes(b"")
    assert scale.full_scale_dataset("local") == "ml-20m"


def test_a_mirror_makes_ml_20m_the_local_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WORKSHOP_DATA_MIRROR", str(tmp_path / "share"))
    assert scale.full_scale_dataset("local") == "ml-20m"


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode must be 'aws' or 'local', not"):
        scale.full_scale_dataset("cloud")


def test_the_weight_decay_per_step_shrinks_as_the_batch_grows():
    assert scale.step_weight_decay(1e-4, scale.RATING_BATCH) == 1e-4
    assert scale.step_weight_decay(1e-4, scale.for_size(20_000_263).batch_size) == pytest.approx(1e-4 * 1024 / 25_000)


def test_the_embedder_keeps_dense_tables_up_to_a_million_ratings():
    assert scale.for_size(1_000_000).embedder_storage == "dense"  # ml-1m's 1,000,209 ratings are just beyond
    assert scale.for_size(1_000_001).embedder_storage == "row_sparse"


@pytest.mark.parametrize(
    ("n_ratings", "power"),
    [(5_500_000, 0.0), (5_500_001, 0.5)],
    ids=["uniform while 8 negatives per rating are drawn", "by popularity once fewer are"],
)
def test_negatives_follow_popularity_once_they_are_scarce(n_ratings, power):
    assert scale.for_size(n_ratings).negative_sampling_power == power
