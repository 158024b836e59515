"""The loop behind one hyperparameter tuning job, in its own thread: launch trials, watch them, learn, conclude.

The tuning job (``resources/tuning_jobs.py``) comes in through :class:`Tuning`, and trials are launched through a
``launch(request)`` callable that the handler gives: CreateTrainingJob run as a request would be, validated
against botocore's input shape first, so a trial is checked like any training job a caller creates.

With ``TrainingJobEarlyStoppingType: Auto`` the driver also reads each trial's objective, report by report, from
its log stream (the objective's metric definition applied to each line, as the final metrics are found) and
applies AWS's median stopping rule (:class:`MedianStopping`).
"""

from __future__ import annotations

import logging
import re
import statistics
import threading
from collections.abc import Callable
from typing import Protocol

import botocore.exceptions

from sagemaker_emulator.algorithms.failures import INTERNAL_ERROR, failure_reason
from sagemaker_emulator.algorithms.layout import CURRENT_HOST
from sagemaker_emulator.errors import ResourceLimitExceeded
from sagemaker_emulator.jobs.logs import TRAINING_GROUP
from sagemaker_emulator.jobs.tuning_search import Search
from sagemaker_emulator.state import RUNNING, EmulatorState

LOG = logging.getLogger(__name__)


class Tuning(Protocol):
    """What the driver reads and changes of its tuning job."""

    name: str
    params: dict
    creation_time: float
    stop_requested: threading.Event

    @property
    def objective(self) -> dict: ...

    def summaries(self) -> list[dict]: ...

    def best(self, summaries: list[dict]) -> dict | None: ...

    def trial_request(self, tuned: dict[str, str]) -> dict: ...

    def add_trial(self, name: str, tuned: dict[str, str]) -> None: ...

    def stop_trials(self) -> None: ...

    def objective_regex(self, trial: str) -> str | None: ...

    def stop_trial(self, trial: str, message: str) -> bool: ...

    def finish(self, status: str, reason: str | None = None) -> bool: ...


def start_tuning(
    state: EmulatorState,
    tuning: Tuning,
    search: Search,
    budget: int,
    parallel: int,
    launch: Callable[[dict], object],
) -> threading.Thread:
    driver = TuningDriver(state, tuning, search, budget, parallel, launch)
    thread = threading.Thread(target=driver.run, name=f"tuning:{tuning.name}", daemon=True)
    thread.start()
    return thread


def completion_met(tuning: Tuning, summaries: list[dict]) -> bool:
    """``TuningJobCompletionCriteria``: the target objective reached, or the best not improved for N jobs."""
    criteria = tuning.params["HyperParameterTuningJobConfig"].get("TuningJobCompletionCriteria", {})
    best = tuning.best(summaries)
    minimize = tuning.objective["Type"] == "Minimize"
    if best is not None and "TargetObjectiveMetricValue" in criteria:
        value = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        target = criteria["TargetObjectiveMetricValue"]
        if (minimize and value <= target) or (not minimize and value >= target):
            return True
    patience = criteria.get("BestObjectiveNotImproving", {}).get("MaxNumberOfTrainingJobsNotImproving")
    if best is None or not patience:
        return False
    finished = [s for s in summaries if s["ObjectiveStatus"] != "Pending"]
    best_at = next(i for i, s in enumerate(finished) if s["TrainingJobName"] == best["TrainingJobName"])
    return len(finished) - 1 - best_at >= patience


class InOrderFeed:
    """Tells the search the trials' results in launch order, and only those of trials launched ``parallel`` or more
    places before the next one, which is proposed once all of those are in. Each proposal then sees the same results
    whichever training job happened to finish first, so a tuning job with a ``RandomSeed`` proposes the same trials
    every time (AWS only promises "more consistent" ones); the price is that a freed slot may wait for the oldest
    running trial."""

    def __init__(self, search: Search, parallel: int):
        self.search, self.parallel = search, parallel
        self.told = 0  # the first ``told`` trials' results are in the search

    def learn(self, summaries: list[dict]) -> None:
        limit = len(summaries) - self.parallel + 1
        while self.told < limit and summaries[self.told]["ObjectiveStatus"] != "Pending":
            metric = summaries[self.told].get("FinalHyperParameterTuningJobObjectiveMetric")
            self.search.report(summaries[self.told]["TunedHyperParameters"], metric["Value"] if metric else None)
            self.told += 1

    def may_suggest(self, launched: int) -> bool:
        return self.told >= launched - self.parallel + 1


