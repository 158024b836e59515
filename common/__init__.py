"""Small helpers shared by the workshop notebooks.

MXNet 1.9.1 (the last release, used to read the built-in algorithms' artifacts) still refers to
``numpy.bool``, which numpy removed in 1.24. We pin numpy 1.26.4 and restore the alias exactly as it
used to be (``numpy.bool`` was the builtin ``bool``), once, here, before anything imports mxnet.
"""

import numpy

if "bool" not in vars(numpy):  # hasattr() would trigger numpy's FutureWarning
    numpy.bool = bool
