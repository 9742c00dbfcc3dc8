"""The one JSON reader of the product: every document it reads has a size and a depth limit.

:func:`json.loads` recurses once per nesting level, so ``[`` repeated
100,000 times ends in a :class:`RecursionError` (an internal error, or a 500
with a traceback on the class board) instead of a refusal.  :func:`loads`
measures the nesting first without recursing (strings are cut out, then the
brackets are counted, stopping at the first level over the limit) and only
then hands the text to :mod:`json`.

A refusal is a :class:`JsonLimitError`: an :class:`~xmailnb.errors.InputError`
naming the file and the limit in the user's language, and also a
:class:`ValueError`, so that a reader that treats any damaged document as
"damaged" keeps doing so.

>>> loads(b'{"a": [1, 2]}', name="x.json")
{'a': [1, 2]}
>>> loads(b"[" * 100000, name="x.json")
Traceback (most recent call last):
...
xmailnb.boundedjson.JsonLimitError: x.json was not read: its brackets nest more than 32 levels deep, far more than the workbook ever writes there.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .errors import InputError
from .files import FileTooLarge, read_regular
from .i18n import Msg

__all__ = ["JsonLimitError", "loads", "load_file", "nesting_depth", "MAX_BYTES", "MAX_DEPTH"]

#: Default size limit: the product's own documents are a few KB.
MAX_BYTES = 1024 * 1024

#: Default nesting limit: the deepest document the product writes nests 5 levels.
MAX_DEPTH = 32

# A complete JSON string (escapes included); an unterminated one is left in
# place, and then counts as brackets: the text is invalid JSON anyway.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JsonLimitError(InputError, ValueError):
    """A JSON document is larger or nests deeper than allowed (nothing was done with it).

    Attributes:
        name: the document (a file name, or what was posted).
        limit: the limit it broke (bytes or levels).
    """

    def __init__(self, key: str, name: str, limit: int) -> None:
        super().__init__(Msg.of(key, name=name, limit=limit), Msg.of(f"{key}.fix", name=name, limit=limit))
        self.name = name
        self.limit = limit

    def __str__(self) -> str:
        # Where a reader shows the reason of a ValueError (a log, an HTTP
        # reason): the English message, not the catalog key.
        return self.msg.render("en")


def nesting_depth(text: str, stop_above: int | None = None) -> int:
    """How deep the arrays and objects of *text* nest, found without recursion.

    Counting stops as soon as the depth exceeds *stop_above*.

    >>> nesting_depth('{"a": [[1], "]]]"]}')
    3
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for ch in brackets:
        if ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    break
        elif depth:
            depth -= 1
    return deepest


def loads(data: bytes | str, *, name: str, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse the JSON document *data* (named *name* in a refusal) within the limits.

    Raises:
        JsonLimitError: more than *max_bytes* bytes, or nested deeper than
            *max_depth* levels.
        ValueError: not JSON (or not UTF-8), as :func:`json.loads` raises.
    """
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        raise JsonLimitError("json.too_large", name, max_bytes)
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    if nesting_depth(text, max_depth) > max_depth:
        raise JsonLimitError("json.too_deep", name, max_depth)
    try:
        return json.loads(text)
    except RecursionError:  # pragma: no cover - the depth is checked above
        raise JsonLimitError("json.too_deep", name, max_depth) from None


def load_file(path: str | os.PathLike[str], *, name: str | None = None, max_bytes: int = MAX_BYTES,
              max_depth: int = MAX_DEPTH, dir_fd: int | None = None, follow_symlinks: bool = True) -> Any:
    """Read and parse the regular file at *path* within the limits
    (:func:`xmailnb.files.read_regular` reads it; a FIFO or a folder is refused).

    Raises:
        JsonLimitError: as :func:`loads` (a file too large is refused before
            it is read whole).
        OSError: unreadable, not a regular file.
        ValueError: not JSON.
    """
    shown = name if name is not None else os.fspath(path)
    try:
        data = read_regular(path, max_bytes, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
    except FileTooLarge:
        raise JsonLimitError("json.too_large", shown, max_bytes) from None
    return loads(data, name=shown, max_bytes=max_bytes, max_depth=max_depth)
