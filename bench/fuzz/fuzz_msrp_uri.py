"""atheris harness for tests.fuzz._targets.msrp_uri (see bench/fuzz/__init__.py)."""

from bench.fuzz._harness import main

if __name__ == "__main__":
    main("msrp_uri")
