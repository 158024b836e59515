"""``List*`` operations of features the emulator does not host, answered empty, as AWS answers an account without them.

SDK code calls them on the way to something the emulator does: SDK v2's ``Predictor.delete_endpoint`` lists the
endpoint's monitoring schedules (``list_monitors``) before deleting it, and endpoint clean-up code lists an
endpoint's inference components. Creating either resource is not emulated (``UnknownOperationException``).
"""

from __future__ import annotations

from sagemaker_emulator.operations import operation
from sagemaker_emulator.resources.listing import decode_token
from sagemaker_emulator.state import EmulatorState


@operation("ListMonitoringSchedules")
def list_monitoring_schedules(state: EmulatorState, params: dict) -> dict:
    decode_token(params.get("NextToken"), params)
    return {"MonitoringScheduleSummaries": []}


@operation("ListInferenceComponents")
def list_inference_components(state: EmulatorState, params: dict) -> dict:
    decode_token(params.get("NextToken"), params)
    return {"InferenceComponents": []}
