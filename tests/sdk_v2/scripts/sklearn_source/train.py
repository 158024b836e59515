"""A scikit-learn training script as SageMaker's script mode runs it: arguments and paths from the toolkit.

Used by sklearn_script.py (SDK v2 ``SKLearn``) and v3_tuner.py (SDK v3 ``HyperparameterTuner``).
"""

import argparse
import json
import os

import joblib
import numpy as np
from sklearn.linear_model import Ridge

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=1.0)
parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
args = parser.parse_args()

data = np.loadtxt(os.path.join(args.train, "data.csv"), delimiter=",")
model = Ridge(alpha=args.alpha).fit(data[:, 1:], data[:, 0])
print(f"alpha={args.alpha} r2={model.score(data[:, 1:], data[:, 0]):.6f}", flush=True)
joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
seen = ("SM_CURRENT_HOST", "SM_HOSTS", "SM_HP_ALPHA", "SM_USER_ARGS", "SM_CHANNELS", "SM_MODULE_DIR", "SM_NUM_CPUS")
with open(os.path.join(args.model_dir, "environment.json"), "w") as file:
    json.dump({name: os.environ[name] for name in seen}, file)
