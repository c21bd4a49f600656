"""The TRL pipeline, the sandbox and the tiny local models. Nothing here imports Django."""

import os

# OpenMP threads that spin while waiting are ruinous when the cores are shared (measured here with 2 threads
# on 2 busy cores: generating 6 samples took 32 s spinning, 1.1 s sleeping). It only works before torch loads,
# which is why it is set as the package is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
