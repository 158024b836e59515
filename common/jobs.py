"""Wait for a SageMaker training job with one progress bar instead of its whole log.

A built-in algorithm's log runs to hundreds of lines per job; in a notebook they bury the result. While the job
runs, :func:`follow` reads the log from CloudWatch Logs (as the SDK's ``logs=True`` would) but shows only a bar:
the share of epochs done (the algorithms' ``#progress_metric`` lines), the job's secondary status and the latest
metric line. At the end it prints one line: status, training and billable seconds, and where the full log is;
:func:`print_log` prints that log when you want it. :func:`follow_tuning` does the same for a tuning job: one bar of
its training jobs, where the SDK's ``wait`` redraws a live panel four times a second, a stream of display messages
that on a busy machine outruns a notebook's output channel and loses the cell's end. Works the same on AWS and in
local mode.
"""

from __future__ import annotations

import re
import sys
import time

import boto3
from tqdm import tqdm

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ENDED = ("Completed", "Failed", "Stopped")  # training and tuning jobs alike
POLL_SECONDS = 2.0
TUNING_POLL_SECONDS = 5.0
TRIALS_ENDED = ("Completed", "NonRetryableError", "Stopped")  # TrainingJobStatusCounters of trials that ended
PROGRESS = re.compile(r"#progress_metric: .*completed (\d+(?:\.\d+)?) %")
EPOCH_METRIC = re.compile(r"epoch[= ]?(\d+)\S*,? (.*)")  # "#quality_metric: host=algo-1, epoch=3, train rmse ..."
SHOWN_FAILURE_LINES = 10


def _streams(logs, job_name: str) -> list[str]:
    try:
        found = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/")
    except logs.exceptions.ResourceNotFoundException:  # an account's first job: the group comes with its first line
        return []
    return [stream["logStreamName"] for stream in found["logStreams"]]


def _new_lines(logs, stream: str, token: str | None) -> tuple[list[str], str | None]:
    """The lines of ``stream`` after ``token``, every page, and the token to continue from."""
    lines = []
    while True:
        page = logs.get_log_events(
            logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True, **({"nextToken": token} if token else {})
        )
        lines += [event["message"] for event in page["events"]]
        if page["nextForwardToken"] == token or not page["events"]:
            return lines, page["nextForwardToken"]
        token = page["nextForwardToken"]


def _latest_metric(lines: list[str]) -> str | None:
    for line in reversed(lines):
        match = EPOCH_METRIC.search(line)
        if match and "=" in match.group(2) and "batch=" not in line:  # per-epoch lines, not per-batch ones
            return f"epoch {match.group(1)}: " + re.sub(r"#quality_metric: host=\S+, |\s*<\w+>", "", match.group(2))
    return None


def follow(job_name: str, poll_seconds: float = POLL_SECONDS) -> dict:
    """Wait until the training job ends, showing a progress bar; return its DescribeTrainingJob answer.

    Prints the job's status, training and billable seconds, and where its full log is; for a failed job also its
    ``FailureReason`` and the last lines of its log.
    """
    sm, logs = boto3.client("sagemaker"), boto3.client("logs")
    tokens: dict[str, str | None] = {}
    tail: list[str] = []
    bar = tqdm(total=100, desc=job_name, unit="%", file=sys.stdout, bar_format="{desc} {bar:20} {n:.0f}%{postfix}")
    while True:
        job = sm.describe_training_job(TrainingJobName=job_name)
        for stream in _streams(logs, job_name):
            lines, tokens[stream] = _new_lines(logs, stream, tokens.get(stream))
            tail = (tail + lines)[-SHOWN_FAILURE_LINES:]
            done = [float(match.group(1)) for line in lines if (match := PROGRESS.search(line))]
            if done:
                bar.update(min(done[-1], 100.0) - bar.n)
            metric = _latest_metric(lines)
            if metric:
                bar.set_postfix_str(f"{job['SecondaryStatus']} · {metric}", refresh=False)
        if job["TrainingJobStatus"] in ENDED:
            break
        bar.set_postfix_str(bar.postfix or job["SecondaryStatus"])
        time.sleep(poll_seconds)
    if job["TrainingJobStatus"] == "Completed":
        bar.update(100 - bar.n)
    bar.close()
    print(
        f"{job['TrainingJobStatus']}: {job.get('TrainingTimeInSeconds', 0)} s of training, "
        f"{job.get('BillableTimeInSeconds', 0)} s billable. Full log: CloudWatch Logs {LOG_GROUP}, "
        f"stream {job_name}/...; print it with jobs.print_log({job_name!r})."
    )
    if job["TrainingJobStatus"] == "Failed":
        print("FailureReason:", job.get("FailureReason"), "\nLast log lines:\n  " + "\n  ".join(tail))
    return job


def follow_tuning(tuning_job_name: str, poll_seconds: float = TUNING_POLL_SECONDS) -> dict:
    """Wait until the tuning job ends, showing one bar of its training jobs; return its DescribeHyperParameterTuningJob
    answer.

    The bar moves when a training job ends and shows the best objective so far; at the end one line gives the
    status and the training jobs' counters (and the ``FailureReason`` of a failed tuning job).
    """
    sm = boto3.client("sagemaker")
    job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job_name)
    budget = job["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    bar = tqdm(
        total=budget, desc=tuning_job_name, file=sys.stdout, bar_format="{desc} {bar:20} {n}/{total} jobs{postfix}"
    )
    while True:
        counters = job["TrainingJobStatusCounters"]
        bar.update(sum(counters.get(status, 0) for status in TRIALS_ENDED) - bar.n)
        if "BestTrainingJob" in job:
            best = job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]
            bar.set_postfix_str(f"best {best['MetricName']} {best['Value']:.4f}")
        if job["HyperParameterTuningJobStatus"] in ENDED:
            break
        time.sleep(poll_seconds)
        job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job_name)
    bar.close()
    print(f"{job['HyperParameterTuningJobStatus']}: training jobs {counters}")
    if job["HyperParameterTuningJobStatus"] == "Failed":
        print("FailureReason:", job.get("FailureReason"))
    return job


def print_log(job_name: str) -> None:
    """Print the training job's whole log, as CloudWatch Logs holds it."""
    logs = boto3.client("logs")
    for stream in _streams(logs, job_name):
        print("\n".join(_new_lines(logs, stream, None)[0]))


def latest_job_name(base_job_name: str) -> str:
    """The newest training job whose name starts with ``base_job_name`` (``ModelTrainer.train`` returns nothing)."""
    sm = boto3.client("sagemaker")
    found = sm.list_training_jobs(NameContains=base_job_name, SortBy="CreationTime", SortOrder="Descending")
    names = [
        job["TrainingJobName"]
        for job in found["TrainingJobSummaries"]
        if job["TrainingJobName"].startswith(base_job_name)
    ]
    if not names:
        raise LookupError(f"No training job is named {base_job_name}-...: did ModelTrainer.train() run?")
    return names[0]
