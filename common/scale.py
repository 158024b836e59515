"""The original workshop's scale as one switch, and the parameters that must change with the data's size.

The workshop this project renews ran on MovieLens 20M (20,000,263 ratings). Our labs default to ml-latest-small
(100,836), where every lab's settings were chosen. At 200 times the ratings some settings must shrink so a run still
fits an afternoon on 2 cores: the passes over the data, the negatives drawn per rating, the tuning trials and the
points t-SNE maps. :func:`for_size` chooses them from the number of ratings, by budgets, each capped at the value
chosen on ml-latest-small, so every dataset up to about a million ratings runs exactly as before.

Full scale (``full_scale = True`` in a lab's parameters): ml-20m, several CPU instances per FM and k-NN job reading
their share of the files (``ShardedByS3Key``; both algorithms train data-parallel on AWS), and Object2Vec on a G4dn
GPU (single instance only: ``/work/shared/reference/sagemaker-object2vec-contract.md``, "Instances": CPU or GPU
P2/P3/G4dn/G5, not parallelizable across instances). :func:`full_scale_dataset` gives
the local stand-ins where the emulator or the machine lacks what AWS has.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import settings

FULL_SCALE_DATASET = "ml-20m"
LOCAL_STAND_IN = "synthetic-20m"  # ml-20m's exact shape, generated: for machines without the download
FULL_SCALE_INSTANCES = 2  # per FM and k-NN training job at full scale
FULL_SCALE_GPU_INSTANCE = (
    "ml.g4dn.xlarge"  # Object2Vec and 1b's DMF job: 1 T4 GPU, $0.7364/h against ml.p3.2xlarge's $3.825/h
)
FULL_SCALE_CPU_INSTANCE = "ml.c5.2xlarge"  # FM and k-NN training at full scale: 8 vCPUs, 16 GiB
FULL_SCALE_INFERENCE_INSTANCE = "ml.c5.xlarge"  # endpoints and batch transform at full scale: 4 vCPUs

# Budgets, in rating-passes per run of a step; each rule is min(cap, budget // ratings), floored.
RATING_PASSES = 110_000_000  # 1b's rating models: 10 epochs up to 11M ratings, 5 at ml-20m's 20.0M
NCF_PASSES = 40_000_000  # 1b's NeuMF (5 samples per rating each epoch): 20 epochs at 2M, 2 at 20M
IMPLICIT_ROWS = 44_000_000  # 1a's implicit training file: 8 negatives per rating up to 5.5M ratings, 2 at 20M
# 1a's negatives are drawn in proportion to (a movie's ratings) ** this power once fewer than 8 per rating are drawn;
# uniformly (power 0) before. On synthetic-20m's validation split (benchmarks/negative_sampling.py, 2026-12-07, 2
# negatives per rating, epochs 1-5) FM's NDCG@10 lead over popularity went up and down between +0.0033 and +0.0160
# with uniform negatives and between +0.0270 and +0.0460 with power 0.5.
SCARCE_NEGATIVES_POWER = 0.5
MOST_NEGATIVES = 8  # 1a's negatives per rating, chosen on ml-latest-small
TUNING_PASSES = 24_000_000  # 1a's tuning job: 12 trials up to 2M ratings, 4 (the floor) at 20M
O2V_PASSES = 40_000_000  # Lab 2's quick runs: 8 epochs up to 5M ratings, 2 at 20M (4-5 min each on 2 cores)
TSNE_MOVIES = 5_000  # t-SNE is quadratic in its points: 5,000 take about a minute on 2 cores
HISTORY_RATINGS = 1_000_000  # Lab 2's Lambda catalogue: the users' ratings it keeps (13.7 MB of JSON at synthetic-20m)
DENSE_EMBEDDING_RATINGS = 1_000_000  # Lab 2's embedder: dense embedding tables up to here, row_sparse beyond
RATING_BATCH = 1024  # 1b's rating models' batch on ml-latest-small, where their weight decay was chosen


@dataclass(frozen=True)
class Sizes:
    """Parameters chosen from the data's size (see :func:`for_size` for each rule)."""

    epochs: int
    batch_size: int
    ncf_epochs: int
    ncf_batch_size: int
    implicit_negatives: int
    negative_sampling_power: float
    tuning_jobs: int
    o2v_epochs: int
    tsne_movies: int
    history_ratings: int
    embedder_storage: str


