"""The PAX core: pytree modules, purity and randomness. See README.md here."""
