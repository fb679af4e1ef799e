"""The argument shapes of BuildKit's parser: flags, words, key/value pairs, JSON or shell form.

Each function mirrors one of BuildKit's line parsers: flags are scanned byte by byte as BuildKit
does, but unlike BuildKit a non-ASCII flag value comes back as the text the user wrote (BuildKit
turns each byte into the Latin-1 character of the same value, so `--chown=jürgen` would name
another user), words of ENV/LABEL/ARG turn invalid UTF-8 into U+FFFD, HEALTHCHECK finds its
type word byte by byte.
"""

from __future__ import annotations

import functools
import re
from typing import Final, NamedTuple

from core.dockerfile.dump import go_quote
from core.dockerfile.jsonform import parse_json_array
from core.dockerfile.lines import GO_SPACE, GO_SPACE_RUN, GO_SPACE_SET, go_trim
from core.errors import DockerfileError

_TOKEN_SPACE: Final = re.compile(r"[\t\v\f\r ]+")  # BuildKit's reWhitespace
_WORD_SPECIAL: Final = re.compile("['\"\\\\`\udc80-\udcff]")
_INVALID_BYTE: Final = re.compile("[\udc80-\udcff]")
_PLAIN_FLAG: Final = re.compile(r"(--[!#-&(-\[\]-~]*)(?:[\t\n\v\f\r ]+|\Z)")
_PLAIN_FLAGS: Final = re.compile(r"(?:--[!#-&(-\[\]-~]*+(?:[\t\n\v\f\r ]++|\Z))*+")
_SPACE_CLASS: Final = re.escape(GO_SPACE)
_BYTE_SPACE: Final = frozenset("\t\n\v\f\r \x85\xa0")  # unicode.IsSpace(rune(b)) for a byte
_RAW_BYTE_SPACE: Final = frozenset("\t\n\v\f\r \udc85\udca0")  # first chars that start with one


class Shape(NamedTuple):
    """What a line parser made of an instruction's arguments."""

    args: tuple[str, ...]
    json: bool = False


def split_command(line: str) -> tuple[str, tuple[str, ...], str]:
    """Split an instruction line into its keyword (as written), flags and the rest."""
    trimmed = go_trim(line)
    keyword, space, after = trimmed.partition(" ")
    if keyword.isalpha():  # so the first blank is that space (the common case, no regex)
        if not space:
            return keyword, (), ""
        rest, flags = extract_flags(after.lstrip("\t\v\f\r "))
        return keyword, flags, go_trim(rest)
    parts = _TOKEN_SPACE.split(trimmed, maxsplit=1)
    if len(parts) == 1:
        return parts[0], (), ""
    rest, flags = extract_flags(parts[1])
    return parts[0], flags, go_trim(rest)


def extract_flags(text: str) -> tuple[str, tuple[str, ...]]:
    """Leading `--name[=value]` words and the text after them (a bare `--` ends the flags)."""
    if not text or (text[0] != "-" and text[0] not in _RAW_BYTE_SPACE):
        return text, ()
    if text[0] == "-" and text[1:2] != "-":
        return text, ()
    simple = _simple_flags(text)
    if simple is not None:
        return simple
    view = text.encode("utf-8", "surrogateescape").decode("latin-1")
    rest, flags = _scan_flags(view)
    return _from_bytes_view(rest), tuple(_from_bytes_view(flag) for flag in flags)


def _from_bytes_view(view: str) -> str:
    """Undo the byte-per-character view: flag values keep the text the user wrote."""
    return view.encode("latin-1").decode("utf-8", "surrogateescape")


def _simple_flags(text: str) -> tuple[str, tuple[str, ...]] | None:
    """The common case of flags in plain ASCII without quotes or escapes; None otherwise."""
    run = _PLAIN_FLAGS.match(text)
    words = run.group().split() if run is not None else []  # only ASCII blanks in between
    if run is not None and "--" not in words and not text.startswith("--", run.end()):
        return text[run.end():], tuple(words)
    return _each_simple_flag(text)


def _each_simple_flag(text: str) -> tuple[str, tuple[str, ...]] | None:
    """`_simple_flags` one flag at a time (when a bare `--` may end them)."""
    flags: list[str] = []
    pos = 0
    while text.startswith("--", pos):
        match = _PLAIN_FLAG.match(text, pos)
        if match is None:
            return None
        if match.group(1) == "--":
            return text[match.end(1):], tuple(flags)
        flags.append(match.group(1))
        pos = match.end()
    return text[pos:], tuple(flags)


def _scan_flags(view: str) -> tuple[str, list[str]]:
    """BuildKit's extractBuilderFlags over a string holding one character per byte."""
    words: list[str] = []
    word: list[str] = []
    quote, phase, blank_ok, pos, end = "", "space", False, 0, len(view)
    while pos < end:
        ch = view[pos]
        if phase == "space":
            if ch in _BYTE_SPACE:
                pos += 1
                continue
            if ch != "-" or view[pos + 1:pos + 2] != "-":
                return view[pos:], words
            phase = "word"
        if phase == "word" and ch in _BYTE_SPACE:
            text = "".join(word)
            if text == "--":
                return view[pos:], words
            if blank_ok or text:
                words.append(text)
            word, blank_ok, phase = [], False, "space"
        elif phase == "word" and ch in "'\"":
            quote, blank_ok, phase = ch, True, "quote"
        elif (phase == "quote" and ch == quote) or (ch == "\\" and pos + 1 == end):
            phase = "word"  # a closing quote, or a backslash at the very end (dropped)
        else:
            if ch == "\\":
                pos += 1
                ch = view[pos]
            word.append(ch)
        pos += 1
    text = "".join(word)
    if phase != "space" and text != "--" and (blank_ok or text):
        words.append(text)
    return "", words


