"""Write a benchmark's markdown table into its own section of docs/benchmarks.md."""

from __future__ import annotations

import re
from pathlib import Path

from mmm_eeg.atomic import atomic_path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def update_benchmarks_md(name: str, table: str, doc: Path = DOC) -> None:
    """Replace the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{start}\n{table}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + f"\n\n## {name}\n\n{block}\n"
    with atomic_path(doc) as tmp:
        tmp.write_text(text)
