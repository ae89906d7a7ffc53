"""Tokens from the signal: does pretraining pay with raw-signal tokens? (three tasks)

One corpus of ../shared/eeg that keeps each window's signal (100 Hz, 1-45 Hz, units of
100 µV) beside its DE. For each token type (``de``, ``raw``, ``de+raw``) an encoder is pretrained
on the transfer benchmark's pool (everything but eegmat 24-35) with the transfer benchmark's
recipe (width 32, 4 + 4 blocks, 40 epochs, multi-stage masking; raw tokens reconstruct the
masked nodes' waveform and log-amplitude spectrum, weights 1 and 1), and the same encoder
untrained (the run's own initial weights, seed 0) is kept beside it. Then ``benchmark compare``
scores every one of them as a linear probe, with DE + logistic regression, the Riemannian model,
the large untrained encoder and the released TUH encoder, and fine-tunes each token type's
encoder, pretrained and untrained, on each training fold (``--finetune``: 15 epochs, early
stopping on the fold's validation windows), on these tasks:

- eegmat rest vs arithmetic, leave one subject out over eegmat 24-35 (never pretrained on);
- Muse N170 face vs house: event-locked windows (-0.1 to 0.9 s around each stimulus, 4
  channels), leave one subject out over the 5 subjects, with xDAWN + tangent space beside the
  classical methods. The pool held these recordings' tiled windows, unlabelled: the encoders saw
  the subjects' signals (not the stimuli's timing nor the labels) during pretraining.
- eegmat again on the 4 of its 19 electrodes nearest to a Muse headset's (probes only):
  how much of its accuracy each method keeps;
- eegmmidb S001 imagined left vs right fist (runs 4, 8, 12; the 1 s windows of each cue's
  4.1 s span): one subject, so within subject, 5 blocks in time of each run with no training
  window within 4 s of a test window, paired over the 5 folds (the smallest Wilcoxon p of 5
  pairs is 0.0625); CSP + LDA beside the classical methods. The pool held all 14 runs
  unlabelled, as for Muse.

Reported: each pretrained encoder against its untrained twin and against the strongest classical
method, paired over subjects (mean, spread, subjects better, Wilcoxon p). Nothing is chosen on
the test subjects: recipe and settings are fixed here before any probe.

    .venv/bin/python bench/signal_tokens.py          # ~70 min on 2 cores
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import lightning as L
from scipy.stats import wilcoxon

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import update_benchmarks_md  # noqa: E402
from mmm_eeg.atomic import atomic_path  # noqa: E402
from mmm_eeg.corpus.build import build_corpus  # noqa: E402
from mmm_eeg.datasets import default_data_dir  # noqa: E402
from mmm_eeg.experiments.compare import (  # noqa: E402
    FINETUNE_EPOCHS,
    FINETUNED,
    RANDOM_WEIGHTS,
    run_compare,
)
from mmm_eeg.experiments.missing_channels import channel_subsets  # noqa: E402
from mmm_eeg.experiments.transfer import (  # noqa: E402
    SIGNAL_PREPROCESSING,
    benchmark_corpus,
    settings,
)
from mmm_eeg.experiments.transfer_report import paired_difference  # noqa: E402
from mmm_eeg.io.sources import discover_sources  # noqa: E402
from mmm_eeg.model.loading import load_encoder  # noqa: E402
from mmm_eeg.spec import TOKENS  # noqa: E402
from mmm_eeg.train.pretrain import pretrain, training_summary  # noqa: E402
from mmm_eeg.train.selection import select_windows  # noqa: E402

#: Muse N170 stimuli (eeg-notebooks' markers) and the event-locked windows around them.
MUSE_EVENTS = "1=house,2=face"
MUSE = replace(SIGNAL_PREPROCESSING, window=1.0, epoch_tmin=-0.1)
#: eegmmidb runs of imagined left / right fist movement, labelled by their cue spans.
MOTOR_TASK, MOTOR_EVENTS = "imagined_left_right_fist", "T1,T2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/signal_tokens")
    parser.add_argument("--epochs", type=int, default=None, help="(default: the recipe's 40)")
    parser.add_argument("--quick", action="store_true", help="1 epoch, no Riemann (a check)")
    args = parser.parse_args()
    started = time.perf_counter()
    corpus, subjects = benchmark_corpus(args.data, args.out, SIGNAL_PREPROCESSING)
    pool = f"subject not in [{', '.join(subjects)}]"
    recipe = replace(settings(False, 0).pretrain, select=pool, snapshot_every_n_epochs=None)
    if args.epochs or args.quick:
        recipe = replace(recipe, epochs=args.epochs or 1)
    sources, reconstruction, step_s = [], {}, {}
    for tokens in TOKENS:
        config = replace(recipe, tokens=tokens)
        name = tokens.replace("+", "_")
        run, twin = args.out / f"pretrained_{name}", args.out / f"untrained_{name}"
        if not (run / "encoder" / "config.json").is_file():
            t0 = time.perf_counter()
            pretrain(corpus.path, run, config, resume=(run / "checkpoints" / "last.ckpt").is_file())
            step_s[tokens] = round(time.perf_counter() - t0, 1)
        reconstruction[tokens] = training_summary(run)
        # The run's initial weights: pretrain seeds everything, then draws the encoder first.
        L.seed_everything(config.seed, verbose=False)
        spec = corpus.feature_spec(config.normalize, tokens)
        initial = load_encoder(None, corpus.topology, feature_spec=spec, **config.architecture)
        initial.save_pretrained(
            twin, metadata={"weights": RANDOM_WEIGHTS}
        )  # fine-tuned from scratch
        sources += [twin, run]
    downstream = f"subject in [{', '.join(subjects)}]"
    # every token type, pretrained and untrained, fine-tuned too (compare's fixed recipe)
    tuned = [
        f"mmm_{kind}_{t.replace('+', '_')}" for t in TOKENS for kind in ("untrained", "pretrained")
    ]
    muse = muse_corpus(args.data, args.out / "muse_corpus")
    motor = motor_corpus(args.data, args.out / "motor_corpus")
    tasks = {}
    for task, path, select in (
        ("eegmat", corpus.path, downstream), ("muse_n170", muse, None), ("eegmmidb", motor, None)
    ):  # fmt: skip
        result = run_compare(
            path, args.out / f"compare_{task}", sources, select=select, quick=args.quick, seed=0,
            finetune=tuned, finetune_epochs=2 if args.quick else FINETUNE_EPOCHS,
        )  # fmt: skip
        pairs, tuned_pairs = {}, {}
        for tokens in TOKENS:
            name = tokens.replace("+", "_")
            methods = result["methods"]
            for kind, out in (("", pairs), (FINETUNED, tuned_pairs)):
                a = methods[f"mmm_pretrained_{name}{kind}"]["balanced_accuracy"]
                b = methods[f"mmm_untrained_{name}{kind}"]["balanced_accuracy"]
                out[tokens] = _paired(a, b)
        tasks[task] = {
            "unit": result["task"]["unit"],
            "pretrained_minus_untrained": pairs,
            "finetuned_pretrained_minus_untrained": tuned_pairs,
            **{k: result[k] for k in ("methods", "paired", "strongest_classical", "verdict",
                                      "skipped")},
        }  # fmt: skip
    # The same eegmat task on the 4 of its 19 electrodes nearest to a Muse headset's (probes:
    # fine-tuning reads every electrode): how much of each method's accuracy a 4-channel cap keeps
    rows = select_windows(corpus.index, downstream)
    four = list(channel_subsets(corpus, rows, 1, 0)["muse4"][0])
    result = run_compare(corpus.path, args.out / "compare_eegmat_4ch", sources, select=downstream,
                         quick=args.quick, seed=0, channels=four)  # fmt: skip
    full = tasks["eegmat"]["methods"]
    chance = 1 / len(result["task"]["labels"])
    tasks["eegmat_4ch"] = {
        "channels": four,
        "methods": result["methods"],
        # accuracy kept, and the part of it above chance kept (0.60 -> 0.55 keeps 92 % of the
        # accuracy but half of what the method read above chance)
        "kept_fraction": {
            name: m["balanced_accuracy"]["mean"] / full[name]["balanced_accuracy"]["mean"]
            for name, m in result["methods"].items()
        },
        "kept_above_chance": {
            name: (m["balanced_accuracy"]["mean"] - chance)
            / (full[name]["balanced_accuracy"]["mean"] - chance)
            for name, m in result["methods"].items()
        },
        **{k: result[k] for k in ("paired", "strongest_classical", "verdict", "skipped")},
    }
    summary = {
        "recipe": {k: v for k, v in vars(recipe).items() if v is not None},
        "preprocessing": SIGNAL_PREPROCESSING.to_dict(),
        "pool": pool,
        "reconstruction": reconstruction,
        "pretraining_s": step_s,
        "tasks": tasks,
        "storage": _storage(corpus),
        "runtime_s": round(time.perf_counter() - started, 1),
        "quick": args.quick,
    }
    if args.quick:  # a check of the whole path, the report included; nothing recorded
        print(markdown(summary))
        return
    with atomic_path(ROOT / "bench" / "results" / "signal_tokens.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    update_benchmarks_md("signal_tokens", markdown(summary))
    print(markdown(summary))


def muse_corpus(data: Path, out: Path) -> Path:
    """The Muse N170 recordings as event-locked windows with their signal (built once)."""
    sources, skipped = discover_sources([data / "muse_n170"], events=MUSE_EVENTS)
    build_corpus(sources, out, config=MUSE, skipped=skipped)
    return out


def motor_corpus(data: Path, out: Path) -> Path:
    """eegmmidb S001's imagined left / right fist runs, windows of the cue spans (built once)."""
    rows = list(csv.DictReader((data / "eegmmidb" / "manifest.csv").open()))
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest = out.parent / "motor_manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            if r["task"] == MOTOR_TASK:
                writer.writerow({**r, "path": str(data / "eegmmidb" / r["path"])})
    sources, skipped = discover_sources(
        [manifest], events=MOTOR_EVENTS, labels=["left_fist", "right_fist"]
    )
    build_corpus(sources, out, config=SIGNAL_PREPROCESSING, skipped=skipped)
    return out


