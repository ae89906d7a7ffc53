"""The transfer benchmark's report: per-subject summaries, paired differences, tables, plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmm_eeg.viz import pyplot, save_figure


def summarize_subjects(per_subject: dict[str, float]) -> dict[str, Any]:
    values = list(per_subject.values())
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "per_subject": per_subject,
    }


def per_subject_summary(fold_results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, std and per-subject balanced accuracy over ``train_fold`` results."""
    collected: dict[str, list[float]] = {}
    for r in fold_results:
        for s, v in r["test_per_subject"].items():
            collected.setdefault(s, []).append(v)
    return summarize_subjects({s: float(np.mean(v)) for s, v in collected.items()})


def results_markdown(r: dict[str, Any]) -> str:
    """Tables of the results."""
    p, protocol = r["pretraining"], r["protocol"]
    run = "quick" if protocol["quick"] else "full"
    n_tuned = len(protocol["finetune_test_subjects"])
    lines = [
        f"Downstream: eegmat rest vs arithmetic, {len(protocol['test_subjects'])} test subjects "
        f"({run} run, seed {protocol['seed']}); fine-tuned columns over the first {n_tuned}. "
        f"Pretraining pool: {p['windows']} windows ({p['hours']} h), {p['epochs']} epochs; "
        f"held-out reconstruction loss {_f(p['heldout_loss'])} vs "
        f"{_f(p['heldout_baseline'])} for predicting the band mean.",
        "",
        "| method | LOSO fine-tuned / LR | LOSO linear probe | 3 subjects | 3 subjects, probe "
        "| within-subject | 12 ch | 8 ch | 4 ch | Muse-like 4 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in r["methods"].items():
        cells = [
            _ms(m["balanced_accuracy"]),
            _ms(m.get("linear_probe")),
            _ms(m["low_label"]),
            _ms(m.get("low_label_probe")),
            _ms(m["within_subject"]),
        ]
        missing = m["missing_channels"]
        cells += [
            "—" if missing is None else f"{missing[k]:.3f}" for k in ("12", "8", "4", "muse4")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    curve = ", ".join(f"{e}: {v:.3f}" for e, v in p["probe_by_epoch"].items())
    lines += [
        "",
        "Balanced accuracy per test subject, mean ± std over subjects. Classical methods: "
        "logistic regression (C by inner cross-validation over training subjects); MMM: "
        "fine-tuned, and the same logistic regression on its frozen tokens (probe). "
        "Missing-channel columns: mean over subjects, folds and channel subsets, without "
        "retraining.",
        f"Pool encoder, LOSO probe by pretraining epoch: {curve}.",
        f"Runtime: {r['runtime_s']:.0f} s.",
        *paired_markdown(r),
    ]
    return "\n".join(lines) + "\n"


def paired_difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a - b`` over the subjects both summaries score: mean, std, and how many ``a`` wins."""
    subjects = sorted(set(a["per_subject"]) & set(b["per_subject"]))
    diff = np.array([a["per_subject"][s] - b["per_subject"][s] for s in subjects])
    return {
        "mean": float(diff.mean()),
        "std": float(diff.std()),
        "better": int((diff > 0).sum()),
        "n": len(subjects),
    }


def paired_markdown(r: dict[str, Any]) -> list[str]:
    """Each MMM column against the strongest classical baseline, paired over subjects."""
    classical = {k: m for k, m in r["methods"].items() if not k.startswith("mmm")}
    if not classical:
        return []
    best = max(classical, key=lambda k: classical[k]["balanced_accuracy"]["mean"])
    lines = [
        "",
        f"Paired against the strongest classical baseline ({best}), per subject: mean "
        "difference ± std (subjects where MMM is better / subjects).",
        "",
        "| method | LOSO fine-tuned | LOSO linear probe | 3 subjects | 3 subjects, probe |",
        "|---|---|---|---|---|",
    ]
    base = classical[best]
    for name, m in r["methods"].items():
        if name in classical:
            continue
        cells = []
        for key, against in (
            ("balanced_accuracy", "balanced_accuracy"),
            ("linear_probe", "balanced_accuracy"),
            ("low_label", "low_label"),
            ("low_label_probe", "low_label"),
        ):
            d = paired_difference(m[key], base[against])
            cells.append(f"{d['mean']:+.3f} ± {d['std']:.3f} ({d['better']}/{d['n']})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def demo_markdown(r: dict[str, Any], fine_tuned: bool = True) -> str:
    """The demo's compact table (fits 100 columns): the main protocols with their spread.

    ``fine_tuned=False`` leaves the MMM fine-tuned cells out (a quick budget too short to
    train them; "—") and keeps their probes.
    """
    lines = [
        "| method | LOSO: LR or fine-tuned | LOSO linear probe | within-subject |",
        "|---|---|---|---|",
    ]
    for name, m in r["methods"].items():
        main = m["balanced_accuracy"]
        note = f" ({len(main['per_subject'])} subj.)" if len(main["per_subject"]) < 12 else ""
        first = "—" if not fine_tuned and "linear_probe" in m else f"{_ms(main)}{note}"
        lines.append(
            f"| {name} | {first} | {_ms(m.get('linear_probe'))} | {_ms(m['within_subject'])} |"
        )
    return "\n".join(lines) + "\n"


def _ms(summary: dict[str, Any] | None) -> str:
    return "—" if summary is None else f"{summary['mean']:.3f} ± {summary['std']:.3f}"


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def transfer_plots(out: Path, r: dict[str, Any]) -> None:
    """Bars with per-subject dots; accuracy against channels; the pretraining reconstruction."""
    import shutil

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(r["methods"])
    labels = {"balanced_accuracy": "fine-tuned / logistic regression", "linear_probe": "probe"}
    for i, name in enumerate(names):
        for j, (key, colour) in enumerate((("balanced_accuracy", "C0"), ("linear_probe", "C1"))):
            summary = r["methods"][name].get(key)
            if summary is None:
                continue
            xpos = i + (j - 0.5) * 0.35
            ax.bar(
                xpos, summary["mean"], 0.33, color=colour, alpha=0.7, label=labels.pop(key, None)
            )
            values = list(summary["per_subject"].values())
            ax.scatter(np.full(len(values), xpos), values, color="k", s=8, zorder=3)
    ax.axhline(0.5, ls="--", color="grey")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("balanced accuracy (test subjects)")
    ax.set_ylim(0, 1.05)
    ax.legend()
    save_figure(fig, out / "plots" / "methods.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in names:
        m = r["methods"][name]
        if m["missing_channels"] is None:
            continue
        ys = [
            m["missing_channels"]["4"],
            m["missing_channels"]["8"],
            m["missing_channels"]["12"],
            m["balanced_accuracy"]["mean"],
        ]
        ax.plot([4, 8, 12, 19], ys, "-o", label=name)
    ax.set_xlabel("channels kept (of 19)")
    ax.set_ylabel("balanced accuracy")
    ax.legend()
    save_figure(fig, out / "plots" / "accuracy_vs_channels.png")
    curve = r["pretraining"]["probe_by_epoch"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([int(e) for e in curve], list(curve.values()), "-o")
    ax.axhline(0.5, ls="--", color="grey")
    ax.set_xlabel("pretraining epochs (pool)")
    ax.set_ylabel("LOSO linear-probe balanced accuracy")
    save_figure(fig, out / "plots" / "probe_vs_pretraining_epochs.png")
    source = out / "pretrain" / "plots" / "reconstruction_vs_mask_ratio.png"
    if source.is_file():
        shutil.copy(source, out / "plots" / "pretraining_reconstruction.png")
