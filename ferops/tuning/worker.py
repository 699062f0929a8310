"""Worker process of `ferops tune --workers N`: `python -m ferops.tuning.worker PLAN.json INDEX`."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __name__ == "__main__":
    from ferops.quiet_tf import import_tensorflow

    import_tensorflow()
    from ferops.tuning.study import work

    work(json.loads(open(sys.argv[1]).read()), int(sys.argv[2]))
