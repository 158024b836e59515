"""Tags on any resource by ARN: AddTags (merges by key), DeleteTags, ListTags (paginated)."""

from __future__ import annotations

from sagemaker_emulator.errors import ValidationException
from sagemaker_emulator.operations import operation
from sagemaker_emulator.resources.listing import paginate
from sagemaker_emulator.state import EmulatorState, Resource

MAX_TAGS = 50


def _resource(state: EmulatorState, arn: str) -> Resource:
    found = state.find_by_arn(arn)
    if found is None:
        raise ValidationException(f"Resource {arn} does not exist.")
    return found


@operation("AddTags")
def add_tags(state: EmulatorState, params: dict) -> dict:
    resource = _resource(state, params["ResourceArn"])
    with resource.lock:
        merged = {tag["Key"]: tag for tag in resource.tags}
        merged.update({tag["Key"]: tag for tag in params["Tags"]})
        if len(merged) > MAX_TAGS:
            raise ValidationException(
                f"Resource {resource.arn} would have {len(merged)} tags; a resource can have at most {MAX_TAGS}."
            )
        resource.tags = list(merged.values())
    return {"Tags": params["Tags"]}


@operation("DeleteTags")
def delete_tags(state: EmulatorState, params: dict) -> dict:
    resource = _resource(state, params["ResourceArn"])
    with resource.lock:
        resource.tags = [tag for tag in resource.tags if tag["Key"] not in set(params["TagKeys"])]
    return {}


@operation("ListTags")
def list_tags(state: EmulatorState, params: dict) -> dict:
    resource = _resource(state, params["ResourceArn"])
    with resource.lock:
        tags = list(enumerate(resource.tags))
    return paginate(
        tags, params, "Tags", lambda tag: [tag[0], tag[1]["Key"]], default_max=MAX_TAGS, render=lambda tag: tag[1]
    )
