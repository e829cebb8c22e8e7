"""atheris harnesses for the decoders (long runs for ``make soak``).

Each ``fuzz_<target>.py`` drives one target of :mod:`tests.fuzz._targets` (the same
function the Hypothesis tests call, so a crash found here replays in pytest), seeded with
the real samples of :mod:`tests.fuzz._corpus`.  ``python -m bench.fuzz --seconds 60`` runs
every harness in turn, each in its own process, and exits non-zero if any of them found a
crash; crash inputs are written to ``bench/results/fuzz/<target>/``.
"""
