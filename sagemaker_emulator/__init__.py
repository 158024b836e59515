"""A local SageMaker: the AWS APIs the workshop uses, served on loopback, with real training jobs."""
import common  # noqa: F401  (restores numpy.bool before any algorithm imports mxnet)


def start(host: str = "127.0.0.1", port: int = 0, **options):
    """Start the emulator in a background thread and return it (``.url``, ``.reset()``, ``.stop()``).

    Imported lazily: the algorithm containers import this package too and need none of the server.
    """
    from sagemaker_emulator.emulator import start as _start

    return _start(host, port, **options)
