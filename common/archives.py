"""Unpack a model artifact (``model.tar.gz``) with its members confined, on every Python from 3.11.0.

tarfile's ``filter="data"`` needs Python 3.11.4; the emulator, which unpacks every model it hosts, has the checked
extraction that works on all of them, and the notebooks use the same code.
"""

from sagemaker_emulator.algorithms.archives import UnsafeArchiveError, extract

__all__ = ["UnsafeArchiveError", "extract"]
