"""pytest runs every ``>>>`` example in the guides (``docs/**/*.md``).

The Sphinx configuration and the API generator need Sphinx, which only the
``docs`` extra installs, so they are not collected as doctest modules.
"""

import os

os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]
).strip()

collect_ignore = ["conf.py", "_api.py"]
collect_ignore_glob = ["_build/*", "api/*"]