def _four_channels(t: dict, full: dict) -> list[str]:
    """The 4-electrode eegmat table: each method's probe on 4 and on 19 electrodes."""
    lines = [
        "",
        f"**eegmat on 4 of its 19 electrodes** ({', '.join(t['channels'])}, the nearest to a "
        "Muse headset's TP9, AF7, AF8, TP10; every method reads only those; probes, leave one "
        "subject out)",
        "",
        "| method | 19 electrodes | 4 electrodes | accuracy kept | above chance kept |",
        "|---|---|---|---|---|",
    ]
    for name, m in t["methods"].items():
        a, b = full["methods"][name]["balanced_accuracy"], m["balanced_accuracy"]
        lines.append(
            f"| {name} | {a['mean']:.3f} | {b['mean']:.3f} ± {b['std']:.3f} | "
            f"{t['kept_fraction'][name]:.0%} | {t['kept_above_chance'][name]:.0%} |"
        )
    mmm = [m for m in full["methods"] if m.startswith("mmm_") and not m.endswith(FINETUNED)]
    best = max(mmm, key=lambda m: full["methods"][m]["balanced_accuracy"]["mean"])
    return [
        *lines,
        "",
        f"The best MMM probe on 19 electrodes, {best}, keeps {t['kept_fraction'][best]:.0%} of "
        f"its accuracy on 4 ({t['kept_above_chance'][best]:.0%} of its part above chance). "
        "Fine-tuned rows are not measured on 4 electrodes (`--channels` scores probes: "
        "fine-tuning reads every electrode of the corpus). Verdict of `benchmark compare "
        f"--channels`: {t['verdict']}",
    ]


