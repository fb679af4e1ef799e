"""Local image outputs: OCI image layouts, docker-archive tarballs and digest files.

Each writer streams blobs from files or readable streams, checking every byte against the
digest and size it was promised; nothing holds a whole layer in memory.
"""
