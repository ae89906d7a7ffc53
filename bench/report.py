"""Write a benchmark's markdown table into its own section of docs/benchmarks.md; the
command line shared by the full experiment runs."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
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


def experiment_main(
    name: str,
    doc: str,
    run: Callable[[Path, Path, int], dict],
    render: Callable[[dict], str],
    plot: Callable[[Path, dict], None],
    plots: tuple[str, ...],
    figures: str = "",
) -> None:
    """Command line of a full experiment run (``bench/NAME.py``), and where its results go.

    Runs ``run(data, out, seed)`` (or, with ``--render-only``, reads ``OUT/results.json`` and
    redraws its plots), copies ``results.json`` to ``docs/results/NAME.json`` and the plots that
    exist to ``docs/results/NAME_PLOT``, and writes ``render(result)`` (plus ``figures``, markdown
    after the table) into docs/benchmarks.md with the command that produced it.
    """
    root = DOC.parents[1]
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    default = Path(os.environ.get("MMM_EEG_DATA", root.parent / "shared" / "eeg"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--out", type=Path, default=root / "bench" / "out" / name)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="Rewrite the tables and docs from OUT/results.json without rerunning.",
    )
    args = parser.parse_args()
    if args.render_only:
        result = json.loads((args.out / "results.json").read_text())
        plot(args.out, result)
    else:
        result = run(args.data, args.out, args.seed)
    target = root / "docs" / "results" / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.out / "results.json", target)
    for figure in plots:
        if (args.out / "plots" / figure).is_file():
            shutil.copy(args.out / "plots" / figure, target.parent / f"{name}_{figure}")
    given = [a for a in sys.argv[1:] if a != "--render-only"]
    command = f"python bench/{name}.py " + " ".join(given)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    rendered = " (tables re-rendered from its results.json with `--render-only`)"
    table = (
        f"Measured {date} with `{command.strip()}`{rendered if args.render_only else ''}.\n\n"
        + render(result)
        + figures
    )
    update_benchmarks_md(name, table)
    print(table)
