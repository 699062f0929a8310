"""The one error every format reader and writer raises for bad data.

A ValueError subclass so callers that already catch ValueError keep working,
but distinct so the CLI and import step can tell "your files are wrong" (fix the
data) apart from bugs. Messages always name the file, row or field and what was
expected, because users debug their own licensed copies we never see.
"""

from __future__ import annotations

from ferops.errors import FeropsError


class DatasetFormatError(FeropsError, ValueError):
    """On-disk data (or a Dataset handed to a writer) does not match its format."""
