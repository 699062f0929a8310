"""Expected failures: things a user can fix, reported on one line, never as a traceback.

Every error ferops anticipates (a bad params key, a malformed dataset row, a
model alias that does not exist, an unreachable tracking server) derives from
FeropsError. The CLI prints its message, which names the thing and the fix,
and exits with code 2; anything else is a bug and keeps its traceback.
"""


class FeropsError(Exception):
    """An expected, user-fixable failure; the message names the file/key/row and what was expected."""


_SHOWN_CHARS = 80  # an echoed value never makes an error line long (or costly: a YAML alias bomb, a 10 MB key)


def shown(value: object, limit: int = _SHOWN_CHARS) -> str:
    """`value` as an error message shows it: its repr, cut to `limit` characters without building it whole.

    reprlib stops at a few items per level and a few levels deep, so a nested alias list that would expand
    to gigabytes costs microseconds; strings are cut before quoting.
    """
    import reprlib

    cutter = reprlib.Repr()  # (keyword arguments only from Python 3.12)
    cutter.maxlevel, cutter.maxlist, cutter.maxtuple, cutter.maxdict, cutter.maxset = 3, 6, 6, 4, 4
    cutter.maxstring = cutter.maxother = cutter.maxlong = limit
    text = cutter.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_SHOWN_PATH_CHARS = 56  # a path and the sentence around it still fit one 200-character line


def shown_path(path: object, limit: int = _SHOWN_PATH_CHARS) -> str:
    """A file or folder path cut to `limit` characters from the left: its tail (the part a user typed) stays."""
    text = str(path)
    return text if len(text) <= limit else "..." + text[-(limit - 3):]


def shown_key(key: object, limit: int = _SHOWN_CHARS) -> str:
    """A user-written key (a params.yaml name, a CLI argument) shown unquoted, cut to `limit` characters."""
    text = str(key) if isinstance(key, str) else shown(key, limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."
