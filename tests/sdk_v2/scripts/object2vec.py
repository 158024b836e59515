"""SDK v2 user code: Object2Vec through ``Estimator`` and ``image_uris.retrieve`` on JSON Lines pairs, as AWS's own
Object2Vec notebooks run it (the algorithm reads JSON Lines, so the first-party class's ``record_set()`` does not
apply): fit, ``Estimator.attach``, deploy, predict, delete.

Run in the SDK v2 virtualenv by tests/sdk_v2/test_sdk_v2.py; exits non-zero on the first difference.
"""

import json
import os

import numpy as np
import sagemaker
from sagemaker import image_uris
from sagemaker.deserializers import JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.serializers import JSONSerializer

ROLE, BUCKET = os.environ["TEST_ROLE"], os.environ["TEST_BUCKET"]

session = sagemaker.Session(default_bucket=BUCKET)
rng = np.random.default_rng(0)
users, items = rng.integers(0, 20, 1500), rng.integers(0, 30, 1500)
ratings = 1.0 + 0.1 * users + 0.05 * items
lines = "".join(
    json.dumps({"label": float(r), "in0": [int(u)], "in1": [int(i)]}) + "\n" for u, i, r in zip(users, items, ratings)
)
uri = session.upload_string_as_file_body(lines, BUCKET, "v2-o2v/train/pairs.jsonl")
o2v = Estimator(
    image_uris.retrieve("object2vec", session.boto_region_name),
    role=ROLE,
    instance_count=1,
    instance_type="ml.m5.large",
    sagemaker_session=session,
    hyperparameters={
        "epochs": 3,
        "enc0_max_seq_len": 1,
        "enc1_max_seq_len": 1,
        "enc0_vocab_size": 20,
        "enc1_vocab_size": 30,
        "enc_dim": 8,
        "enc0_network": "pooled_embedding",
        "enc1_network": "pooled_embedding",
        "mini_batch_size": 100,
        "output_layer": "mean_squared_error",
    },
)
o2v.fit({"train": TrainingInput(uri, content_type="application/jsonlines")}, job_name="v2-o2v", wait=False)
session.logs_for_job("v2-o2v", wait=True, poll=1)
attached = Estimator.attach("v2-o2v", sagemaker_session=session)
assert attached.model_data == o2v.model_data, (attached.model_data, o2v.model_data)
predictor = attached.deploy(
    initial_instance_count=1,
    instance_type="ml.m5.large",
    endpoint_name="v2-o2v",
    serializer=JSONSerializer(),
    deserializer=JSONDeserializer(),
    wait=False,
)
session.wait_for_endpoint("v2-o2v", poll=1)
answer = predictor.predict({"instances": [{"in0": [3], "in1": [4]}]})
assert len(answer["predictions"]) == 1 and "scores" in answer["predictions"][0], answer
predictor.delete_endpoint()
print("SDK v2 object2vec: OK")
