"""vaeas benchmark suite (issue 5): ``python -m bench`` from the repository root.

Every figure it prints is a ratio of two timings taken in the same run on the same machine
(a step against a roofline floor measured right before and after it, a new implementation
against a reference one), so it says how close the code is to this machine's limit whatever
the machine. Benchmarks are never timed tests: nothing here runs under pytest.
"""
