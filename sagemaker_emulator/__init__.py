"""A local SageMaker: the AWS APIs the workshop uses, served on loopback, with real training jobs."""

import numpy

# MXNet 1.9.1, which the algorithms train with, still refers to numpy.bool (removed in numpy 1.24): restore it
# exactly as it was, before any algorithm imports mxnet. The same two lines as in ``common``, because the emulator
# must not depend on the workshop's helpers.
if "bool" not in vars(numpy):  # hasattr() would trigger numpy's FutureWarning
    numpy.bool = bool


def start(host: str = "127.0.0.1", port: int = 0, **options):
    """Start the emulator in a background thread and return it (``.url``, ``.reset()``, ``.stop()``).

    Imported lazily: the algorithm containers import this package too and need none of the server.
    """
    from sagemaker_emulator.emulator import start as _start

    return _start(host, port, **options)