def parse_words(rest: str, escape: str) -> list[str]:
    """Split on blanks outside quotes; quotes and escapes are kept in the words."""
    if _only_spaces(rest) and "'" not in rest and '"' not in rest and escape not in rest:
        return rest.split()
    if _WORD_SPECIAL.search(rest) is None:
        return [word for word in GO_SPACE_RUN.split(rest) if word]
    whole, word = _word_patterns(escape)
    words = word.findall(rest) if whole.fullmatch(rest) else _scan_words(rest, escape)
    return words if rest.isascii() else [_INVALID_BYTE.sub("\ufffd", word) for word in words]


def _only_spaces(text: str) -> bool:
    """ASCII with no control character: " " is its only blank, for every notion of blank."""
    return text.isascii() and text.isprintable()


@functools.lru_cache(maxsize=2)
def _word_patterns(escape: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Text whose quotes are all closed and whose escapes all escape something, and its words.

    For such text `_scan_words` makes the words these expressions find (a shortcut).
    """
    e = re.escape(escape)
    quoted = f"'[^']*+'|\"(?:[^\"{e}]++|{e}[\\s\\S])*+\""
    whole = re.compile(f"(?:[^'\"{e}]++|{e}[\\s\\S]|{quoted})*+")
    word = re.compile(f"(?:[^{_SPACE_CLASS}'\"{e}]++|{e}[\\s\\S]|{quoted})++")
    return whole, word


def _scan_words(rest: str, escape: str) -> list[str]:
    words: list[str] = []
    word: list[str] = []
    quote, phase, blank_ok, pos, end = "", "space", False, 0, len(rest)
    while pos < end:
        ch = rest[pos]
        if phase == "space":
            if ch in GO_SPACE_SET:
                pos += 1
                continue
            phase = "word"
        if phase == "word" and ch in GO_SPACE_SET:
            if blank_ok or word:
                words.append("".join(word))
            word, blank_ok, phase = [], False, "space"
        elif ch == escape and (phase == "word" or quote != "'"):
            if pos + 1 == end:
                phase = "word"
            else:
                word.append(ch)
                pos += 1
                word.append(rest[pos])
        else:
            if phase == "word" and ch in "'\"":
                quote, blank_ok, phase = ch, True, "quote"
            elif phase == "quote" and ch == quote:
                phase = "word"
            word.append(ch)
        pos += 1
    if phase != "space" and (blank_ok or word):
        words.append("".join(word))
    return words


def parse_name_val(rest: str, keyword: str, escape: str) -> Shape:
    """ENV and LABEL: `name=value ...` triples, or the legacy `name value` with separator ""."""
    words = parse_words(rest, escape)
    if not words:
        return Shape(())
    if "=" not in words[0]:
        if _only_spaces(rest):
            key, space, value = rest.partition(" ")
            parts = [key, value.lstrip(" ")] if space else [key]
        else:
            parts = _TOKEN_SPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise DockerfileError(f"{keyword} must have two arguments")
        return Shape((parts[0], parts[1], ""))
    args: list[str] = []
    for word in words:
        if "=" not in word:
            raise DockerfileError(f"Syntax error - can't find = in {go_quote(word)}. "
                                  "Must be of the form: name=value")
        key, value = word.split("=", 1)
        args += (key, value, "=")
    return Shape(tuple(args))


def parse_name_or_name_val(rest: str, escape: str) -> Shape:
    """ARG: each word as written (`name` or `name=value`)."""
    return Shape(tuple(parse_words(rest, escape)))


def parse_whitespace_delimited(rest: str) -> Shape:
    """FROM, EXPOSE and shell-form COPY/ADD/VOLUME: split on ASCII blanks."""
    if not rest:
        return Shape(())
    if _only_spaces(rest):
        words = rest.split(" ")
        if "" not in words:  # else runs of blanks, or blanks at an end: as BuildKit splits
            return Shape(tuple(words))
    return Shape(tuple(_TOKEN_SPACE.split(rest)))


def parse_string(rest: str) -> Shape:
    """MAINTAINER, USER, WORKDIR, STOPSIGNAL: the rest of the line as one argument."""
    return Shape((rest,)) if rest else Shape(())


def parse_maybe_json(rest: str) -> Shape:
    """RUN, CMD, ENTRYPOINT, SHELL: a JSON array, else the rest of the line as one string."""
    if not rest:
        return Shape(())
    array = parse_json_array(rest)
    return Shape(array, json=True) if array is not None else Shape((rest,))


def parse_maybe_json_list(rest: str) -> Shape:
    """COPY, ADD, VOLUME: a JSON array, else whitespace-separated words."""
    array = parse_json_array(rest)
    return Shape(array, json=True) if array is not None else parse_whitespace_delimited(rest)


def parse_health(rest: str) -> Shape:
    """HEALTHCHECK: the type word (`CMD`, `NONE`, ...) then the command as for CMD."""
    raw = rest.encode("utf-8", "surrogateescape")
    view = raw.decode("latin-1")
    sep = 0
    while sep < len(view) and view[sep] not in _BYTE_SPACE:
        sep += 1
    if sep == 0:
        return Shape(())
    after = sep
    while after < len(view) and view[after] in _BYTE_SPACE:
        after += 1
    kind = raw[:sep].decode("utf-8", "surrogateescape")
    command = parse_maybe_json(raw[after:].decode("utf-8", "surrogateescape"))
    return Shape((kind, *command.args), json=command.json)
