"""Snapshots and layers: stat index, change detection, deterministic tar, compression.

`index` records a tree cheaply, `diff` finds what a step changed, `tarwriter` writes the layer
in a fixed order with fixed metadata, `compress` turns the tar stream into a digested blob.
"""