class TrialLogs:
    """The objective's values in each trial's log, in the order the trial reported them (one per epoch)."""

    def __init__(self, client, tuning: Tuning):
        self.client, self.tuning = client, tuning
        self.series: dict[str, list[float]] = {}
        self._tokens: dict[str, str] = {}  # log stream → the token after the last event read
        self._patterns: dict[str, re.Pattern] = {}

    def read(self, trial: str) -> list[float]:
        """The trial's values so far (new log events are read first)."""
        values = self.series.setdefault(trial, [])
        pattern = self._pattern(trial)
        if pattern is None:
            return values
        for line in self._new_lines(trial):
            match = pattern.search(line)
            if match is None:
                continue
            try:
                values.append(float(match.group(1) if pattern.groups else match.group(0)))
            except (ValueError, IndexError):
                continue
        return values

    def _pattern(self, trial: str) -> re.Pattern | None:
        if trial not in self._patterns:
            regex = self.tuning.objective_regex(trial)
            if regex is None:
                return None
            try:
                self._patterns[trial] = re.compile(regex)
            except re.error:
                return None
        return self._patterns[trial]

    def _new_lines(self, trial: str) -> list[str]:
        try:
            streams = self.client.describe_log_streams(
                logGroupName=TRAINING_GROUP, logStreamNamePrefix=f"{trial}/{CURRENT_HOST}-"
            )["logStreams"]
        except botocore.exceptions.ClientError:  # no log group yet: no trial has logged
            return []
        lines = []
        for stream in sorted(s["logStreamName"] for s in streams):
            while True:
                request = {"logGroupName": TRAINING_GROUP, "logStreamName": stream, "startFromHead": True}
                if stream in self._tokens:
                    request["nextToken"] = self._tokens[stream]
                answer = self.client.get_log_events(**request)
                lines += [event["message"] for event in answer["events"]]
                done = answer["nextForwardToken"] == self._tokens.get(stream) or not answer["events"]
                self._tokens[stream] = answer["nextForwardToken"]
                if done:
                    break
        return lines


class MedianStopping:
    """AWS's rule for ``TrainingJobEarlyStoppingType: Auto`` (automatic-model-tuning-early-stopping): after each
    epoch N of a running trial, take the running average of the objective over epochs 1..N of every earlier trial
    that reached epoch N, and stop the trial if its value at epoch N is worse than the median of those averages.
    A trial with no earlier trial at an epoch is not judged there."""

    def __init__(self, tuning: Tuning, logs: TrialLogs):
        self.tuning, self.logs = tuning, logs
        self.minimize = tuning.objective["Type"] == "Minimize"
        self.judged: dict[str, int] = {}  # trial → how many of its epochs were judged
        self.finished: set[str] = set()  # trials whose whole log was read after they ended

    def check(self, summaries: list[dict]) -> None:
        """Read the trials' new values and stop each running trial that the rule condemns."""
        for index, summary in enumerate(summaries):
            name = summary["TrainingJobName"]
            if name in self.finished:
                continue
            values = self.logs.read(name)
            if summary["TrainingJobStatus"] not in RUNNING:
                self.finished.add(name)
            elif summary["TrainingJobStatus"] == "InProgress":
                self._judge(name, values, [s["TrainingJobName"] for s in summaries[:index]])

    def _judge(self, name: str, values: list[float], earlier: list[str]) -> None:
        for epoch in range(self.judged.get(name, 0) + 1, len(values) + 1):
            self.judged[name] = epoch
            averages = [
                statistics.fmean(series[:epoch])
                for series in (self.logs.series.get(e, []) for e in earlier)
                if len(series) >= epoch
            ]
            if not averages:
                continue
            median, value = statistics.median(averages), values[epoch - 1]
            if (value > median) if self.minimize else (value < median):
                metric = self.tuning.objective["MetricName"]
                message = (
                    f"Stopped early by hyperparameter tuning job {self.tuning.name} (TrainingJobEarlyStoppingType "
                    f"Auto): {metric} at epoch {epoch} was {value:g}, "
                    f"{'above' if self.minimize else 'below'} {median:g}, the median of {len(averages)} earlier "
                    f"training jobs' running averages at that epoch."
                )
                if self.tuning.stop_trial(name, message):
                    LOG.info("training job %s: %s", name, message)
                return


