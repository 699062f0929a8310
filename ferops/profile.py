"""`python -m ferops.profile FILE`: a settings profile (params.paper.yaml) as `dvc exp run` arguments.

Why: a profile is a short list of dotted params.yaml keys, and DVC's experiments take them as `-S key=value`.
This prints one argument per line (`-S`, then `key=value`, values as YAML reads them), for `xargs -d '\\n'`,
after checking every key against params.yaml. A bad profile is one line on stderr and exit 2, nothing printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ferops.config import load_overrides
from ferops.errors import FeropsError


def dvc_set_args(overrides: dict[str, Any]) -> list[str]:
    """["-S", "cv.folds=10", ...]: JSON is YAML, so lists and booleans reach params.yaml as themselves."""
    return [arg for key, value in overrides.items() for arg in ("-S", f"{key}={json.dumps(value)}")]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m ferops.profile PROFILE.yaml [params.yaml]", file=sys.stderr)
        return 2
    try:
        overrides = load_overrides(Path(args[0]), *(Path(a) for a in args[1:]))
    except FeropsError as exc:
        print(f"ferops: {exc}", file=sys.stderr)
        return 2
    print("\n".join(dvc_set_args(overrides)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
