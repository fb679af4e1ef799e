"""The image model: references, digests, media types, manifests, indexes and configs.

Everything here is pure: values in, values out, no I/O. Each medium (registry, OCI layout,
docker archive) reads and writes these values.
"""
