"""Scale: a corpus of 10 million windows, the data path's throughput and memory, model speed.

1. Preprocessing throughput per worker on the real recordings (``build_corpus``, 1 and 2
   worker processes): windows and recorded hours per second.
2. A synthetic corpus of ``--windows`` windows (default 10 M, ~2,800 h of 1 s windows) and one
   a tenth of its size, written with :class:`CorpusWriter` (free disk checked first): write rate,
   bytes on disk per window.
3. Shuffled batches of 512 through the training loader (:class:`CorpusBatches` in a
   ``torch`` DataLoader with 0, 1, 2 worker processes): windows/s, and the peak resident memory
   of the reading process and of its largest worker, for both corpus sizes (a bounded working
   set means the same memory at 1 M and 10 M windows). The index table's memory per window is
   measured separately: it is the one thing held whole.
4. Pretraining throughput (forward, backward, AdamW; 6 + 6 blocks, batch 512) at width 16 and
   64: on synthetic batches (model speed) and fed from the real corpus through the same loader
   (end to end), with model FLOPs utilisation against this machine's measured matmul peak.
5. Extrapolation to 10^8 windows and to the paper's recipe, with the arithmetic shown.

    .venv/bin/python bench/scale.py             # about 10 minutes on 2 cores, ~6 GB of disk
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import write  # noqa: E402
from bench.model import matmul_peak_gflops, step_flops  # noqa: E402
from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.corpus import Corpus  # noqa: E402
from mmm_eeg.corpus.build import build_corpus  # noqa: E402
from mmm_eeg.io.sources import discover_sources  # noqa: E402
from mmm_eeg.model import MMMAutoencoder, MMMEncoder, random_mask  # noqa: E402
from mmm_eeg.topology import UnifiedTopology  # noqa: E402
from mmm_eeg.train.data import CorpusBatches, _loader  # noqa: E402

TUH_WINDOWS = 27_000 * 3600  # ~27,000 h of 1 s windows
TARGET_PER_CONSUMER = 20_000


def _hwm_mb() -> float:
    """Peak resident memory of this process (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def preprocessing(data: Path, scratch: Path) -> list[dict]:
    sources, skipped = discover_sources([data], events="T0,T1,T2")
    rows = []
    for workers in (1, 2):
        out = scratch / f"pre{workers}"
        report = build_corpus(sources, out, workers=workers, skipped=skipped)
        seconds = report["runtime_s"]
        rows.append({
            "workers": workers, "recordings": report["recordings_added"],
            "windows": report["windows_added"], "hours": report["hours_added"], "seconds": seconds,
            "windows_per_s": report["windows_added"] / seconds,
            "windows_per_s_per_worker": report["windows_added"] / seconds / workers,
            "hours_per_s_per_worker": report["hours_added"] / seconds / workers,
        })  # fmt: skip
        shutil.rmtree(out)
    return rows


def _read_child(path: str, workers: int, windows: int, queue) -> None:
    torch.set_num_threads(1)
    corpus = Corpus(path)
    rows = np.arange(len(corpus))
    batches = CorpusBatches(corpus, rows, 512, seed=0, workers=workers)
    n, started, first = 0, time.perf_counter(), None
    for x, _, _ in _loader(batches):
        if first is None:  # steady state from the first batch on (process start excluded)
            first = time.perf_counter()
        else:
            n += len(x)
        if n >= windows:
            break
    seconds = time.perf_counter() - first
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    queue.put({"windows_read": n, "seconds": seconds, "windows_per_s": n / seconds,
               "first_batch_s": first - started, "main_peak_mb": _hwm_mb(),
               "worker_peak_mb": children if workers else None})  # fmt: skip


def read(path: Path, workers: int, windows: int) -> dict:
    """One measurement in a fresh process (clean peak-memory figures)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_child, args=(str(path), workers, windows, queue))
    child.start()
    result = queue.get()
    child.join()
    return {"workers": workers, **result}


def index_memory(path: Path) -> dict:
    corpus = Corpus(path)
    frame = corpus.index
    return {
        "windows": len(frame),
        "bytes_per_window": frame.memory_usage(deep=True).sum() / len(frame),
        "parquet_bytes_per_window": sum(
            (path / p).stat().st_size for p in corpus.meta["index_parts"]
        ) / len(frame),
    }  # fmt: skip


def pretraining(corpus_path: Path, peak: float) -> list[dict]:
    corpus = Corpus(corpus_path)
    return [_throughput(corpus, dim, heads, peak) for dim, heads in ((16, 4), (64, 8))]


def _throughput(corpus: Corpus, dim: int, heads: int, peak: float) -> dict:
    topology = UnifiedTopology.default()
    torch.manual_seed(0)
    model = MMMAutoencoder(MMMEncoder(topology, dim=dim, depth=6, heads=heads), 6)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    present = torch.zeros(512, topology.n_nodes, dtype=torch.bool)
    present[:, :19] = True
    x = torch.randn(512, topology.n_nodes, 5) * present[..., None]
    mask = random_mask(present, 0.5, torch.Generator().manual_seed(0))

    def step(xb, pb, mb):
        loss, _ = model.loss(xb, pb, mb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    flops = step_flops(model, lambda: model.loss(x, present, mask)[0])
    for _ in range(2):
        step(x, present, mask)
    steps = 8 if dim == 16 else 4
    t = time.perf_counter()
    for _ in range(steps):
        step(x, present, mask)
    synthetic = steps * 512 / (time.perf_counter() - t)
    loader = iter(_loader(CorpusBatches(corpus, np.arange(len(corpus)), 512, seed=0)))
    generator, n = torch.Generator().manual_seed(1), 0
    t = time.perf_counter()
    for _ in range(steps):
        xb, pb, _ = next(loader)
        step(xb, pb, random_mask(pb, 0.5, generator))
        n += len(xb)
    return {
        "dim": dim, "blocks": "6+6", "batch": 512, "flops_per_sample": flops / 512,
        "synthetic_samples_per_s": synthetic, "corpus_samples_per_s": n / (time.perf_counter() - t),
        "mfu": synthetic * flops / 512 / (peak * 1e9),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=10_000_000)
    parser.add_argument("--read-windows", type=int, default=1_000_000)
    default = Path(os.environ.get("MMM_EEG_DATA", ROOT.parent / "shared" / "eeg"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    need = args.windows * 1.1 * 520  # bytes per window measured by bench/corpus.py, + 10 %
    free = shutil.disk_usage(args.scratch).free
    if free < 1.5 * need:
        sys.exit(f"{args.scratch}: {free / 1e9:.1f} GB free, need {1.5 * need / 1e9:.1f} GB.")
    scratch = Path(tempfile.mkdtemp(prefix="mmm_scale_", dir=args.scratch))
    try:
        result: dict = {"threads": args.threads, "free_disk_gb": round(free / 1e9, 1),
                        "torch": torch.__version__, "cpus": os.cpu_count()}  # fmt: skip
        result["preprocessing"] = preprocessing(args.data, scratch)
        print(result["preprocessing"], flush=True)
        corpora = {}
        for n in (args.windows // 10, args.windows):
            corpora[n] = scratch / f"corpus{n}"
            result.setdefault("write", []).append(write(corpora[n], n, per_recording=3600))
            print(result["write"][-1], flush=True)
        result["read"] = []
        for n, path in corpora.items():
            for workers in (0, 1, 2):
                row = {"corpus_windows": n, **read(path, workers, args.read_windows)}
                result["read"].append(row)
                print(row, flush=True)
        result["index"] = index_memory(corpora[args.windows])
        peak = matmul_peak_gflops()
        real = scratch / "real"
        sources, skipped = discover_sources([args.data], events="T0,T1,T2")
        build_corpus(sources, real, skipped=skipped)
        result["matmul_peak_gflops"] = peak
        result["pretraining"] = pretraining(real, peak)
        print(result["pretraining"], flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["extrapolation"] = extrapolate(result)
    out = ROOT / "bench" / "results" / "scale.json"
    out.write_text(json.dumps(result, indent=2))
    command = "python bench/scale.py " + " ".join(sys.argv[1:])
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    table = f"Measured {date} with `{command.strip()}`.\n\n" + markdown(result)
    update_benchmarks_md("scale", table)
    print(table)


def extrapolate(r: dict) -> dict:
    big = r["write"][-1]
    per_worker = max(p["windows_per_s_per_worker"] for p in r["preprocessing"])
    best_read = max(x["windows_per_s"] for x in r["read"] if x["corpus_windows"] == big["windows"])
    w64 = next(p for p in r["pretraining"] if p["dim"] == 64)
    w16 = next(p for p in r["pretraining"] if p["dim"] == 16)
    n = 1e8
    plain = {x["corpus_windows"]: x["main_peak_mb"] for x in r["read"] if x["workers"] == 0}
    small, large = min(plain), max(plain)
    growth = (plain[large] - plain[small]) * 2**20 / (large - small)
    return {
        "reader_bytes_per_window": growth,
        "reader_growth_gb": n * growth / 1e9,
        "windows": n,
        "disk_gb": n * big["bytes_per_window"] / 1e9,
        "index_ram_gb": n * r["index"]["bytes_per_window"] / 1e9,
        "preprocess_worker_hours": n / per_worker / 3600,
        "preprocess_hours_on_100_workers": n / per_worker / 100 / 3600,
        "corpus_write_hours_one_writer": n / big["write_windows_per_s"] / 3600,
        "read_windows_per_s_one_process": best_read,
        "read_meets_target": best_read >= TARGET_PER_CONSUMER,
        "cpu_days_3_tuh_epochs_width16": 3 * TUH_WINDOWS / w16["synthetic_samples_per_s"] / 86400,
        "cpu_days_3_tuh_epochs_width64": 3 * TUH_WINDOWS / w64["synthetic_samples_per_s"] / 86400,
        "flops_3_tuh_epochs_width16": 3 * TUH_WINDOWS * w16["flops_per_sample"],
        "flops_3_tuh_epochs_width64": 3 * TUH_WINDOWS * w64["flops_per_sample"],
        "cpu_days_600_epochs_per_million_windows_width16": 600e6
        / w16["synthetic_samples_per_s"]
        / 86400,
    }


def markdown(r: dict) -> str:
    e = r["extrapolation"]
    per_worker = max(p["windows_per_s_per_worker"] for p in r["preprocessing"])
    lines = [
        f"{r['cpus']} CPU cores, {r['threads']} torch threads, torch {r['torch']}; "
        f"{r['free_disk_gb']} GB free disk before the run. No GPU was lent to this task: the GPU "
        "rows are not measured.",
        "",
        "**Preprocessing** (real recordings of ../shared/eeg: EDF/CSV → DE → corpus):",
        "",
        "| worker processes | recordings | windows | seconds | windows/s | windows/s per worker "
        "| recorded hours/s per worker |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in r["preprocessing"]:
        lines.append(
            f"| {p['workers']} | {p['recordings']} | {p['windows']:,} | {p['seconds']:.1f} | "
            f"{p['windows_per_s']:,.0f} | {p['windows_per_s_per_worker']:,.0f} | "
            f"{p['hours_per_s_per_worker']:.2f} |"
        )
    lines += [
        "",
        "**Corpus write** (synthetic DE windows, one writer, zarr v3 default codec):",
        "",
        "| windows | hours | write (windows/s) | bytes on disk per window |",
        "|---|---|---|---|",
    ]
    for w in r["write"]:
        lines.append(
            f"| {w['windows']:,} | {w['windows'] / 3600:,.0f} | {w['write_windows_per_s']:,.0f} "
            f"| {w['bytes_per_window']:.0f} |"
        )
    lines += [
        "",
        "**Training loader** (`CorpusBatches` in a DataLoader, shuffled batches of 512, "
        "normalised per recording):",
        "",
        "| corpus windows | DataLoader workers | first batch after (s) | windows read | windows/s "
        "| peak RSS, reader (MB) | peak RSS, largest worker (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in r["read"]:
        worker = "—" if x["worker_peak_mb"] is None else f"{x['worker_peak_mb']:.0f}"
        lines.append(
            f"| {x['corpus_windows']:,} | {x['workers']} | {x['first_batch_s']:.1f} | "
            f"{x['windows_read']:,} | "
            f"{x['windows_per_s']:,.0f} | {x['main_peak_mb']:.0f} | {worker} |"
        )
    i = r["index"]
    lines += [
        "",
        f"Index table (one row per window) in memory: {i['bytes_per_window']:.0f} bytes per "
        f"window (pandas, {i['windows']:,} rows); on disk {i['parquet_bytes_per_window']:.1f}.",
        "",
        "**Pretraining throughput** (6 + 6 blocks, batch 512, forward + backward + AdamW):",
        "",
        "| device | width | synthetic batches (samples/s) | fed from the real corpus (samples/s) "
        "| GFLOP per sample | MFU (of measured fp32 matmul peak) |",
        "|---|---|---|---|---|---|",
    ]
    for p in r["pretraining"]:
        lines.append(
            f"| CPU ({r['threads']} threads) | {p['dim']} | {p['synthetic_samples_per_s']:,.0f} | "
            f"{p['corpus_samples_per_s']:,.0f} | {p['flops_per_sample'] / 1e9:.3f} | "
            f"{100 * p['mfu']:.0f} % of {r['matmul_peak_gflops']:.0f} GFLOP/s |"
        )
    lines += [
        "| H100 / H200, bf16 + torch.compile | 16, 64 | not measured (no GPU lent) | — | — | — |",
        "",
        f"**Extrapolation to 10^8 windows** (~27,800 h; TUH is ~27,000 h = {TUH_WINDOWS:.2e} "
        "one-second windows):",
        "",
        f"- disk: 10^8 × {r['write'][-1]['bytes_per_window']:.0f} B = {e['disk_gb']:,.0f} GB;",
        f"- preprocessing: 10^8 / {per_worker:,.0f} windows/s per worker = "
        f"{e['preprocess_worker_hours']:,.0f} worker-hours, "
        f"{e['preprocess_hours_on_100_workers']:.1f} h on 100 workers (`--shard I/100`, then "
        "`corpus merge`, which links instead of copying);",
        f"- the training loader reads {e['read_windows_per_s_one_process']:,.0f} windows/s in one "
        f"process against a target of {TARGET_PER_CONSUMER:,} per GPU-equivalent consumer "
        f"({'met' if e['read_meets_target'] else 'not met'}). Memory: the decoded data are "
        "bounded by the chunk pool, but the reader's peak grew by "
        f"{e['reader_bytes_per_window']:.0f} B per window of the selection between the two corpus "
        "sizes (int64 permutations and per-chunk row lists of the selected windows), and the "
        f"index table takes {r['index']['bytes_per_window']:.0f} B per window: at 10^8 windows "
        f"{e['reader_growth_gb']:.1f} + {e['index_ram_gb']:.1f} GB in the training process "
        "(workers get no index). Not a bounded working set yet: next, iterate the selection "
        "chunk by chunk as ranges and keep the index dictionary-encoded;",
        f"- 3 epochs over TUH ({3 * TUH_WINDOWS:.2e} samples): width 16 "
        f"{e['flops_3_tuh_epochs_width16']:.2e} FLOP = {e['cpu_days_3_tuh_epochs_width16']:,.0f} "
        f"days on this CPU; width 64 {e['flops_3_tuh_epochs_width64']:.2e} FLOP = "
        f"{e['cpu_days_3_tuh_epochs_width64']:,.0f} days on this CPU. On GPUs: FLOP / (GPU peak × "
        "MFU); e.g. at an assumed 20 % of an H100's ~400 TFLOP/s dense bf16 (not measured here), "
        f"width 64: {e['flops_3_tuh_epochs_width64'] / (0.2 * 400e12) / 3600:.2f} h on 1 GPU, "
        f"{e['flops_3_tuh_epochs_width64'] / (0.2 * 400e12) / 3600 / 8:.2f} h on 8 (if the "
        "loaders keep up: 8 GPUs need 8 reading processes at the rate above).",
        f"- the paper's recipe (width 16, 600 epochs): 600 × N samples for a corpus of N windows; "
        f"{e['cpu_days_600_epochs_per_million_windows_width16']:,.1f} days on this CPU per "
        "million windows (DESIGN.md does not give the paper's corpus size).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
