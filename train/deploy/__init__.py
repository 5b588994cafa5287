"""Using trained zoo models: molecular dynamics with a potential, sampling molecules from a generator, and
benchmarks on the user's machine. Training lives one level up (:mod:`ponita.train`), the command line in
:mod:`ponita.train.commands`."""

from ._benchmarks import benchmark_precisions, benchmark_setup
from ._molecular_dynamics import ENSEMBLES, MDResult, benchmark_md, run_md
from ._sampling import sample_molecules

__all__ = ["ENSEMBLES", "MDResult", "benchmark_md", "benchmark_precisions", "benchmark_setup", "run_md",
           "sample_molecules"]
