"""Layer cache keys: one sha256 over everything that determines a step's layer.

Keys chain: a stage starts from the key of its base (the base image's manifest digest and
platform, `scratch`, or the last key of the stage it is built on), mixed with the build
settings that change layer bytes (format, compression, level, timestamps, snapshot mode); each
step's key is the hash of its parent's key and the step's own inputs (see `core.build.cached`
for what each instruction contributes: the expanded instruction, the environment it sees,
digests of the files it reads, heredoc bodies, mount sources). Only file steps advance the
chain: a config step (ENV, ARG, USER, ...) reaches the layers after it through their own
inputs, so an ARG that only a RUN reads leaves the COPYs before that RUN cached, as in
BuildKit. The inputs are turned into JSON
with sorted keys; `stable` makes typed values (instructions, mounts) into plain data without
their place in the Dockerfile, so moving a line or adding a comment keeps its key.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePath

#: bump when what goes into a key changes meaning (old entries then simply miss)
KEY_FORMAT = "bucketbuild-layer-cache/1"
#: fields that say where an instruction was written, not what it does
_PLACE_FIELDS = frozenset({"span", "original"})


def stable(value: object) -> object:
    """`value` as plain JSON data: dataclasses as objects (without their location fields),
    sequences as lists, mappings with string keys, enums and paths as their text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: stable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in _PLACE_FIELDS}
        data["@type"] = type(value).__name__
        return data
    if isinstance(value, Mapping):
        return {str(k): stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        items = [stable(v) for v in value]
        return sorted(items, key=_text) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, enum.Enum):
        return stable(value.value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _text(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def chain_key(parent: str, kind: str, inputs: Mapping[str, object]) -> str:
    """The key (64 hex digits) of a step, or of a stage's start when `parent` is ""."""
    document = {"format": KEY_FORMAT, "parent": parent, "kind": kind, "inputs": stable(inputs)}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
