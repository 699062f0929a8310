"""What a reader passed over, counted by reason, and the one line that tells the user.

A reader that quietly ignores `notes.txt` is right; one that quietly ignores
a misplaced folder of images is a silent data loss. Counting both, by reason
and by kind, in `Dataset.extras` (so meta.json keeps it) and printing one line
from the step that read the data makes the difference visible without
turning harmless strays into errors.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from ferops.io import MARKER

NOT_IMAGE = "not images"
OUTSIDE = "outside class folders"
NESTED = "folders inside class folders (not read)"
_KINDS_SHOWN = 4


def kind(path: Path) -> str:
    """What a skipped entry is, for the message: '.txt', '.DS_Store', 'folder'."""
    name = path.name
    if path.is_dir():
        return "folder"
    if name.startswith("._"):
        return "._* (macOS metadata)"
    if name.startswith("."):
        return name
    return path.suffix.lower() or "no extension"


class SkipCounter:
    """Counts skipped entries as {reason: {kind: n}}, the JSON-able form kept in extras["skipped_files"]."""

    def __init__(self) -> None:
        self._counts: dict[str, Counter] = defaultdict(Counter)

    def add(self, reason: str, path: Path) -> None:
        if path.name == MARKER:  # ferops' own note that it wrote this folder (ferops.io), not a stray
            return
        self._counts[reason][kind(path)] += 1

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {reason: dict(kinds.most_common()) for reason, kinds in self._counts.items() if kinds}


def describe(skipped: dict[str, dict[str, int]] | None) -> str | None:
    """'skipped 3 files: 2 not images (1 .txt, 1 .DS_Store), 1 outside class folders (1 .md)', or None."""
    if not skipped:
        return None
    parts, total = [], 0
    for reason, kinds in skipped.items():
        n = sum(kinds.values())
        total += n
        ranked = sorted(kinds.items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"{count} {name}" for name, count in ranked[:_KINDS_SHOWN])
        more = ", ..." if len(ranked) > _KINDS_SHOWN else ""
        parts.append(f"{n} {reason} ({shown}{more})")
    if not total:
        return None
    return f"skipped {total} file{'s' if total != 1 else ''}: " + ", ".join(parts)


def describe_excluded(dropped: dict[str, int] | None) -> str | None:
    """The format's own exclusions (CASME II classes not kept, FERPlus unknown/tied votes), or None."""
    kept = {reason: n for reason, n in (dropped or {}).items() if n}
    if not kept:
        return None
    total = sum(kept.values())
    return f"excluded {total} by the format's protocol: " + ", ".join(
        f"{n} {reason.replace('_', ' ')}" for reason, n in kept.items())


def reader_notes(extras: dict) -> list[str]:
    """The lines a step prints after reading a dataset: what was skipped and what was excluded, if anything."""
    return [line for line in (describe(extras.get("skipped_files")), describe_excluded(extras.get("dropped")))
            if line]
