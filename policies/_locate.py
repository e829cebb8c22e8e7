"""Find the line of every key and array element in a TOML document.

``tomllib`` reports positions only for syntax errors.  For semantic errors (an unknown
key, a wrong type, a bad pattern) the loader needs the line of the offending key, so this
module walks the (already valid) document once and records, for every key path such as
``("room", 1, "allow", 0)``, the line where it appears.  It understands exactly the
structure the TOML grammar allows: table and array-of-tables headers, dotted and quoted
keys, all four string forms, comments, arrays across lines and inline tables.  It assumes
the text is valid TOML: ``tomllib`` has already parsed it.
"""

from __future__ import annotations

import bisect

Path = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        self.lines: dict[Path, int] = {}
        self.array_tables: dict[Path, int] = {}

    # -- primitives ----------------------------------------------------------------------

    def line(self) -> int:
        return bisect.bisect_right(self.line_starts, self.pos)

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_spaces(self) -> None:
        while self.peek() in (" ", "\t") and not self.at_end():
            self.pos += 1

    def skip_comment(self) -> None:
        if self.peek() == "#":
            end = self.text.find("\n", self.pos)
            self.pos = len(self.text) if end < 0 else end

    def skip_blank(self) -> None:
        """Spaces, newlines and comments (allowed inside arrays and between statements)."""
        while not self.at_end():
            c = self.peek()
            if c in (" ", "\t", "\r", "\n"):
                self.pos += 1
            elif c == "#":
                self.skip_comment()
            else:
                return

    def record(self, path: Path) -> None:
        self.lines.setdefault(path, self.line())

    def record_key(self, table: Path, key: tuple[str, ...]) -> None:
        """Record a (possibly dotted) key and each of its prefixes."""
        for end in range(1, len(key) + 1):
            self.record((*table, *key[:end]))

    # -- keys and strings ----------------------------------------------------------------

    def read_string(self) -> str:
        text = self.text
        for quote in ('"""', "'''"):
            if text.startswith(quote, self.pos):
                end = self.pos + 3
                while True:
                    end = text.index(quote, end)
                    if quote == '"""' and _escaped(text, end):
                        end += 1
                        continue
                    break
                # A closing delimiter may be followed by up to two more quote characters.
                while text.startswith(quote[0], end + 3):
                    end += 1
                value = text[self.pos + 3 : end]
                self.pos = end + 3
                return value
        quote = text[self.pos]
        end = self.pos + 1
        while True:
            end = text.index(quote, end)
            if quote == '"' and _escaped(text, end):
                end += 1
                continue
            break
        value = text[self.pos + 1 : end]
        self.pos = end + 1
        return value

    def read_key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self.skip_spaces()
            if self.peek() in ('"', "'"):
                parts.append(self.read_string())
            else:
                start = self.pos
                while not self.at_end() and self.peek() in _BARE_KEY_CHARS:
                    self.pos += 1
                parts.append(self.text[start : self.pos])
            self.skip_spaces()
            if self.peek() != ".":
                return tuple(parts)
            self.pos += 1

    # -- values --------------------------------------------------------------------------

    def value(self, path: Path) -> None:
        self.skip_spaces()
        c = self.peek()
        if c in ('"', "'"):
            self.read_string()
        elif c == "[":
            self.pos += 1
            index = 0
            while True:
                self.skip_blank()
                if self.peek() == "]":
                    self.pos += 1
                    return
                self.record((*path, index))
                self.value((*path, index))
                self.skip_blank()
                if self.peek() == ",":
                    self.pos += 1
                    index += 1
        elif c == "{":
            self.pos += 1
            while True:
                self.skip_spaces()
                if self.peek() == "}":
                    self.pos += 1
                    return
                key = self.read_key()
                self.record_key(path, key)
                self.pos += 1  # "="
                self.value((*path, *key))
                self.skip_spaces()
                if self.peek() == ",":
                    self.pos += 1
        else:
            # number, boolean, date-time: runs until a delimiter
            while not self.at_end() and self.peek() not in (",", "]", "}", "\n", "#", "\r"):
                self.pos += 1

    # -- document ------------------------------------------------------------------------

    def resolve(self, keys: tuple[str, ...]) -> Path:
        """Insert the current index after every array-of-tables prefix of ``keys``."""
        path: Path = ()
        for key in keys:
            path = (*path, key)
            self.record(path)  # implicitly created parent tables start here too
            if path in self.array_tables:
                path = (*path, self.array_tables[path] - 1)
        return path

    def run(self) -> dict[Path, int]:
        table: Path = ()
        while True:
            self.skip_blank()
            if self.at_end():
                return self.lines
            if self.peek(2) == "[[":
                self.pos += 2
                keys = self.read_key()
                parent = self.resolve(keys[:-1])
                base = (*parent, keys[-1])
                self.array_tables[base] = self.array_tables.get(base, 0) + 1
                table = (*base, self.array_tables[base] - 1)
                self.record(base)
                self.record(table)
                self.pos += 2
            elif self.peek() == "[":
                self.pos += 1
                table = self.resolve(self.read_key())
                self.record(table)
                self.pos += 1
            else:
                key = self.read_key()
                self.record_key(table, key)
                self.skip_spaces()
                self.pos += 1  # "="
                self.value((*table, *key))


def _escaped(text: str, index: int) -> bool:
    """Whether the character at ``index`` is escaped by an odd run of backslashes."""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def key_lines(text: str) -> dict[Path, int]:
    """Map every key path of a valid TOML document to its 1-based line number."""
    try:
        return _Scanner(text).run()
    except (ValueError, IndexError):  # pragma: no cover - only for text tomllib rejected
        return {}


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path``, or of its nearest recorded ancestor."""
    for end in range(len(path), 0, -1):
        found = lines.get(path[:end])
        if found is not None:
            return found
    return None


class SourceError(Exception):
    """A configuration file that cannot be read as bounded UTF-8 text (``line`` when known)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def read_source(filename: str, limit: int) -> str:
    """The UTF-8 text of ``filename``, refusing files above ``limit`` bytes.

    Shared by the loaders of TOML files (policies, the focus configuration): each turns a
    :class:`SourceError` into its own error type, naming the file.
    """
    try:
        with open(filename, "rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}") from None
    if len(raw) > limit:
        raise SourceError(f"larger than {limit} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError("not UTF-8 text", raw.count(b"\n", 0, exc.start) + 1) from None
