"""A local SageMaker: the AWS APIs the workshop uses, served on loopback, with real training jobs."""
import common  # noqa: F401  (restores numpy.bool before any algorithm imports mxnet)
