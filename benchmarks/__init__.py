"""The symgrad benchmark suite (`python -m benchmarks.run`).

NumPy's BLAS runs on one thread, like torch (`--torch-threads 1`), autograd and symgrad: set
here, before anything imports NumPy, because OpenBLAS reads it once at load time. On the 2-vCPU
machine of `results.md`, OpenBLAS's default of 2 threads made a (1e5, 10) @ (10,) product
take 0.25 ms or 8 ms at random. `OPENBLAS_NUM_THREADS=2 python -m benchmarks.run` overrides.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
