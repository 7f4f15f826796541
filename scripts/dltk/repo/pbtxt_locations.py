"""Where each field of a protobuf text message (a config.pbtxt) starts, by its path.

Protobuf's text parser reports syntax errors with a position but forgets positions once the
text parsed; `dltk validate` uses `field_locations` to point each value problem at its field.
"""

from __future__ import annotations

from google.protobuf import text_format

Location = tuple[int, int]
FieldPath = tuple[str | int, ...]


def field_locations(text: str) -> dict[FieldPath, Location]:
    """Where each field of a protobuf text message starts, keyed by its path.

    Paths look like ("input", 0, "dims", 2); singular fields have index 0. Only called on text
    that parsed, so the grammar is known to be valid; on surprise, what was found is returned.
    """
    tok = text_format.Tokenizer(text.splitlines())
    found: dict[FieldPath, Location] = {}

    def here() -> Location:
        return tok._line + 1, tok._column + 1  # no public accessor

    def value(path: FieldPath) -> None:
        if tok.token in ("{", "<"):
            end = "}" if tok.token == "{" else ">"
            tok.NextToken()
            message(path, end)
            tok.NextToken()
        else:
            tok.NextToken()
            while tok.token[:1] in ("'", '"'):  # adjacent strings concatenate
                tok.NextToken()

    def message(path: FieldPath, end: str | None) -> None:
        counts: dict[str, int] = {}
        while not tok.AtEnd() and tok.token != end:
            name, where = tok.token, here()
            tok.NextToken()
            tok.TryConsume(":")
            if tok.token == "[":
                tok.NextToken()
                while tok.token != "]":
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                    found[(*path, name, index)] = here()
                    value((*path, name, index))
                    tok.TryConsume(",")
                tok.NextToken()
            else:
                index = counts.get(name, 0)
                counts[name] = index + 1
                found[(*path, name, index)] = where
                value((*path, name, index))
            if not tok.TryConsume(","):
                tok.TryConsume(";")

    try:
        message((), None)
    except Exception:  # best effort: positions are a courtesy
        pass
    return found
