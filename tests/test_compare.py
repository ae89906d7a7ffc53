"""``benchmark compare``: a verdict on any labelled corpus, on real recordings."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mmm_eeg import UserInputError
from mmm_eeg.cli import app
from mmm_eeg.corpus.build import build_corpus
from mmm_eeg.experiments.compare import run_compare, verdict
from mmm_eeg.io.sources import discover_sources

runner = CliRunner()
SUBJECTS = range(24, 30)  # six eegmat subjects, never in any pretraining pool of ours


def _corpus(eeg_data, out, keep):
    """A corpus of the eegmat recordings ``keep(subject number, label)`` accepts."""
    rows = list(csv.DictReader((eeg_data / "eegmat" / "manifest.csv").open()))
    chosen = [r for r in rows if keep(int(r["subject"][-2:]), r["label"])]
    manifest = out.parent / f"{out.name}.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in chosen:
            writer.writerow({**r, "path": str(eeg_data / "eegmat" / r["path"])})
    sources, _ = discover_sources([manifest])
    build_corpus(sources, out)
    return out


@pytest.fixture(scope="module")
def state_corpus(eeg_data, tmp_path_factory):
    """Rest vs arithmetic, both conditions for every subject (a state task)."""
    return _corpus(
        eeg_data, tmp_path_factory.mktemp("compare") / "state", lambda s, _: s in SUBJECTS
    )


def test_quick_compare_gives_a_verdict_and_resumes(state_corpus, tmp_path):
    result = run_compare(state_corpus, tmp_path / "out", quick=True)
    task = result["task"]
    assert task["protocol"] == "loso" and not task["trait"]
    assert task["subjects"] == [f"eegmat-{s}" for s in SUBJECTS]
    assert task["standardisation"] == "subject-node"
    assert {"de_logreg", "mmm_untrained", "mmm_base_tuh"} <= set(result["methods"])
    assert "riemann" in result["skipped"]  # --quick leaves it out, and says so
    assert "csp_lda" in result["skipped"]
    for m in result["methods"].values():
        b = m["balanced_accuracy"]
        assert set(b["per_subject"]) == set(task["subjects"])
        assert b["mean"] == pytest.approx(sum(b["per_subject"].values()) / len(SUBJECTS))
    # the classical baseline reads the task (floor: a collapse to chance must fail)
    assert result["methods"]["de_logreg"]["balanced_accuracy"]["mean"] > 0.6
    assert result["strongest_classical"] == "de_logreg"
    paired = result["paired"]["mmm_base_tuh"]
    assert paired["n"] == len(SUBJECTS) and 0 <= paired["wilcoxon_p"] <= 1
    assert result["verdict"].startswith(("mmm_untrained probe", "mmm_base_tuh probe"))
    assert "of 6 subjects" in result["verdict"]
    for name in ("results.json", "report.md", "paired.png", "methods/de_logreg.json"):
        assert (tmp_path / "out" / name).is_file()
    # A rerun reuses each finished method (here: a saved score, altered to tell)
    saved = tmp_path / "out" / "methods" / "de_logreg.json"
    altered = json.loads(saved.read_text())
    altered["balanced_accuracy"]["mean"] = 0.123
    saved.write_text(json.dumps(altered))
    again = run_compare(state_corpus, tmp_path / "out", quick=True)
    assert again["methods"]["de_logreg"]["balanced_accuracy"]["mean"] == 0.123
    # ... but not for another task (here: another seed of the folds and probes)
    other = run_compare(state_corpus, tmp_path / "out", quick=True, seed=1)
    assert other["methods"]["de_logreg"]["balanced_accuracy"]["mean"] != 0.123


def test_pretrained_models_are_probed_under_their_own_names(state_corpus, tmp_path):
    """Two runs whose folders share a name get distinct rows; a model made for other features
    than the corpus holds is refused, naming the difference."""
    import torch

    from mmm_eeg.corpus import Corpus
    from mmm_eeg.model import MMMEncoder
    from mmm_eeg.spec import FeatureSpec
    from mmm_eeg.windows import PreprocessConfig

    spec = Corpus(state_corpus).feature_spec("subject-node")
    for parent in ("a", "b"):
        torch.manual_seed(len(parent))
        MMMEncoder(dim=16, depth=1, heads=2, feature_spec=spec).save_pretrained(
            tmp_path / parent / "encoder"
        )
    sources = [tmp_path / "a" / "encoder", tmp_path / "b" / "encoder"]
    result = run_compare(state_corpus, tmp_path / "out", pretrained=sources, quick=True)
    assert {"mmm_a_encoder", "mmm_b_encoder"} <= set(result["methods"])
    assert set(result["paired"]) >= {"mmm_a_encoder", "mmm_b_encoder"}
    # a run retrained in place is scored again (its weights' digest is in the fingerprint)
    # ... and an unchanged one is reused (the digest is stable across loads)
    for name in ("mmm_a_encoder", "mmm_b_encoder"):
        saved = tmp_path / "out" / "methods" / f"{name}.json"
        altered = json.loads(saved.read_text())
        altered["balanced_accuracy"]["mean"] = 0.123
        saved.write_text(json.dumps(altered))
    torch.manual_seed(7)
    MMMEncoder(dim=16, depth=1, heads=2, feature_spec=spec).save_pretrained(sources[0])
    again = run_compare(state_corpus, tmp_path / "out", pretrained=sources, quick=True)
    assert again["methods"]["mmm_a_encoder"]["balanced_accuracy"]["mean"] != 0.123
    assert again["methods"]["mmm_b_encoder"]["balanced_accuracy"]["mean"] == 0.123
    other = FeatureSpec(PreprocessConfig(window=2.0), normalize="subject")
    MMMEncoder(dim=16, depth=1, heads=2, feature_spec=other).save_pretrained(tmp_path / "w2")
    with pytest.raises(UserInputError, match=r"window: model 2\.0"):
        run_compare(state_corpus, tmp_path / "o2", pretrained=[tmp_path / "w2"], quick=True)


def test_compare_command_prints_the_verdict(state_corpus, tmp_path):
    result = runner.invoke(
        app, ["benchmark", "compare", str(state_corpus), "--out", str(tmp_path / "o"), "--quick"]
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "Verdict" in output and "| de_logreg |" in output
    bad = runner.invoke(app, ["benchmark", "compare", str(state_corpus), "--out",
                              str(tmp_path / "p"), "--select", "subject == nobody"])  # fmt: skip
    assert bad.exit_code == 2 and "no labelled window" in bad.output


def test_a_trait_task_is_not_standardised_per_subject(eeg_data, tmp_path):
    """One label per subject (even subjects rest, odd ones arithmetic): per-subject
    standardisation would remove the label; the comparison fits it on training folds."""

    def keep(s, label):
        return s in SUBJECTS and (s % 2 == 0) == (label == "rest")

    trait = _corpus(eeg_data, tmp_path / "trait", keep)
    result = run_compare(trait, tmp_path / "out", quick=True)
    assert result["task"]["trait"] is True
    assert result["task"]["standardisation"] == "fitted on each training fold"
    assert set(result["methods"]) >= {"de_logreg", "mmm_untrained"}
    with pytest.raises(UserInputError, match="one label"):
        run_compare(trait, tmp_path / "o2", quick=True, protocol="within-subject")
    # three training subjects, two of which validate: the one left has one class
    with pytest.raises(UserInputError, match="would never see"):
        run_compare(trait, tmp_path / "o3", quick=True, protocol="holdout",
                    test_subjects=["eegmat-24", "eegmat-25", "eegmat-26"],
                    finetune=["mmm_untrained"])  # fmt: skip
    assert not (tmp_path / "o3" / "methods").exists()  # refused before anything ran


def test_one_subject_is_compared_within_subject_with_csp(eeg_data, tmp_path):
    """eegmmidb S001 imagined left vs right fist (runs 4, 8, 12; 1 s windows of the cue
    spans): one subject, so blocks in time with no training window within 4 s of a test
    window; CSP + LDA applies (64 channels, classes alternate within each run)."""
    rows = list(csv.DictReader((eeg_data / "eegmmidb" / "manifest.csv").open()))
    chosen = [r for r in rows if r["task"] == "imagined_left_right_fist"]
    manifest = tmp_path / "mi.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in chosen:
            writer.writerow({**r, "path": str(eeg_data / "eegmmidb" / r["path"])})
    sources, _ = discover_sources([manifest], events="T1,T2", labels=["left_fist", "right_fist"])
    build_corpus(sources, tmp_path / "corpus")
    with pytest.raises(UserInputError, match="within-subject"):
        run_compare(tmp_path / "corpus", tmp_path / "o1", protocol="loso")
    result = run_compare(tmp_path / "corpus", tmp_path / "out")
    task = result["task"]
    assert (task["protocol"], task["unit"], task["gap_windows"]) == ("within-subject", "fold", 4)
    folds = {f"eegmmidb-001 block-{j}-of-5" for j in range(1, 6)}
    assert {"csp_lda", "riemann", "de_logreg"} <= set(result["methods"])
    assert "xdawn" in result["skipped"]
    for m in result["methods"].values():
        assert set(m["balanced_accuracy"]["per_subject"]) == folds
    best = result["methods"][result["strongest_classical"]]["balanced_accuracy"]["mean"]
    assert best > 0.6  # the classical decoders read imagined movement
    assert "of 5 folds" in result["verdict"]
    assert "5 blocks in time, gap 4 s" in (tmp_path / "out" / "report.md").read_text()


def test_verdict_wording():
    def scores(values):
        per = {f"s{i}": v for i, v in enumerate(values)}
        return {"balanced_accuracy": {"mean": sum(values) / len(values), "per_subject": per}}

    classical = [0.6] * 10
    helps = verdict({"de_logreg": scores(classical), "mmm_x": scores([0.8] * 9 + [0.55])})
    assert helps["verdict"].endswith("mmm_x helps here: use it.")
    assert "better for 9 of 10 subjects" in helps["verdict"]
    worse = verdict({"de_logreg": scores(classical), "mmm_x": scores([0.4] * 10)})
    assert worse["verdict"].endswith("de_logreg is better here: use it.")
    tie = verdict({"de_logreg": scores(classical), "mmm_x": scores([0.62, 0.58] * 5)})
    assert "no evidence that MMM helps here" in tie["verdict"]
    assert verdict({"de_logreg": scores(classical)})["verdict"] == "nothing to compare"


def test_holdout_with_a_pool_fine_tuned_rows_seeds_and_a_curve(state_corpus, eeg_data, tmp_path):
    """One run with every option: MMM pretrained on a pool first, fine-tuned over two seeds,
    scored on two held-out subjects, with a curve over training subjects."""
    tests = ["eegmat-24", "eegmat-25"]
    result = run_compare(
        state_corpus, tmp_path / "out", quick=True, protocol="holdout", test_subjects=tests,
        pretrain_pool=state_corpus, finetune=["mmm_pretrain_pool"], finetune_epochs=2,
        seeds=2, curve="subjects",
    )  # fmt: skip
    task, methods = result["task"], result["methods"]
    assert task["protocol"] == "holdout" and task["curve"] == {"kind": "subjects", "points": [2]}
    assert (tmp_path / "out" / "pretrain_pool" / "encoder" / "config.json").is_file()
    assert {"mmm_pretrain_pool", "mmm_pretrain_pool_finetuned"} <= set(methods)
    for m in methods.values():
        assert set(m["balanced_accuracy"]["per_subject"]) == set(tests)
    # stochastic methods ran once per seed; the others once
    assert len(methods["mmm_untrained"]["balanced_accuracy"]["per_seed"]) == 2
    assert "per_seed" not in methods["de_logreg"]["balanced_accuracy"]
    # The fine-tuned row's scores are the fold models' own test scores, averaged over seeds
    tuned = methods["mmm_pretrain_pool_finetuned"]["balanced_accuracy"]
    runs = tmp_path / "out" / "runs" / "mmm_pretrain_pool_finetuned"
    saved = [json.loads(p.read_text()) for p in sorted(runs.glob("seed-*/folds/*/metrics.json"))]
    assert len(saved) == 2
    for subject in tests:
        own = sum(s["test_per_subject"][subject] for s in saved) / 2
        assert tuned["per_subject"][subject] == pytest.approx(own, abs=1e-9)
    assert tuned["per_seed"] == pytest.approx([sum(s["test_per_subject"].values()) / 2
                                               for s in saved])  # fmt: skip
    # the curve: every method but the fine-tuned one, on the same held-out subjects
    assert "curve" not in methods["mmm_pretrain_pool_finetuned"]
    for name in ("de_logreg", "mmm_untrained", "mmm_pretrain_pool"):
        assert set(methods[name]["curve"]["2"]["per_subject"]) == set(tests)
    assert (tmp_path / "out" / "curve.png").is_file()
    assert "Few-label curve (training subjects" in (tmp_path / "out" / "report.md").read_text()
    other = _corpus(eeg_data, tmp_path / "other_pool", lambda s, _: s == 30)
    with pytest.raises(UserInputError, match="another pool"):
        run_compare(state_corpus, tmp_path / "out", quick=True, protocol="holdout",
                    test_subjects=tests, pretrain_pool=other)  # fmt: skip
    # other test subjects in the same folder: nothing saved is reused for them
    again = run_compare(state_corpus, tmp_path / "out", quick=True, protocol="holdout",
                        test_subjects=["eegmat-28"])  # fmt: skip
    assert again["task"]["test_subjects"] == ["eegmat-28"]
    for m in again["methods"].values():
        assert list(m["balanced_accuracy"]["per_subject"]) == ["eegmat-28"]
    with pytest.raises(UserInputError, match="leaves 2 subject"):
        run_compare(state_corpus, tmp_path / "o3", quick=True, protocol="holdout",
                    test_subjects=[f"eegmat-{s}" for s in range(24, 28)])  # fmt: skip


def test_the_labels_are_part_of_what_a_saved_score_was_computed_on(state_corpus):
    from mmm_eeg.corpus import Corpus
    from mmm_eeg.corpus.labels import label_targets
    from mmm_eeg.experiments.compare import task_fingerprint
    from mmm_eeg.train.protocols import make_folds

    corpus = Corpus(state_corpus)
    rows = corpus.index.index.to_numpy()
    targets, names = label_targets(corpus.index, rows)
    folds = make_folds(corpus.index, rows, "loso")
    same = task_fingerprint(corpus, folds, targets.copy(), list(names), 0, True)
    assert same == task_fingerprint(corpus, folds, targets, names, 0, True)
    swapped = np.where(targets >= 0, 1 - targets, targets)  # the corpus relabelled in place
    assert task_fingerprint(corpus, folds, swapped, names, 0, True) != same
    assert task_fingerprint(corpus, folds, targets, names[::-1], 0, True) != same
    assert task_fingerprint(corpus, folds[1:], targets, names, 0, True) != same


def test_few_label_folds_cut_only_the_training_side(state_corpus):
    from mmm_eeg.corpus import Corpus
    from mmm_eeg.corpus.labels import label_targets
    from mmm_eeg.experiments.compare import few_label_folds
    from mmm_eeg.train.protocols import make_folds

    index = Corpus(state_corpus).index
    rows = index.index.to_numpy()
    targets, _ = label_targets(index, rows)
    folds = make_folds(index, rows, "loso")
    subject_of = index["subject"].astype(str).to_numpy()
    by_subjects = few_label_folds(index, folds, targets, "subjects", seed=0)
    assert list(by_subjects) == [2, 4]  # 5 training subjects per fold: 16 and 8 keep all
    for n, cut in by_subjects.items():
        for fold, full in zip(cut, folds, strict=True):
            assert len(set(subject_of[fold.train])) == n
            assert set(fold.train) <= set(full.train) | set(full.val)
            assert list(fold.test) == list(full.test)
    by_windows = few_label_folds(index, folds, targets, "epochs", seed=0)
    for n, cut in by_windows.items():
        for fold, full in zip(cut, folds, strict=True):
            pairs = list(zip(subject_of[fold.train], targets[fold.train], strict=True))
            assert max(pairs.count(p) for p in set(pairs)) == n
            assert list(fold.test) == list(full.test)
    assert (
        by_windows[5][0].train.tolist()
        != few_label_folds(index, folds, targets, "epochs", seed=1)[5][0].train.tolist()
    )


def test_compare_refuses_options_that_do_not_fit(state_corpus, tmp_path):
    with pytest.raises(UserInputError, match="--test-subject"):
        run_compare(state_corpus, tmp_path / "a", protocol="holdout")
    with pytest.raises(UserInputError, match="rows here are mmm_untrained, mmm_base_tuh"):
        run_compare(state_corpus, tmp_path / "b", finetune=["mmm_nope"])
    bad = runner.invoke(app, ["benchmark", "compare", str(state_corpus), "--out",
                              str(tmp_path / "c"), "--test-subject", "eegmat-24"])  # fmt: skip
    assert bad.exit_code == 2 and "--protocol holdout" in " ".join(bad.output.split())


def test_fewer_channels_are_what_every_method_reads(state_corpus, tmp_path):
    """``channels``: only those electrodes, for the DE features and for MMM; the DE baseline's
    features then have 4 nodes × 5 bands."""
    from mmm_eeg.corpus import Corpus
    from mmm_eeg.experiments.compare import _methods

    keep = ["Fp1", "Fp2", "T5", "T6"]  # any case, the old 10-20 names (T5 is P7)
    three = "subject in [eegmat-24, eegmat-25, eegmat-26]"
    result = run_compare(state_corpus, tmp_path / "out", quick=True, channels=keep, select=three)
    assert result["task"]["channels"] == keep
    full = run_compare(state_corpus, tmp_path / "full", quick=True, select=three)
    for name in ("de_logreg", "mmm_untrained"):
        assert (
            result["methods"][name]["balanced_accuracy"]
            != full["methods"][name]["balanced_accuracy"]
        )
    corpus = Corpus(state_corpus)
    rows = corpus.index.index.to_numpy()
    mask = np.isin(corpus.topology.nodes, ["FP1", "FP2", "P7", "P8"])
    task = {"trait": False, "protocol": "loso"}
    settings = {"keep": mask, "tuned": set()}
    (name, make, _, _), *_ = _methods(corpus, rows, None, task, [], True, None, {}, settings)
    assert name == "de_logreg" and make(0)(None).shape == (len(rows), 4 * 5)
    assert "only the electrodes Fp1, Fp2, T5, T6" in (tmp_path / "out" / "report.md").read_text()
    # the classical models that re-read the source files read only those electrodes too
    from mmm_eeg.experiments.transfer import source_windows

    one = rows[corpus.index["recording"].to_numpy() == corpus.index["recording"].iloc[0]]
    shapes = source_windows(corpus, one, lambda data, *_: [data.shape] * len(_[1]), mask)
    assert {shape[0] for shape in shapes} == {4}
    with pytest.raises(UserInputError, match="not electrodes"):
        run_compare(state_corpus, tmp_path / "a", channels=["Fp1", "XX9"])
    with pytest.raises(UserInputError, match="none of"):
        run_compare(state_corpus, tmp_path / "b", channels=["Oz"])
    with pytest.raises(UserInputError, match="Fine-tuned rows read every electrode"):
        run_compare(state_corpus, tmp_path / "c", channels=keep, finetune=["mmm_untrained"])


def test_a_trait_curve_keeps_two_subjects_of_each_class():
    """One label per subject: n training subjects are n / 2 of each class, and a point with
    fewer than 2 of each (the probe's inner folds would see one class) is left out."""
    import pandas as pd

    from mmm_eeg.experiments.compare import few_label_folds
    from mmm_eeg.train.protocols import make_folds

    subjects = [f"s{i:02d}" for i in range(12)]
    index = pd.DataFrame({"subject": np.repeat(subjects, 10), "recording": np.repeat(subjects, 10),
                          "start_s": np.tile(np.arange(10.0), 12)})  # fmt: skip
    targets = np.repeat(np.arange(12) % 2, 10)  # even subjects class 0, odd ones class 1
    folds = make_folds(index, np.arange(120), "loso")
    points = few_label_folds(index, folds, targets, "subjects", seed=0, trait=True)
    assert list(points) == [4, 8]  # 2 would be 1 of each class; 16 is more than there are
    for n, cut in points.items():
        for fold in cut:
            chosen = {index["subject"][r]: targets[r] for r in fold.train}
            assert len(chosen) == n and sorted(chosen.values()).count(0) == n // 2


def test_random_weights_are_fine_tuned_as_from_scratch(state_corpus, tmp_path):
    """Rows of random weights (the untrained encoder, a saved twin marked so) fine-tune their
    encoder at the head's learning rate; trained weights at a tenth of it."""
    from mmm_eeg.corpus import Corpus
    from mmm_eeg.experiments.compare import _methods, _resolve_run, _run_names, weights_digest
    from mmm_eeg.model import MMMEncoder

    corpus = Corpus(state_corpus)
    spec = corpus.feature_spec("subject-node")
    sources = [tmp_path / "twin", tmp_path / "run"]
    MMMEncoder(dim=16, depth=1, heads=2, feature_spec=spec).save_pretrained(
        sources[0], metadata={"weights": "random"}
    )
    MMMEncoder(dim=16, depth=1, heads=2, feature_spec=spec).save_pretrained(sources[1])
    runs = [(name, *_resolve_run(source, corpus, None))
            for name, source in zip(_run_names(sources), sources, strict=True)]  # fmt: skip
    rows = corpus.index.index.to_numpy()
    settings = {"keep": None, "out": tmp_path, "epochs": 3,
                "tuned": {"mmm_untrained", "mmm_twin", "mmm_run"}}  # fmt: skip
    task = {"trait": False, "protocol": "loso"}
    recipes = {name: recipe for name, _, _, recipe
               in _methods(corpus, rows, None, task, runs, True, None, {}, settings)}  # fmt: skip
    assert recipes["mmm_untrained_finetuned"]["encoder_lr_scale"] == 1.0
    assert recipes["mmm_twin_finetuned"]["encoder_lr_scale"] == 1.0
    assert recipes["mmm_run_finetuned"]["encoder_lr_scale"] == 0.1
    # saved weights are known by their digest; weights the seed draws are not
    digest = {"weights": weights_digest(runs[1][1])}
    assert recipes["mmm_run"] == digest and recipes["mmm_run_finetuned"].items() >= digest.items()
    assert "weights" not in recipes["mmm_untrained"] | recipes["mmm_untrained_finetuned"]
    assert recipes["de_logreg"] == {}
