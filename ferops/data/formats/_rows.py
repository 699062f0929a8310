"""Where a bad row of a csv or spreadsheet is, said so the user can jump to it.

Users debug their own licensed copies, in a text editor (which counts lines,
header included) or a spreadsheet (which counts rows, header included). "row
17" alone is ambiguous between the two and the 0-based index pandas reports,
so every message gives the 1-based data row and the line or sheet row.
Line numbers assume one line per record and no blank lines, which holds for
the files these formats ship as; a malformed record is located by its real
physical line (csv module) instead.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

_SHOWN = 24  # characters of a field value quoted in a message (a FER2013 pixel string is ~8 KB)


def row_ref(name: str, row: int, spreadsheet: bool = False) -> str:
    """'fer2013.csv data row 17 (line 18)'; for a spreadsheet, '(sheet row 18)'."""
    return f"{name} data row {row} ({'sheet row' if spreadsheet else 'line'} {row + 1})"


def _quote(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def ragged_row(path: Path, fields: Sequence[str]) -> str | None:
    """One line naming the first record whose field count differs from the header, or None.

    Run only after a fast reader has refused the file, so its cost (a Python
    pass over the text) is paid on the error path alone.
    """
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        row = 0
        for record in reader:
            if not record:
                continue  # blank line: the readers skip it too
            row += 1
            if len(record) == len(fields):
                continue
            where = f"{path.name} data row {row} (line {reader.line_num})"
            got = ", ".join(_quote(v) for v in record)
            if len(record) < len(fields):
                return (f"{where}: {len(record)} fields ({got}), expected {len(fields)}: {','.join(fields)}; "
                        f"a field is missing")
            extra = ", ".join(_quote(v) for v in record[len(fields):])
            return f"{where}: {len(record)} fields, expected {len(fields)}: {','.join(fields)}; extra {extra}"
    return None
