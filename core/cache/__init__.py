"""The layer cache (`--cache`): step keys, cache stores (a registry repository or an OCI
layout) and the base layer cache a warm function keeps between builds."""
