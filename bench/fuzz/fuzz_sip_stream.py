"""atheris harness for tests.fuzz._targets.sip_stream (see bench/fuzz/__init__.py)."""

from bench.fuzz._harness import main

if __name__ == "__main__":
    main("sip_stream")
