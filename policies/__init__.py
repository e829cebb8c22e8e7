"""Operator policy: model, TOML loader with line-accurate errors, evaluation."""
