"""atheris harness for tests.fuzz._targets.msrp_connection (see bench/fuzz/__init__.py)."""

from bench.fuzz._harness import main

if __name__ == "__main__":
    main("msrp_connection")
