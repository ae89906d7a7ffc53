"""Raw EEG in: the torch DE front end equals the numpy one; the braindecode-style model learns."""

import mne
import numpy as np
import pytest
import torch

from mmm_eeg import UserInputError
from mmm_eeg.features import differential_entropy
from mmm_eeg.model import MMMEncoder
from mmm_eeg.model.raw import BandDifferentialEntropy, MMMRawClassifier


@pytest.fixture(scope="module")
def windows(eeg_data):
    """2 s windows of eegmat subject 00: rest (0) and arithmetic (1)."""
    X, y = [], []
    for run, label in ((1, 0), (2, 1)):
        raw = mne.io.read_raw_edf(
            eeg_data / "eegmat" / f"Subject00_{run}.edf", preload=True, verbose="error"
        )
        data = mne.make_fixed_length_epochs(raw, 2.0, verbose="error").get_data(copy=True)
        X.append(data)
        y += [label] * len(data)
    return np.concatenate(X), np.array(y), raw.info


def test_torch_de_equals_numpy_de(windows):
    X, _, info = windows
    sfreq, n_times = info["sfreq"], X.shape[2]
    layer = BandDifferentialEntropy(sfreq, n_times).double()
    x = torch.from_numpy(X[:3]).requires_grad_(True)
    ours = layer(x)
    for i in range(3):
        expected = differential_entropy(X[i], sfreq, window=n_times / sfreq, method="fft")[0]
        np.testing.assert_allclose(ours[i].detach().numpy(), expected, atol=1e-5)
    ours.sum().backward()  # differentiable down to the signal
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_raw_classifier_conventions_and_learning(windows):
    X, y, info = windows
    torch.manual_seed(0)
    model = MMMRawClassifier(
        n_outputs=2, n_chans=len(info["chs"]), chs_info=info["chs"], n_times=X.shape[2],
        sfreq=info["sfreq"], encoder=MMMEncoder(dim=16, depth=1, heads=2),
    )  # fmt: skip
    assert int(model.mapped.sum()) == 19  # the 19 EEG channels of 21 (ECG, A2-A1 excluded)
    x, target = torch.from_numpy(X).float(), torch.from_numpy(y)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        loss = torch.nn.functional.cross_entropy(model(x), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.detach().item())
    assert losses[-1] < 0.5 * losses[0]
    from sklearn.metrics import balanced_accuracy_score

    with torch.no_grad():
        predicted = model.eval()(x).argmax(1).numpy()
    assert balanced_accuracy_score(y, predicted) > 0.8  # it fits its training windows
    with pytest.raises(UserInputError, match="n_chans=3 but chs_info names"):
        MMMRawClassifier(2, n_chans=3, chs_info=info["chs"], n_times=1000, sfreq=500.0)
    with pytest.raises(UserInputError, match="contain no frequency bin"):
        BandDifferentialEntropy(500.0, 50)  # 0.1 s windows: delta has no bin


def test_braindecode_eeg_classifier_trains_it(windows):
    """braindecode's EEGClassifier (skorch) trains the raw model on windows of real EEG."""
    from braindecode import EEGClassifier
    from sklearn.metrics import balanced_accuracy_score

    X, y, info = windows
    torch.manual_seed(0)
    clf = EEGClassifier(
        MMMRawClassifier,
        module__n_outputs=2, module__chs_info=info["chs"], module__n_times=X.shape[2],
        module__sfreq=info["sfreq"], module__encoder=MMMEncoder(dim=16, depth=1, heads=2),
        criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, optimizer__lr=1e-2,
        train_split=None, batch_size=len(X), max_epochs=80, verbose=0,
    )  # fmt: skip
    clf.fit(X.astype(np.float32), y)
    losses = clf.history[:, "train_loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert isinstance(clf.module_, MMMRawClassifier) and int(clf.module_.mapped.sum()) == 19
    proba = clf.predict_proba(X.astype(np.float32))
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert balanced_accuracy_score(y, proba.argmax(1)) > 0.8  # it fits its training windows
