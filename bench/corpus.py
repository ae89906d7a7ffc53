"""Corpus throughput: synthetic write/read at scale, and ``preprocess`` against a bare MNE read.

Synthetic windows look like DE features on the 62-node topology (per-band levels plus noise,
float32; present masks of 19, 59 or 4 nodes, as the three real montages). Two corpora, a large
one and one a tenth of its size, are written with :class:`CorpusWriter` and read with
:meth:`Corpus.iter_batches` (one process): write and read rates, peak allocations while reading
(tracemalloc; flat in corpus size is the goal), and bytes on disk per window. Then the same
for corpora that keep each window's signal (100 samples per present node, float16; read as
``de+raw`` tokens), at a tenth of the sizes.

Second part, on the real recordings (``--data``, default ``../shared/eeg``): the whole-process
``mmm-eeg preprocess`` of the eegmat folder (one worker) and of the eegmmidb folder (two workers)
against reading the same files with MNE alone in a fresh process (the eegmat folder, ten
times it through symbolic links, eegmmidb S001), and the command's start-up
(``mmm-eeg --help``) against a bare ``python -c pass``; each pair runs interleaved, 3 times,
medians reported.

    .venv/bin/python bench/corpus.py                 # 5 M windows, about 2-3 minutes
    .venv/bin/python bench/corpus.py --preprocess-only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.corpus import Corpus, CorpusWriter  # noqa: E402
from mmm_eeg.corpus.batches import iter_batches  # noqa: E402
from mmm_eeg.topology import UnifiedTopology  # noqa: E402
from mmm_eeg.windows import PreprocessConfig, WindowSet  # noqa: E402

LEVELS = np.array([-10.7, -11.1, -10.6, -11.0, -12.2], dtype=np.float32)


SIGNAL = PreprocessConfig(signal_rate=100.0)


def synthetic_windows(
    n: int, montage: int, rng: np.random.Generator, signal: bool = False
) -> WindowSet:
    topo = UnifiedTopology.default()
    nodes = {0: 19, 1: 59, 2: 4}[montage % 3]
    present_nodes = rng.choice(topo.n_nodes, nodes, replace=False)
    present = np.zeros((n, topo.n_nodes), dtype=bool)
    present[:, present_nodes] = True
    features = np.zeros((n, topo.n_nodes, 5), dtype=np.float32)
    noise = rng.standard_normal((n, nodes, 5), dtype=np.float32) * 0.4
    features[:, present_nodes] = LEVELS + noise
    windows = WindowSet(features, present, np.arange(n, dtype=np.float64), [None] * n)
    if signal:  # about 20 µV of noise in units of 100 µV
        windows.signal = np.zeros((n, topo.n_nodes, 100), dtype=np.float32)
        windows.signal[:, present_nodes] = 0.2 * rng.standard_normal((n, nodes, 100), np.float32)
    return windows


def write(path: Path, windows: int, per_recording: int, signal: bool = False) -> dict:
    rng = np.random.default_rng(0)
    topo = UnifiedTopology.default()
    t = time.perf_counter()
    with CorpusWriter(path, topo, SIGNAL if signal else PreprocessConfig()) as writer:
        for r in range(windows // per_recording):
            writer.add(f"synthetic/{r:06d}", {"dataset": "synthetic", "subject": str(r % 97)},
                       synthetic_windows(per_recording, r, rng, signal))  # fmt: skip
    seconds = time.perf_counter() - t
    data_bytes = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return {"windows": windows, "write_s": seconds, "write_windows_per_s": windows / seconds,
            "bytes_on_disk": data_bytes, "bytes_per_window": data_bytes / windows}  # fmt: skip


def read(path: Path, max_windows: int, batch_size: int = 512, tokens: str = "de") -> dict:
    corpus = Corpus(path)
    n_recordings = len(corpus.recordings)  # loading the table is opening, not reading
    tracemalloc.start()
    t = time.perf_counter()
    seen = 0
    for x, _, _ in iter_batches(corpus, batch_size, shuffle=True, seed=1, tokens=tokens):
        seen += len(x)
        if seen >= max_windows:
            break
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"recordings": n_recordings, "read_windows": seen, "read_s": seconds,
            "read_windows_per_s": seen / seconds, "read_peak_mb": peak / 2**20}  # fmt: skip


def _wall(command: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - t


def preprocess_vs_read(data: Path, repeats: int = 3) -> list[dict]:
    """Whole-process preprocess against a bare MNE read of the same files; start-up."""
    cli = [sys.executable, "-m", "mmm_eeg"]
    rows = []
    links = Path(tempfile.mkdtemp(prefix="eegmat_x10_"))
    for copy in range(10):  # ten times the folder: symbolic links, one sub-folder per copy
        (links / f"copy{copy}").mkdir()
        for edf in (data / "eegmat").glob("*.edf"):
            (links / f"copy{copy}" / edf.name).symlink_to(edf.resolve())
    cases = [("eegmat", data / "eegmat", 1), ("eegmat x10", links, 1),
             ("eegmmidb", data / "eegmmidb", 2)]  # fmt: skip
    for name, folder, workers in cases:
        files = sorted(str(p) for p in folder.rglob("*.edf"))
        read = [sys.executable, "-c", "import sys, mne\nfor f in sys.argv[1:]: "
                "mne.io.read_raw_edf(f, preload=True, verbose='error')", *files]  # fmt: skip
        times = {"read": [], "preprocess": []}
        for _ in range(repeats):
            times["read"].append(_wall(read))
            with tempfile.TemporaryDirectory() as tmp:
                job = [*cli, "preprocess", str(folder), "--out", f"{tmp}/c", "--workers"]
                times["preprocess"].append(_wall([*job, str(workers)]))
        rows.append({"case": f"{name}: {len(files)} EDF files, --workers {workers}",
                     **{k: float(np.median(v)) for k, v in times.items()}})  # fmt: skip
    shutil.rmtree(links)
    start = {"bare python": [], "mmm-eeg --help": []}
    for _ in range(repeats):
        start["bare python"].append(_wall([sys.executable, "-c", "pass"]))
        start["mmm-eeg --help"].append(_wall([*cli, "--help"]))
    rows.append({"case": "start-up", "read": float(np.median(start["bare python"])),
                 "preprocess": float(np.median(start["mmm-eeg --help"]))})  # fmt: skip
    return rows


def preprocess_markdown(result: dict) -> str:
    lines = [
        f"Measured {result['date']} with `{result['command'].strip()}` ({os.cpu_count()} cores; "
        "wall time of whole processes, median of 3, interleaved).",
        "",
        "| case | MNE read alone (s) | mmm-eeg (s) | ratio |",
        "|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['case']} | {row['read']:.2f} | {row['preprocess']:.2f} "
            f"| {row['preprocess'] / row['read']:.1f}x |"
        )
    lines.append("")
    lines.append("The start-up row: `python -c pass` against `mmm-eeg --help`.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=5_000_000)
    parser.add_argument("--per-recording", type=int, default=10_000)
    parser.add_argument("--read-windows", type=int, default=2_000_000)
    parser.add_argument("--signal-windows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "corpus.json")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "eeg")
    parser.add_argument("--preprocess-only", action="store_true")
    args = parser.parse_args()
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    command = "python bench/corpus.py " + " ".join(sys.argv[1:])
    real = {"date": date, "command": command, "rows": preprocess_vs_read(args.data)}
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "preprocess.json").write_text(json.dumps(real, indent=2) + "\n")
    print(preprocess_markdown(real))
    if not args.no_docs:
        update_benchmarks_md("preprocess", preprocess_markdown(real))
    if args.preprocess_only:
        return
    rows = []
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        for windows in (args.windows // 10, args.windows):
            path = Path(tmp) / f"corpus_{windows}"
            row = write(path, windows, args.per_recording)
            row.update(read(path, min(args.read_windows, windows)))
            rows.append(row)
            shutil.rmtree(path)
        for windows in (args.signal_windows // 10, args.signal_windows):
            path = Path(tmp) / f"signal_{windows}"
            row = write(path, windows, args.per_recording, signal=True)
            row.update(read(path, min(args.read_windows, windows), tokens="de+raw"))
            rows.append({**row, "signal": True})
            shutil.rmtree(path)
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python bench/corpus.py " + " ".join(sys.argv[1:]),
        "batch_size": 512,
        "corpora": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    print(table)
    if not args.no_docs:
        update_benchmarks_md("corpus", table)


def markdown(r: dict) -> str:
    lines = [
        f"Measured {r['date']} with `{r['command'].strip()}`: synthetic DE windows (62 nodes x 5 "
        "bands, float32, zarr v3 default codec: Zstandard), one process; reads are shuffled "
        "batches of "
        f"{r['batch_size']} (chunk order shuffled, 8 chunks pooled and shuffled: 8192 windows "
        "per chunk, 1024 for a corpus that keeps the signal). Signal: 100 float16 samples per "
        "present node (19, 59 or 4 nodes), random, so barely compressible; Blosc LZ4 over "
        "shuffled bytes (`signal_codec`).",
        "",
        "| corpus windows | write (windows/s) | read (windows/s) | windows read "
        "| peak allocated while reading (MB) | bytes on disk per window |",
        "|---|---|---|---|---|---|",
    ]
    for c in r["corpora"]:
        kind = " with signal (de+raw read)" if c.get("signal") else ""
        lines.append(
            f"| {c['windows']:,}{kind} | {c['write_windows_per_s']:,.0f} "
            f"| {c['read_windows_per_s']:,.0f} "
            f"| {c['read_windows']:,} | {c['read_peak_mb']:.0f} | {c['bytes_per_window']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
