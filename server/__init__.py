"""Realname: self-hosted identity self-registration with active liveness and face match."""

import os

# NumPy's BLAS would start a thread per core for every matrix product. The service keeps the cores busy with
# its own analysis workers, against which those threads spin: the gallery rotation's 512 x 512 QR takes
# 0.04 s on one thread and 0.6-3 s on two when the cores are busy. Set before NumPy loads; a deployer's own
# value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
