"""DE speed and memory on the real recordings, side by side in one run, one thread.

Contenders, each computing 5-band DE of 1 s windows of the same recording:
- ours, ``method="fft"`` and ``method="filter"``;
- a plain per-window scipy loop (Butterworth band-pass of each window, then the variance);
- torcheeg's ``BandDifferentialEntropy`` applied window by window, run in its own virtual
  environment (its pins clash with ours) as a subprocess on the same data:
  ``--torcheeg-python /path/to/venv/bin/python``; skipped when not given.

Memory: DE of a synthetic 64-channel, 160 Hz recording of 1 h and of 10 h kept on disk
(``numpy.memmap``), streamed with ``iter_differential_entropy``; peak allocations measured with
tracemalloc.

    .venv/bin/python bench/features.py --torcheeg-python /tmp/venv_tg/bin/python
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # per-core figures: set before numpy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.signal import butter, sosfiltfilt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.features import DEFAULT_BANDS, differential_entropy, iter_differential_entropy  # noqa: E402
from mmm_eeg.io.readers import read_recording  # noqa: E402

TORCHEEG_SNIPPET = """
import sys, time, numpy as np
from torcheeg.transforms import BandDifferentialEntropy
data = np.load(sys.argv[1]); fs = float(sys.argv[2]); length = int(fs)
bands = {"delta": [1, 4], "theta": [4, 8], "alpha": [8, 14], "beta": [14, 31], "gamma": [31, 50]}
transform = BandDifferentialEntropy(sampling_rate=int(fs), band_dict=bands)
windows = [data[:, i:i + length] for i in range(0, data.shape[1] - length + 1, length)]
transform(eeg=windows[0])
t = time.perf_counter()
out = [transform(eeg=w)["eeg"] for w in windows]
print(time.perf_counter() - t, np.asarray(out).shape)
"""


def scipy_window_loop(data: np.ndarray, sfreq: float) -> np.ndarray:
    """The plain approach: band-pass every window separately, then its variance."""
    length = int(sfreq)
    sos = [
        butter(4, [lo, hi], btype="bandpass", fs=sfreq, output="sos") for _, lo, hi in DEFAULT_BANDS
    ]
    out = []
    for start in range(0, data.shape[1] - length + 1, length):
        window = data[:, start : start + length]
        out.append(
            [
                0.5 * np.log(2 * np.pi * np.e * sosfiltfilt(s, window, axis=1, padlen=50).var(1))
                for s in sos
            ]
        )
    return np.asarray(out).transpose(0, 2, 1)


def best_of(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def torcheeg_seconds(python: str, data: np.ndarray, sfreq: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", data)
        result = subprocess.run(
            [python, "-c", TORCHEEG_SNIPPET, str(Path(tmp) / "x.npy"), str(sfreq)],
            capture_output=True, text=True, check=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
    return float(result.stdout.split()[0])


def memory_profile(hours: float, folder: Path, channels: int = 64, sfreq: float = 160.0) -> dict:
    n = int(hours * 3600 * sfreq)
    path = folder / f"synthetic_{hours:g}h.f32"
    data = np.memmap(path, dtype=np.float32, mode="w+", shape=(channels, n))
    rng = np.random.default_rng(0)
    block = int(600 * sfreq)
    for start in range(0, n, block):
        data[:, start : start + block] = rng.normal(0, 1e-5, (channels, min(block, n - start)))
    data.flush()
    data = np.memmap(path, dtype=np.float32, mode="r", shape=(channels, n))
    tracemalloc.start()
    t = time.perf_counter()
    windows = 0
    for _, chunk in iter_differential_entropy(data, sfreq, chunk_windows=512):
        windows += len(chunk)
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    path.unlink()
    chunk_bytes = 512 * channels * int(sfreq) * 4
    return {
        "hours": hours, "windows": windows, "seconds": seconds, "peak_mb": peak / 2**20,
        "chunk_mb": chunk_bytes / 2**20, "realtime": hours * 3600 / seconds,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("MMM_EEG_DATA", ROOT.parent / "shared" / "eeg")),
    )
    parser.add_argument("--torcheeg-python", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "features.json")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()

    files = {
        "eegmmidb S001R03 (64 ch, 160 Hz, 125 s)": args.data / "eegmmidb" / "S001" / "S001R03.edf",
        "eegmat Subject00_1 (19 ch, 500 Hz, 62 s)": args.data / "eegmat" / "Subject00_1.edf",
    }
    rows = []
    for label, path in files.items():
        rec = read_recording(path)
        data = rec.data[:64] if "eegmmidb" in label else rec.data[:19]
        row = {"file": label, "channels": data.shape[0], "duration_s": rec.duration}
        row["ours_fft_s"] = best_of(
            lambda d=data, r=rec: differential_entropy(d, r.sfreq), args.repeats
        )
        single = data.astype(np.float32)
        row["ours_fft_float32_s"] = best_of(
            lambda d=single, r=rec: differential_entropy(d, r.sfreq), args.repeats
        )
        row["ours_filter_s"] = best_of(
            lambda d=data, r=rec: differential_entropy(d, r.sfreq, method="filter"), args.repeats
        )
        row["scipy_window_loop_s"] = best_of(lambda d=data, r=rec: scipy_window_loop(d, r.sfreq), 1)
        if args.torcheeg_python:
            row["torcheeg_s"] = torcheeg_seconds(args.torcheeg_python, data, rec.sfreq)
        row["ours_fft_realtime_per_core"] = rec.duration / row["ours_fft_s"]
        rows.append(row)
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        memory = [memory_profile(h, Path(tmp)) for h in (1.0, 10.0)]
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python bench/features.py " + " ".join(sys.argv[1:]),
        "threads": 1,
        "files": rows,
        "memory": memory,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    print(table)
    if not args.no_docs:
        update_benchmarks_md("features", table)


def markdown(r: dict) -> str:
    lines = [
        f"Measured {r['date']} with `{r['command'].strip()}`, one thread (per-core figures), "
        "best of repeated runs; 5 bands, 1 s windows.",
        "",
        "| recording | ours fft (s) | ours fft, float32 (s) | ours filter (s) "
        "| scipy per-window loop (s) | torcheeg per window (s) | fft × real time "
        "| fft vs torcheeg | fft vs scipy loop |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in r["files"]:
        torch_s = f.get("torcheeg_s")
        torch_cell = "—" if torch_s is None else f"{torch_s:.2f}"
        torch_ratio = "—" if torch_s is None else f"{torch_s / f['ours_fft_s']:,.0f}×"
        lines.append(
            f"| {f['file']} | {f['ours_fft_s']:.4f} | {f['ours_fft_float32_s']:.4f} | "
            f"{f['ours_filter_s']:.3f} | {f['scipy_window_loop_s']:.2f} | {torch_cell} | "
            f"{f['ours_fft_realtime_per_core']:,.0f}× | {torch_ratio} | "
            f"{f['scipy_window_loop_s'] / f['ours_fft_s']:,.0f}× |"
        )
    lines += [
        "",
        "Memory, DE (fft) of a synthetic 64-channel 160 Hz recording on disk (memmap), streamed "
        "in chunks of 512 windows:",
        "",
        "| length | windows | seconds | × real time | peak allocated (MB) | one input chunk (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for m in r["memory"]:
        lines.append(
            f"| {m['hours']:g} h | {m['windows']} | {m['seconds']:.1f} | {m['realtime']:,.0f}× | "
            f"{m['peak_mb']:.1f} | {m['chunk_mb']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