def _budget(budget: int, ratings: int, floor: int, cap: int) -> int:
    return max(floor, min(cap, budget // ratings))


def for_size(n_ratings: int) -> Sizes:
    """The size-driven parameters for a dataset of ``n_ratings`` ratings.

    Each rule keeps the value chosen on ml-latest-small (the cap) while the data are small, and shrinks it so the
    step's work stays within a budget of rating-passes (the module's constants) as the data grow:
    epochs = max(2, min(10, 110M // n)); batch_size = max(1024, n // 800) (about 800 steps per epoch at most);
    ncf_epochs = max(2, min(20, 40M // n)); ncf_batch_size = 4096 * max(1, min(16, n // 1M));
    implicit_negatives = max(1, min(8, 44M // n)); negative_sampling_power = 0 (uniform) while that is 8, else 0.5:
    with a few negatives spread evenly over 26,744 movies, a movie rated 50,000 times meets about 1,500 of them, so
    its score saturates and ranking the most rated movies against each other is left to chance; drawing negatives
    by the square root of the movies' ratings gives those movies enough (as word2vec draws by frequency ** 0.75);
    tuning_jobs = max(4, min(12, 24M // n));
    o2v_epochs = max(2, min(8, 40M // n)); tsne_movies = 5,000; history_ratings = 1M (the ratings of whole users
    Lab 2's catalogue keeps for its Lambda functions: every user's up to 1M ratings, a random sample beyond);
    embedder_storage = "dense" up to 1M ratings, else "row_sparse": with dense tables Adam updates every user's and
    movie's weights at every step, so an epoch costs steps x table size; at ml-20m's shape (67,400 steps of 256,
    42M weights) the embedder's first epoch had not ended after 33 minutes (synthetic-20m, 2026-12-07), while
    row_sparse updates the batch's rows only (Lab 2's other quick runs do so at every size).
    A larger batch needs a smaller weight decay per step: see :func:`step_weight_decay`.

    Raises:
        ValueError: ``n_ratings`` is not a positive integer.
    """
    if isinstance(n_ratings, bool) or not isinstance(n_ratings, int) or n_ratings < 1:
        raise ValueError(f"n_ratings must be a positive integer, got {n_ratings!r}")
    negatives = _budget(IMPLICIT_ROWS, n_ratings, 1, MOST_NEGATIVES)
    return Sizes(
        epochs=_budget(RATING_PASSES, n_ratings, 2, 10),
        batch_size=max(RATING_BATCH, n_ratings // 800),
        ncf_epochs=_budget(NCF_PASSES, n_ratings, 2, 20),
        ncf_batch_size=4096 * max(1, min(16, n_ratings // 1_000_000)),
        implicit_negatives=negatives,
        negative_sampling_power=0.0 if negatives == MOST_NEGATIVES else SCARCE_NEGATIVES_POWER,
        tuning_jobs=_budget(TUNING_PASSES, n_ratings, 4, 12),
        o2v_epochs=_budget(O2V_PASSES, n_ratings, 2, 8),
        tsne_movies=TSNE_MOVIES,
        history_ratings=HISTORY_RATINGS,
        embedder_storage="dense" if n_ratings <= DENSE_EMBEDDING_RATINGS else "row_sparse",
    )


def step_weight_decay(weight_decay: float, batch_size: int) -> float:
    """The decay chosen at ``RATING_BATCH`` for a batch of ``batch_size``: ``weight_decay * 1024 / batch_size``.

    The optimiser decays every row of a batch once per step, while a row's share of the batch-averaged loss gradient
    shrinks as 1 / batch size; scaling the decay keeps the two in the balance they were chosen in. Unscaled at
    ml-20m's batch of 25,000, the decay was 24 times too strong: MF's validation RMSE stayed at 0.968, behind the
    per-user mean's 0.924 (scaled: 0.693 after 3 epochs; synthetic-20m, 2026-12-07).
    """
    return weight_decay * RATING_BATCH / batch_size


def full_scale_dataset(mode: str) -> str:
    """ml-20m on AWS; locally ml-20m when its archive is cached or a mirror is set, else its synthetic stand-in.

    Raises:
        ValueError: ``mode`` is neither ``"aws"`` nor ``"local"``.
    """
    _check_mode(mode)
    current = settings()
    downloaded = (current.data_dir / f"{FULL_SCALE_DATASET}.zip").is_file() or current.data_mirror is not None
    return FULL_SCALE_DATASET if mode == "aws" or downloaded else LOCAL_STAND_IN


def _check_mode(mode: str) -> None:
    if mode not in ("aws", "local"):
        raise ValueError(f"mode must be 'aws' or 'local', not {mode!r}")
