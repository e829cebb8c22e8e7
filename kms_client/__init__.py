"""KMS client (PROFILE.md section 3) built on treq."""
