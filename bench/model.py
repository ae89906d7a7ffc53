"""Model speed: our MMM against the reference formulation, side by side in one process.

Measures, on this CPU with a fixed thread count:
1. one pretraining step (forward, backward, AdamW) of the 6 + 6 block autoencoder, width 64,
   batch 512: ours (fused SDPA) against the reference formulation (``nn.MultiheadAttention`` as
   the reference code calls it, with its boolean mask, and with the equivalent float mask);
2. that the two give the same reconstruction from the same weights (max |difference|);
3. this machine's fp32 matmul peak and the fraction of it our step reaches;
4. batch-1 inference latency (p50, p99) of the 6-block encoder: the reference, ours in eager
   PyTorch and under ``torch.compile``, and the same weights exported to ONNX (onnxruntime, 1 and
   2 threads), and where a batch-1 forward spends its time;
5. the live loop's cost per 1 s window: DE of one window, mapping, standardisation and the
   encoder (``MMMModel.embed`` on one second of 19-channel EEG), against the window's length.

Rounds alternate between the contenders so that load on this shared machine hits both alike;
figures are ratios from the same run. Writes JSON (bench/results/model.json) and the table in
docs/benchmarks.md.

    .venv/bin/python bench/model.py            # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.model import MMMAutoencoder, MMMEncoder, random_mask  # noqa: E402
from tests.reference_mmm import ReferenceAutoencoder, ReferenceMMM  # noqa: E402

TABLE = ROOT / "src" / "mmm_eeg" / "data" / "seed62_coordinates.csv"


def matmul_peak_gflops(n: int = 1024, seconds: float = 3.0) -> float:
    """Best fp32 GFLOP/s of an n x n matmul on this machine's configured threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def step_flops(model: torch.nn.Module, loss_fn) -> float:
    """FLOPs of one forward + backward, counted by torch's FlopCounterMode (matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss_fn().backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


# Kinds of operation, by exact ATen name (attention: any SDPA kernel, forward or backward).
PROFILE_GROUPS = {
    "matrix multiplies": {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"},
    "copies (materialised permutes and reshapes)": {"aten::copy_", "aten::clone"},
    "GELU": {"aten::gelu", "aten::gelu_backward"},
    "layer norm": {"aten::native_layer_norm", "aten::native_layer_norm_backward"},
    "additions, reductions, concatenation": {
        "aten::add",
        "aten::add_",
        "aten::sum",
        "aten::cat",
        "aten::mul",
        "aten::fill_",
    },
}


def _group(key: str) -> str:
    if "scaled_dot_product" in key:
        return "attention (SDPA kernels)"
    return next((g for g, names in PROFILE_GROUPS.items() if key in names), "other")


def step_profile(step) -> dict[str, float]:
    """Share of one step's CPU time per kind of operation (torch.profiler, self time)."""
    from torch.profiler import profile

    step()
    with profile() as prof:
        step()
    shares: dict[str, float] = {"attention (SDPA kernels)": 0.0}
    shares |= dict.fromkeys(PROFILE_GROUPS, 0.0) | {"other": 0.0}
    for event in prof.key_averages():
        shares[_group(event.key)] += event.self_cpu_time_total
    total = sum(shares.values())
    return {k: v / total for k, v in shares.items()}


