"""bucketbuild: a daemonless container image builder.

`core` is the executor as a library. Cloud SDKs are imported only under `core/cloud/`.
"""

__version__ = "0.1.0"