class TuningDriver:
    """The loop behind one tuning job, in its own thread: launch, watch, learn, conclude."""

    def __init__(
        self,
        state: EmulatorState,
        tuning: Tuning,
        search: Search,
        budget: int,
        parallel: int,
        launch: Callable[[dict], object],
    ):
        self.search, self.launch = search, launch
        self.state, self.tuning, self.budget, self.parallel = state, tuning, budget, parallel
        config = tuning.params["HyperParameterTuningJobConfig"]
        self.max_runtime = config["ResourceLimits"].get("MaxRuntimeInSeconds")
        self.feed = InOrderFeed(self.search, parallel)
        self.exhausted = False
        self.next_trial: dict[str, str] | None = None
        self.early_stopping: MedianStopping | None = None
        if config.get("TrainingJobEarlyStoppingType") == "Auto":
            logs = TrialLogs(state.services.client("logs", state.region), tuning)
            self.early_stopping = MedianStopping(tuning, logs)

    def run(self) -> None:
        try:
            self._loop()
        except Exception as error:  # a bug must not leave the tuning job InProgress for ever
            LOG.exception("tuning job %s failed", self.tuning.name)
            self.tuning.stop_trials()
            self.tuning.finish("Failed", failure_reason(INTERNAL_ERROR, f"{type(error).__name__}: {error}"))

    def _loop(self) -> None:
        tuning = self.tuning
        while not self.state.retired.is_set():
            summaries = tuning.summaries()
            if self.early_stopping is not None and not tuning.stop_requested.is_set():
                self.early_stopping.check(summaries)
            self.feed.learn(summaries)
            running = sum(1 for s in summaries if s["TrainingJobStatus"] in RUNNING)
            if tuning.stop_requested.is_set() or self._out_of_time():
                tuning.stop_trials()
                if running == 0:
                    self._conclude(summaries, stopped=tuning.stop_requested.is_set())
                    return
            elif self._budget_spent(summaries) or completion_met(tuning, summaries):
                if running == 0:
                    self._conclude(summaries, stopped=False)
                    return
                if completion_met(tuning, summaries):
                    tuning.stop_trials()
            elif running < self.parallel and self.feed.may_suggest(len(summaries)):
                self._launch()
            tuning.stop_requested.wait(self.state.services.timings.tuning_poll_seconds)

    def _out_of_time(self) -> bool:
        return self.max_runtime is not None and self.state.now() - self.tuning.creation_time > self.max_runtime

    def _budget_spent(self, summaries: list[dict]) -> bool:
        return len(summaries) >= self.budget or self.exhausted

    def _launch(self) -> None:
        tuning = self.tuning
        if self.next_trial is None:
            self.next_trial = self.search.suggest()
            if self.next_trial is None:
                self.exhausted = True
                return
        request = tuning.trial_request(self.next_trial)
        try:
            self.launch(request)
        except ResourceLimitExceeded:  # other training jobs hold the quota: try again on the next round
            return
        tuning.add_trial(request["TrainingJobName"], self.next_trial)
        self.next_trial = None

    def _conclude(self, summaries: list[dict], stopped: bool) -> None:
        tuning = self.tuning
        if stopped:
            tuning.finish("Stopped")
        elif tuning.best(summaries) is not None:
            tuning.finish("Completed")
        else:
            metric = tuning.objective["MetricName"]
            first = next((s.get("FailureReason") for s in summaries if s.get("FailureReason")), None)
            reason = f"No training job reported the objective metric {metric}."
            if first:
                reason += f" The first failure: {first}"
            tuning.finish("Failed", reason)
