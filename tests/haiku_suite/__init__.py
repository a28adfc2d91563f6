"""dm-haiku's own test suite, run against `pax.hk` (see `runner`)."""
