"""Test-suite configuration: hypothesis profiles, so that CI cannot flake.

Two profiles, for every property test (tests/test_gen_folds.py, test_gen_bounds.py,
test_gen_golden.py, ...):

    ci      loaded by default. `derandomize=True`: hypothesis draws the same examples on
            every run and machine, with no example database, so a green suite stays green
            unless the code changes. No deadline (2 shared cores make timings noisy).
    random  a fresh random search each run, to find new counterexamples. Use it explicitly:

                .venv/bin/python -m pytest tests/test_gen_folds.py --hypothesis-profile=random
                .venv/bin/python -m pytest tests/test_gen_golden.py --hypothesis-profile=random --hypothesis-seed=958

            or through the slow tier, which replays every property test under it:

                .venv/bin/python -m pytest -m slow tests/test_gen_hypothesis.py

            HYPOTHESIS_PROFILE=random in the environment selects it too. A failure prints the
            seed (`--hypothesis-seed=N` reproduces it); fix the code or the test, then add the
            example as an explicit case.

A test's own @settings (max_examples, ...) apply under either profile.
"""
import os
import signal

from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("random", derandomize=False, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
# --hypothesis-profile (hypothesis's pytest plugin) is applied after this and wins.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The Ctrl-C tests (tests/test_hostile_*.py) send SIGINT to the CLIs they start and expect the
# one-line "interrupted" exit 130. A pytest started in the background by a non-interactive
# shell (`bash -c "... &"`, nohup) inherits SIGINT ignored, and so would every CLI it starts:
# they would never see the Ctrl-C. A user's terminal delivers it; so does this, for the children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
