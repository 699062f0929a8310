"""Write template.html: DVC's plots page with Vega, Vega-Lite and vega-embed inline, so it draws offline.

    npm pack vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2      # the versions dvc-render's own page loads
    .venv/bin/python infra/dvc_plots/build_template.py vega-5.20.2.tgz vega-lite-5.2.0.tgz vega-embed-6.18.2.tgz

dvc-render fills `{plot_divs}` (and `{refresh_tag}`) and puts its CDN <script> tags where a
template says `{scripts}`; this one has no `{scripts}`, so the page loads nothing from the network.
.dvc/config points `plots.html_template` here; the libraries' licenses (BSD-3-Clause) sit beside it.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIBRARIES = ("vega", "vega-lite", "vega-embed")  # load order: vega-embed needs the other two

PAGE = """<!DOCTYPE html>
<!-- ferops: {versions} inline (BSD-3-Clause, see *.LICENSE beside this file); built by build_template.py. -->
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>ferops: DVC plots</title>
{scripts}
    <style>
        table {{ border-spacing: 15px; }}
        img {{ max-width: 100%; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def build(tarballs: list[Path]) -> Path:
    scripts, versions = [], []
    by_name = {}
    for tgz in tarballs:
        with tarfile.open(tgz) as tar:
            name = next(n for n in LIBRARIES[::-1] if Path(tgz).name.startswith(n + "-"))
            js = tar.extractfile(f"package/build/{name}.min.js").read().decode("utf-8")
            by_name[name] = js
            (HERE / f"{name}.LICENSE").write_bytes(tar.extractfile("package/LICENSE").read())
            versions.append(Path(tgz).name.removesuffix(".tgz"))
    for name in LIBRARIES:
        js = by_name[name]
        if "</script" in js or "{plot_divs}" in js or "{refresh_tag}" in js:
            raise SystemExit(f"{name}.min.js contains text that would break the page or DVC's placeholders")
        scripts.append(f"    <script>\n{js}\n    </script>")
    out = HERE / "template.html"
    out.write_text(PAGE.format(versions=", ".join(versions), scripts="\n".join(scripts)), encoding="utf-8")
    return out


if __name__ == "__main__":
    print(build([Path(p) for p in sys.argv[1:]]))
