"""dm-haiku's own test suite, run against `pax.hk`.

The installed dm-haiku wheel ships its tests (``haiku/_src/*_test.py``,
``integration/``, ``nets/``, ``flax/``). `runner` runs them in a pytest
subprocess where ``import haiku`` gives `pax.hk` (`alias`, `public_map`,
`plugin`), and once more against dm-haiku itself: a test is comparable when
it passes there. `expectations` lists, by name, the tests that need a
dm-haiku internal (excluded) and the known failures under `pax.hk`.

* ``pytest tests/haiku_suite``: a few small files (default suite);
  ``pytest -m slow tests/haiku_suite``: every file.
* ``python -m tests.haiku_suite [--files basic_test conv_test] [--failures]``:
  per-file table; ``--impl dm`` runs dm-haiku only.

dm-haiku's results are cached in ``.pytest_cache/haiku_suite``. The alias is
only ever installed in the subprocess: importing this package changes nothing.
"""