def _paired(a: dict, b: dict) -> dict:
    diff = paired_difference(a, b)
    values = [a["per_subject"][s] - b["per_subject"][s] for s in b["per_subject"]]
    diff["wilcoxon_p"] = float(wilcoxon(values).pvalue) if any(values) else 1.0
    return diff


def _storage(corpus) -> dict:
    """Bytes on disk per window: DE and present mask, and the signal."""
    sizes = {}
    for name in ("features", "present", "signal"):
        folder = corpus.path / "data.zarr" / name
        sizes[name] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    n = len(corpus)
    present = float(corpus.present[:].sum(1).mean())
    return {
        "windows": n,
        "mean_present_nodes": round(present, 1),
        "de_bytes_per_window": round((sizes["features"] + sizes["present"]) / n, 1),
        "signal_bytes_per_window": round(sizes["signal"] / n, 1),
        "signal_dtype": "float16",
        "signal_samples": corpus.config.signal_samples,
    }


def markdown(r: dict) -> str:
    st, rec = r["storage"], r["reconstruction"]
    lines = [
        f"Measured with `python bench/signal_tokens.py` ({r['runtime_s'] / 60:.0f} min on 2 cores"
        + ("" if r["pretraining_s"] else ", the pretraining runs reused; about 70 min with them")
        + f"): encoders of width {r['recipe']['dim']}, {r['recipe']['depth']} + "
        f"{r['recipe']['decoder_depth']} blocks pretrained {r['recipe']['epochs']} epochs on the "
        "pool (everything but eegmat 24-35), each beside its own initial weights (untrained); "
        "every one a linear probe on its frozen region and class tokens, and fine-tuned with "
        "a head on each training fold (`benchmark compare --finetune`: 15 epochs, early "
        "stopping on the fold's validation windows; leave one subject out, within subject for "
        "eegmmidb). Signal: "
        f"{st['signal_samples']} samples per 1 s window (100 Hz, 1-45 Hz, units of 100 µV, "
        "float16). Held-out reconstruction of the pool (predicting each "
        "target value's mean in brackets): "
        + ", ".join(
            f"{t} {rec[t]['best_val_loss']:.3f} ({rec[t]['val_baseline']:.3f})" for t in TOKENS
        )
        + ".",
    ]
    titles = {
        "eegmat": "eegmat rest vs arithmetic, 12 subjects never pretrained on",
        "muse_n170": "Muse N170 face vs house, event-locked (-0.1 to 0.9 s), 4 channels, "
        "5 subjects",
        "eegmmidb": "eegmmidb S001 imagined left vs right fist, 64 channels, within subject "
        "(5 blocks in time, 4 s gap; paired over the 5 folds, smallest possible p 0.0625)",
    }
    for task, t in r["tasks"].items():
        if task == "eegmat_4ch":
            lines += _four_channels(t, r["tasks"]["eegmat"])
            continue
        methods, best, unit = t["methods"], t["strongest_classical"], t.get("unit", "subject")
        lines += [
            "",
            f"**{titles[task]}**",
            "",
            f"| tokens | untrained probe | pretrained probe | pretrained − untrained ({unit}s "
            f"better, Wilcoxon p) | pretrained − {best} ({unit}s better, p) | untrained "
            "fine-tuned | pretrained fine-tuned | pretrained − untrained, fine-tuned |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for tokens in TOKENS:
            name = tokens.replace("+", "_")
            u = methods[f"mmm_untrained_{name}"]["balanced_accuracy"]
            p = methods[f"mmm_pretrained_{name}"]["balanced_accuracy"]
            d, v = t["pretrained_minus_untrained"][tokens], t["paired"][f"mmm_pretrained_{name}"]
            fu = methods[f"mmm_untrained_{name}{FINETUNED}"]["balanced_accuracy"]
            fp = methods[f"mmm_pretrained_{name}{FINETUNED}"]["balanced_accuracy"]
            fd = t["finetuned_pretrained_minus_untrained"][tokens]
            lines.append(
                f"| {tokens} | {u['mean']:.3f} ± {u['std']:.3f} | {p['mean']:.3f} ± "
                f"{p['std']:.3f} | {d['mean']:+.3f} ± {d['std']:.3f} ({d['better']}/{d['n']}, "
                f"{d['wilcoxon_p']:.2g}) | {v['mean']:+.3f} ± {v['std']:.3f} "
                f"({v['better']}/{v['n']}, {v['wilcoxon_p']:.2g}) | {fu['mean']:.3f} ± "
                f"{fu['std']:.3f} | {fp['mean']:.3f} ± {fp['std']:.3f} | {fd['mean']:+.3f} ± "
                f"{fd['std']:.3f} ({fd['better']}/{fd['n']}, {fd['wilcoxon_p']:.2g}) |"
            )
        others = [m for m in methods if not m.startswith(("mmm_pretrained_", "mmm_untrained_"))]
        lines += [
            "",
            "Beside them: "
            + ", ".join(
                f"{m} {methods[m]['balanced_accuracy']['mean']:.3f} ± "
                f"{methods[m]['balanced_accuracy']['std']:.3f}"
                for m in others
            )
            + f". Verdict of `benchmark compare`: {t['verdict']}",
        ]
    per_node = st["signal_bytes_per_window"] / st["mean_present_nodes"]
    lines += [
        "",
        f"Storage (eegmat, eegmmidb and Muse windows): {st['signal_bytes_per_window']:.0f} bytes "
        f"per window for the signal (float16, Blosc LZ4 over shuffled bytes, "
        f"{st['mean_present_nodes']:.0f} of "
        f"62 nodes present on average, {per_node:.0f} bytes per present node) against "
        f"{st['de_bytes_per_window']:.0f} for DE and the present mask. At TUH EEG's scale "
        "(about 27,000 hours, 9.7·10⁷ one-second windows of about 20 channels) that is "
        f"{per_node * 20 * 9.7e7 / 1e12:.1f} TB for the signal against "
        f"{st['de_bytes_per_window'] * 9.7e7 / 1e12:.2f} TB for DE.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
