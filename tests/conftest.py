"""Test-wide settings.

The networks in the tests are tiny: one torch thread is as fast as two for them and immune to the OpenMP
barrier stalls a loaded machine causes (measured: a 10k-element dot product took 5 ms instead of microseconds
with 2 threads under load). Set SKOPT_NN_TEST_THREADS to change it.
"""

from __future__ import annotations

import os

import torch

torch.set_num_threads(int(os.environ.get("SKOPT_NN_TEST_THREADS", "1")))
