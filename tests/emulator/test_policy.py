"""sagemaker_emulator.iam.policy and ``python -m sagemaker_emulator policy``: recorded actions to a least-privilege
policy (scoped to the bucket, the lab* names, the region and account), the template kept in step, and the guard."""

from __future__ import annotations

import json

from sagemaker_emulator.__main__ import main
from sagemaker_emulator.iam.evaluation import evaluate
from sagemaker_emulator.iam.policy import BEGIN, END, build, fill, generalise, missing, template_policy

BUCKET = "sagemaker-us-east-1-123456789012"
ROLE = "arn:aws:iam::123456789012:role/SageMakerWorkshopRole"
SCOPE = {"bucket": BUCKET, "role_arn": ROLE, "prefix": "lab", "region": "us-east-1"}
RECORD = [
    {"service": "s3", "action": "s3:PutObject", "resource": f"arn:aws:s3:::{BUCKET}/lab1-fm-1/train/a.pbr"},
    {"service": "s3", "action": "s3:GetObject", "resource": f"arn:aws:s3:::{BUCKET}/lab2-o2v-2/model.tar.gz"},
    {"service": "s3", "action": "s3:ListBucket", "resource": f"arn:aws:s3:::{BUCKET}"},
    {
        "service": "sagemaker",
        "action": "sagemaker:CreateTrainingJob",
        "resource": "arn:aws:sagemaker:us-east-1:123456789012:training-job/lab1-fm-1-classifier-2026",
    },
    {"service": "iam", "action": "iam:PassRole", "resource": ROLE},
    {"service": "sagemaker", "action": "sagemaker:ListModels", "resource": "*"},
    {
        "service": "logs",
        "action": "logs:CreateLogGroup",
        "resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/lab1-fm-1-classifier:*",
    },
]
STACK = {
    "Bucket": "workshop-bucket-x",
    "Role.Arn": "arn:aws:iam::999999999999:role/workshop-Role",
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "999999999999",
}


def test_resources_are_generalised_to_the_bucket_the_lab_prefix_the_region_and_the_account():
    assert generalise(RECORD[0]["resource"], **SCOPE) == "arn:${AWS::Partition}:s3:::${Bucket}/lab*"
    assert generalise(RECORD[2]["resource"], **SCOPE) == "arn:${AWS::Partition}:s3:::${Bucket}"
    assert generalise(RECORD[3]["resource"], **SCOPE) == (
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:training-job/lab*"
    )
    assert generalise(RECORD[4]["resource"], **SCOPE) == "${Role.Arn}"
    assert generalise(RECORD[6]["resource"], **SCOPE) == (
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/sagemaker/Endpoints/lab*:*"
    )
    other = "arn:aws:sagemaker:us-east-1:123456789012:model/not-a-lab"
    assert generalise(other, **SCOPE).endswith(":model/not-a-lab")


def test_the_built_policy_grants_the_record_in_another_account_and_nothing_beyond_it():
    policy = fill(build(RECORD, **SCOPE), STACK)
    moved = [{**e, "resource": e["resource"].replace(BUCKET, STACK["Bucket"])} for e in RECORD[:3]]
    assert missing(moved, policy) == []
    assert evaluate({"p": policy}, "s3:GetObject", "arn:aws:s3:::workshop-bucket-x/lab9-x/y").decision == "allowed"
    assert evaluate({"p": policy}, "s3:GetObject", "arn:aws:s3:::workshop-bucket-x/private").decision != "allowed"
    assert evaluate({"p": policy}, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/lab1-fm-1/x").decision != "allowed"
    assert evaluate({"p": policy}, "sagemaker:DeleteModel", "*").decision != "allowed"
    assert evaluate({"p": policy}, "iam:PassRole", "arn:aws:iam::999999999999:role/admin").decision != "allowed"


def test_statement_ids_are_unique():
    sids = [s["Sid"] for s in build(RECORD, **SCOPE)["Statement"]]
    assert len(sids) == len(set(sids))


def test_an_action_the_policy_lacks_is_reported():
    policy = fill(build(RECORD[:2], **SCOPE), {**STACK, "Bucket": BUCKET})
    assert missing(RECORD[:3], policy) == [RECORD[2]]


def test_the_command_writes_the_policy_and_the_template_block(tmp_path, capsys):
    record = tmp_path / "actions.jsonl"
    record.write_text("".join(json.dumps(e) + "\n" for e in RECORD))
    template = tmp_path / "stack.yaml"
    template.write_text(
        f"Resources:\n  P:\n    Properties:\n      PolicyDocument:\n        {BEGIN}\n        old\n        {END}\n"
    )
    extra = tmp_path / "inputs.json"
    extra.write_text(
        json.dumps({"actions": [{"action": "lambda:ListFunctions", "resource": "*"}], "local_only": ["iam:PassRole"]})
    )
    out = tmp_path / "policy.json"
    assert main(["policy", str(record), "--out", str(out), "--template", str(template), "--extra", str(extra)]) == 0
    policy = json.loads(out.read_text())
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert "lambda:ListFunctions" in actions and "iam:PassRole" not in actions
    block = template_policy(template)
    assert "old" not in block and block.startswith("        Version: '2012-10-17'")
    assert "!Sub 'arn:${AWS::Partition}:s3:::${Bucket}/lab*'" in block
    assert "actions in" in capsys.readouterr().out


def test_an_empty_record_is_refused(tmp_path, capsys):
    record = tmp_path / "none.jsonl"
    assert main(["policy", str(record), "--out", str(tmp_path / "p.json")]) == 1
    assert not (tmp_path / "p.json").exists()