def make_step(model: torch.nn.Module, loss_fn):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def time_rounds(contenders: dict, rounds: int) -> dict[str, list[float]]:
    for fn in contenders.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def latency(encoders: dict, iters: int, chunk: int = 50) -> dict[str, list[float]]:
    x = torch.randn(1, 62, 5)
    out: dict[str, list[float]] = {name: [] for name in encoders}
    with torch.inference_mode():
        for enc in encoders.values():
            for _ in range(20):
                enc(x)
        for _ in range(iters // chunk):
            for name, enc in encoders.items():
                for _ in range(chunk):
                    t = time.perf_counter()
                    enc(x)
                    out[name].append(time.perf_counter() - t)
    return out


def batch1_profile(encoder: MMMEncoder) -> dict[str, float]:
    """Share of a batch-1 forward's CPU time per kind of operation."""

    def forward() -> None:
        with torch.inference_mode():
            for _ in range(20):
                encoder(torch.randn(1, 62, 5))

    return step_profile(forward)


def onnx_encoders(encoder: MMMEncoder, folder: Path) -> dict:
    """The encoder exported with ``mmm_eeg.export``, run by onnxruntime with 1 and 2 threads."""
    import onnxruntime as ort

    from mmm_eeg.export import export_onnx
    from mmm_eeg.inference import MMMModel

    path = export_onnx(MMMModel(encoder), folder / "encoder.onnx")
    present = np.ones((1, 62), dtype=bool)
    out = {}
    for threads in (1, 2):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # onnxruntime's threads spin after each run by default, taking the cores from the
        # contender timed next; without spinning the rows measure each runtime, not the mix.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options)

        def run(x: torch.Tensor, session=session) -> None:
            session.run(None, {"x": x.numpy(), "present": present})

        out[f"onnxruntime, {threads} thread{'s' if threads > 1 else ''}"] = run
    return out


def live_window_ms(encoder: MMMEncoder, iters: int = 200) -> dict[str, float]:
    """Per 1 s window of 19-channel EEG at 500 Hz: DE, mapping, standardisation, encoder."""
    from mmm_eeg.inference import MMMModel
    from mmm_eeg.spec import FeatureSpec

    names = ["Fp1", "Fp2", "F3", "F4", "F7", "F8", "T7", "T8", "C3", "C4", "P7", "P8", "P3",
             "P4", "O1", "O2", "Fz", "Cz", "Pz"]  # fmt: skip
    model = MMMModel(encoder, FeatureSpec())
    window = (np.random.default_rng(0).normal(scale=1e-5, size=(19, 500)), names, 500.0)
    for _ in range(10):
        model.embed(window)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        model.embed(window)
        times.append(time.perf_counter() - t)
    p50 = 1e3 * float(np.percentile(times, 50))
    return {"p50": p50, "p99": 1e3 * float(np.percentile(times, 99)), "real_time_factor": 1e3 / p50}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-iters", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "model.json")
    parser.add_argument("--no-docs", action="store_true", help="Do not touch docs/benchmarks.md.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ours = MMMAutoencoder(MMMEncoder(dim=64, depth=6), decoder_depth=6)
    references = {
        "reference_bool_mask": ReferenceAutoencoder(TABLE),
        "reference_float_mask": ReferenceAutoencoder(TABLE, float_mask=True),
    }
    for ref in references.values():
        ref.load_from(ours)
    x = torch.randn(args.batch, 62, 5)
    present = torch.ones(args.batch, 62, dtype=torch.bool)
    masked = random_mask(present, 0.5, torch.Generator().manual_seed(0))

    with torch.no_grad():
        expected = ours(x, None, masked)
        max_diff = {k: (r(x, masked) - expected).abs().max().item() for k, r in references.items()}

    def ours_loss():
        return ours.loss(x, None, masked)[0]

    def ref_loss(ref):
        return lambda: (((ref(x, masked) - x) ** 2).mean(-1) * masked).sum() / masked.sum()

    flops = step_flops(
        references["reference_bool_mask"], ref_loss(references["reference_bool_mask"])
    )
    peak = matmul_peak_gflops()
    compiled = copy.deepcopy(ours)
    compiled_loss = torch.compile(compiled.loss)
    contenders = {"ours": make_step(ours, ours_loss)}
    contenders["ours_compiled"] = make_step(compiled, lambda: compiled_loss(x, None, masked)[0])
    contenders |= {k: make_step(r, ref_loss(r)) for k, r in references.items()}
    profile_shares = step_profile(contenders["ours"])
    times = time_rounds(contenders, args.rounds)
    step = {
        name: {
            "step_s_median": float(np.median(t)),
            "samples_per_s": args.batch / float(np.median(t)),
        }
        for name, t in times.items()
    }
    ours_gflops = flops / step["ours"]["step_s_median"] / 1e9

    encoder = MMMEncoder(dim=64, depth=6).eval()
    encoders = {
        "reference": ReferenceMMM(TABLE).eval(),
        "ours": encoder,
        "ours + torch.compile": torch.compile(encoder, dynamic=False),
    }
    with tempfile.TemporaryDirectory() as tmp:
        encoders |= onnx_encoders(encoder, Path(tmp))
        lat = latency(encoders, args.latency_iters)
        latency_profile = batch1_profile(encoder)
    live = live_window_ms(encoder)
    lat_ms = {
        name: {"p50": 1e3 * float(np.percentile(t, 50)), "p99": 1e3 * float(np.percentile(t, 99))}
        for name, t in lat.items()
    }
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python bench/model.py " + " ".join(sys.argv[1:]),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": args.threads,
            "torch": torch.__version__,
        },
        "pretrain_step": {
            "batch": args.batch,
            "dim": 64,
            "encoder_blocks": 6,
            "decoder_blocks": 6,
            "rounds": args.rounds,
            **step,
            "speedup_vs_reference_bool_mask": step["ours"]["samples_per_s"]
            / step["reference_bool_mask"]["samples_per_s"],
            "speedup_vs_reference_float_mask": step["ours"]["samples_per_s"]
            / step["reference_float_mask"]["samples_per_s"],
            "compiled_speedup_vs_reference_bool_mask": step["ours_compiled"]["samples_per_s"]
            / step["reference_bool_mask"]["samples_per_s"],
            "max_abs_diff_vs_reference": max_diff,
            "gflop_per_step": flops / 1e9,
            "ours_gflops": ours_gflops,
        },
        "matmul_peak_gflops": peak,
        "ours_fraction_of_peak": ours_gflops / peak,
        "compiled_fraction_of_peak": flops / step["ours_compiled"]["step_s_median"] / 1e9 / peak,
        "ours_step_profile": profile_shares,
        "latency_batch1_ms": {
            **lat_ms,
            "speedup_p50": lat_ms["reference"]["p50"] / lat_ms["ours"]["p50"],
            "speedup_p99": lat_ms["reference"]["p99"] / lat_ms["ours"]["p99"],
        },
        "latency_batch1_profile": latency_profile,
        "live_window_ms": live,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    print(table)
    if not args.no_docs:
        update_benchmarks_md("model", table)


def markdown(r: dict) -> str:
    s, lat = r["pretrain_step"], r["latency_batch1_ms"]
    rows = [
        f"Measured {r['date']} with `{r['command'].strip()}` ({r['machine']['threads']} threads, "
        f"torch {r['machine']['torch']}).",
        "",
        f"Pretraining step (forward + backward + AdamW), width 64, 6 + 6 blocks, batch "
        f"{s['batch']}, median of {s['rounds']} alternating rounds:",
        "",
        "| formulation | samples/s | step (s) | × the reference (boolean mask) | max abs diff "
        "of output vs ours |",
        "|---|---|---|---|---|",
    ]
    base = s["reference_bool_mask"]["samples_per_s"]
    for key, label in (("reference_bool_mask", "reference: MHA + boolean mask"),
                       ("reference_float_mask", "reference: MHA + float mask"),
                       ("ours", "ours (SDPA, fused QKV)"),
                       ("ours_compiled", "ours + torch.compile (Inductor)")):  # fmt: skip
        diff = s["max_abs_diff_vs_reference"].get(key)
        rows.append(
            f"| {label} | {s[key]['samples_per_s']:.0f} | {s[key]['step_s_median']:.2f} | "
            f"{s[key]['samples_per_s'] / base:.2f}× | {'—' if diff is None else f'{diff:.1e}'} |"
        )
    rows += [
        "",
        f"Matmul work per step: {s['gflop_per_step']:.1f} GFLOP; ours reaches "
        f"{s['ours_gflops']:.1f} GFLOP/s = {100 * r['ours_fraction_of_peak']:.0f} % of this "
        f"machine's measured fp32 matmul peak ({r['matmul_peak_gflops']:.1f} GFLOP/s, "
        f"1024² matmul); compiled: {100 * r['compiled_fraction_of_peak']:.0f} %.",
        "",
        "Where one step of ours spends its CPU time (torch.profiler, self time): "
        + ", ".join(f"{k} {100 * v:.0f} %" for k, v in r["ours_step_profile"].items())
        + ".",
        "",
        "Batch-1 inference latency of the 6-block encoder (under `torch.inference_mode`):",
        "",
        "| formulation | p50 (ms) | p99 (ms) | faster than the reference at p50 / p99 |",
        "|---|---|---|---|",
    ]
    ref = lat["reference"]
    for name, row in lat.items():
        if isinstance(row, dict):
            label = {"ours": "ours (eager)", "reference": "reference (MHA)"}
            rows.append(
                f"| {label.get(name, name)} | {row['p50']:.2f} | {row['p99']:.2f} | "
                f"{ref['p50'] / row['p50']:.2f}× / {ref['p99'] / row['p99']:.2f}× |"
            )
    live = r["live_window_ms"]
    rows += [
        "",
        "Where a batch-1 forward of ours spends its CPU time: "
        + ", ".join(f"{k} {100 * v:.0f} %" for k, v in r["latency_batch1_profile"].items())
        + ".",
        "",
        f"Live loop, per 1 s window of 19 channels at 500 Hz (DE, mapping, standardisation, "
        f"encoder; `MMMModel.embed`): p50 {live['p50']:.2f} ms, p99 {live['p99']:.2f} ms, "
        f"{live['real_time_factor']:.0f}× faster than real time.",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
