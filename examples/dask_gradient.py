"""The gradient of an elementwise function over an array too big to want in memory, with Dask.

symgrad's NumPy program runs on Dask arrays as they are: the gradient comes back as a lazy
Dask array, one task per chunk, and `.sum()` of it is computed chunk by chunk on a local
cluster of two worker processes. Needs `pip install 'symgrad[dask]'`.

    python examples/dask_gradient.py [n_elements] [chunk]
"""

import sys
import time

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

from symgrad import grad


def smooth(x):
    return np.sin(x) * np.exp(-(x**2) / 2) / (1 + x**2) + np.log(1 + np.exp(x))


def main() -> None:
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 4_000_000
    chunk = int(float(sys.argv[2])) if len(sys.argv) > 2 else 500_000
    dsmooth = grad(smooth)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        x = da.linspace(-5.0, 5.0, n, chunks=chunk)
        gradient = dsmooth(x)  # lazy: nothing is computed here
        print(
            f"gradient: {type(gradient).__module__}.{type(gradient).__name__}, {gradient.npartitions} chunks"
        )
        start = time.perf_counter()
        total = float(client.compute(gradient.sum()).result())
        elapsed = time.perf_counter() - start
    print(f"sum of the gradient over {n} elements = {total:.12e} ({elapsed:.2f} s on 2 workers)")
    # The same sum in memory, with the NumPy array (small enough here to check against).
    expected = float(np.sum(dsmooth(np.linspace(-5.0, 5.0, n))))
    print(f"relative difference to NumPy in memory = {abs(total - expected) / abs(expected):.2e}")


if __name__ == "__main__":
    main()
