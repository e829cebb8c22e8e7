"""atheris harness for tests.fuzz._targets.cpim (see bench/fuzz/__init__.py)."""

from bench.fuzz._harness import main

if __name__ == "__main__":
    main("cpim")
