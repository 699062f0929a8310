"""Expected failures: things a user can fix, reported on one line, never as a traceback.

Every error ferops anticipates (a bad params key, a malformed dataset row, a
model alias that does not exist, an unreachable tracking server) derives from
FeropsError. The CLI prints its message, which names the thing and the fix,
and exits with code 2; anything else is a bug and keeps its traceback.
"""


class FeropsError(Exception):
    """An expected, user-fixable failure; the message names the file/key/row and what was expected."""
