"""Live decoding: a trained classifier on a sliding window of a stream (LSL or any source).

:class:`OnlineDecoder` turns one window of raw EEG into class probabilities with the model's
input contract, through the offline route's own window path (:func:`~mmm_eeg.windows.
map_recording_channels` once, then :func:`~mmm_eeg.windows.window_quality` and
:func:`~mmm_eeg.windows.checked_windows` per window: the same mapping options, quality checks,
DE and signal), and standardisation of DE with **running statistics** (the moments of every
window that passed its checks so far, including the current one). A window that fails a check
(a NaN burst, a flat or saturated electrode) gets no prediction and leaves the statistics as
they were.
Running statistics need no calibration phase and converge to the recording's own statistics,
which is what the offline route (``MMMModel.predict``) uses; give ``statistics`` (for instance
from a calibration recording of the same person) to use fixed ones instead. A model trained
with ``normalize="fitted"`` uses the statistics saved with it, as offline.

:func:`decode_stream` runs the loop on a Lab Streaming Layer stream with MNE-LSL.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from mmm_eeg.errors import UserInputError
from mmm_eeg.inference import MMMModel
from mmm_eeg.model.fixed_montage import compile_for_inference
from mmm_eeg.normalization import node_moments, standardize
from mmm_eeg.windows import checked_windows, map_recording_channels, on_nodes, window_quality

logger = logging.getLogger(__name__)


class DecodedWindow(NamedTuple):
    """One decoded window: its class probabilities (None when it failed a check) and
    ``quality``: ``"ok"`` or the check it failed."""

    probabilities: np.ndarray | None
    quality: str


class OnlineDecoder:
    """Class probabilities of single windows of a live recording.

    Parameters
    ----------
    model : MMMModel
        A classifier (``load_model`` of a fine-tuned model).
    ch_names : sequence of str
        The stream's channel names; mapped onto the topology once.
    sfreq : float
        The stream's sampling rate.
    statistics : (mean, std) | None
        Fixed standardisation statistics (shapes as ``Normalizer.statistics`` returns); None:
        running statistics (a fitted model's own saved ones).
    compile : bool
        Run the network through :func:`~mmm_eeg.model.fixed_montage.compile_for_inference`
        (needs a C++ compiler; compiling takes tens of seconds here, at construction). If
        compiling fails, the decoder warns and runs uncompiled.
    positions : mapping of str to (x, y, z) | None
        Electrode positions (metres, head frame) of channels whose names are not in the
        10-05 system, as for a file.
    types : sequence of str | None
        Channel types (``"eeg"``, ``"eog"``, ...); non-EEG channels are left out.
    bads : sequence of str
        Channels to leave out for the decoder's life (a dead or loose electrode): a window is
        checked on the other channels only, as ``Raw.info["bads"]`` is offline. Without it, a
        channel that stays flat or non-finite makes every window fail its check, and the
        ``quality`` of each says so.

    Attributes
    ----------
    mapping : ChannelMapping
        How the stream's channels feed the topology (the model's tolerance and bipolar rule).

    Notes
    -----
    The montage is fixed for the decoder's life, so an encoder with ``absent="exclude"`` runs
    as :meth:`MMMClassifier.for_montage`: the absent nodes are left out of the sequence (the
    same probabilities, to float rounding, from a shorter sequence).
    """

    def __init__(
        self,
        model: MMMModel,
        ch_names: Sequence[str],
        sfreq: float,
        statistics: tuple[np.ndarray, np.ndarray] | None = None,
        compile: bool = False,
        positions: Mapping[str, Any] | None = None,
        types: Sequence[str] | None = None,
        bads: Sequence[str] = (),
    ) -> None:
        model._require_classifier()
        config = model.spec.preprocessing
        if config.resample is not None and config.resample != sfreq:
            raise UserInputError(
                f"The model reads EEG resampled to {config.resample:g} Hz; the stream runs at "
                f"{sfreq:g} Hz. Resample the stream at its source.",
                parameter="sfreq",
            )
        self.model, self.sfreq, self.statistics = model, float(sfreq), statistics
        self.ch_names = list(ch_names)
        topology = model.encoder.topology
        # raises when no channel maps
        unknown = sorted(set(bads) - set(ch_names))
        if unknown:
            raise UserInputError(
                f"bads {unknown} are not channels of the stream.", parameter="bads"
            )
        usable = [name for name in ch_names if name not in set(bads)]
        if not usable:
            raise UserInputError("Every channel is in bads.", parameter="bads")
        if types is not None:
            types = [t for name, t in zip(ch_names, types, strict=True) if name not in set(bads)]
        mapping = map_recording_channels(topology, usable, config, positions, types)
        # Indices into the stream's channels (bads left out before mapping).
        in_stream = np.array([list(ch_names).index(name) for name in usable])
        self.mapping = mapping
        self.nodes = np.flatnonzero(mapping.present)
        self.channels = in_stream[mapping.source[self.nodes]]
        self.window_samples = round(config.window * self.sfreq)
        self._moments: list[np.ndarray] | None = None
        self._network = _network_for(model, self.nodes, compile)

    def decode(self, window: np.ndarray) -> DecodedWindow:
        """Check one window (n_channels, window_samples), volts, and decode it if it passes."""
        config = self.model.spec.preprocessing
        window = np.asarray(window, dtype=np.float64)
        if window.ndim != 2 or window.shape != (len(self.ch_names), self.window_samples):
            raise ValueError(
                f"A window has shape ({len(self.ch_names)} channels, {self.window_samples} "
                f"samples), got {window.shape}."
            )
        data = window[self.channels]
        starts = np.zeros(1, dtype=np.int64)
        bad, reasons = window_quality(data, self.sfreq, starts, config)
        good = np.ones(len(data), dtype=bool)
        de, signal, failed = checked_windows(data, self.sfreq, good, bad, reasons, config)
        if failed[0]:
            return DecodedWindow(None, str(failed[0]))
        n_nodes = self.model.encoder.topology.n_nodes
        x = on_nodes(de, self.nodes, good, n_nodes)
        present = np.zeros((1, n_nodes), dtype=bool)
        present[0, self.nodes] = True
        if signal is not None:
            signal = on_nodes(signal, self.nodes, good, n_nodes)
        z = self.model.spec.model_input(self._standardize(x, present), signal)
        with torch.no_grad():
            logits = self._network(torch.from_numpy(z), torch.from_numpy(present))
        return DecodedWindow(torch.softmax(logits, -1).numpy()[0], "ok")

    def probabilities(self, window: np.ndarray) -> np.ndarray | None:
        """Class probabilities (n_classes,) of one window, or None when it fails a check
        (:meth:`decode` says which)."""
        return self.decode(window).probabilities

    def _standardize(self, x: np.ndarray, present: np.ndarray) -> np.ndarray:
        normalizer = self.model.spec.normalizer
        if normalizer.by in ("none", "fitted") and self.statistics is None:
            # none: as computed; fitted: the training windows' statistics, saved with the model
            return normalizer.fit_transform(x, present)
        if self.statistics is None:
            moments = node_moments(x, present)
            if self._moments is None:
                self._moments = list(moments)
            else:
                self._moments = [a + b for a, b in zip(self._moments, moments, strict=True)]
            mean, std = normalizer.statistics(*self._moments)
        else:
            mean, std = self.statistics
        return standardize(x, present, mean, std)


def _network_for(
    model: MMMModel, nodes: np.ndarray, compile: bool
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(x, present) -> logits`` for windows that have ``nodes`` present."""
    full = model.encoder.absent != "exclude"
    network = model.network if full else model.network.for_montage(nodes)  # type: ignore[union-attr]
    index = torch.from_numpy(nodes)

    def run(x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return network(x, present) if full else network(x[:, index])

    if compile:  # ``run`` reads ``network`` when called, so rebinding it here takes effect
        eager = network
        network = compile_for_inference(eager)
        present = torch.zeros(1, model.encoder.topology.n_nodes, dtype=torch.bool)
        present[0, index] = True
        try:
            with torch.no_grad():
                run(torch.zeros(1, len(present[0]), model.encoder.n_inputs), present)
        except Exception as err:  # any compiler failure: the eager path gives the same output
            logger.warning(
                "torch.compile failed (%s); decoding without it.", str(err).splitlines()[0]
            )
            network = eager
    return run


def decode_stream(
    model: MMMModel,
    stream_name: str,
    duration: float,
    step: float = 0.25,
    out: str | Path | None = None,
    on_prediction: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = 10.0,
    outlet: str | None = None,
    reconnect: float = 0.0,
    compile: bool = False,
    bads: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Decode a Lab Streaming Layer stream for ``duration`` seconds, one window every ``step``.

    Parameters
    ----------
    model : MMMModel
        A classifier.
    stream_name : str
        The LSL stream's name.
    duration : float
        Seconds to run (the loop is always bounded).
    step : float
        Seconds between two decoded windows.
    out : str | path-like | None
        A CSV to append each window to as it comes (``time``, one column per class,
        ``label``, ``quality``, ``latency_ms``). A window that fails a check (``quality``
        names it) has NaN probabilities and an empty label.
    on_prediction : callable | None
        Called with each prediction's row (for a live display).
    timeout : float
        Seconds to wait for the stream to appear.
    outlet : str | None
        Also publish each decoded window's class probabilities as an LSL stream of this name
        (one channel per class, irregular rate, stamped with the window's start), for other
        programs; windows that fail a check are not published.
    reconnect : float
        When the stream stops sending (a headset out of range, a restarted amplifier), wait up
        to this many seconds for a stream of the same name to return and go on decoding it;
        0: end at once. Windows are decoded again once a full window of new samples arrived.
    compile : bool
        Compile the network for the stream's montage (see :class:`OnlineDecoder`).
    bads : sequence of str
        Channels to leave out (see :class:`OnlineDecoder`).

    Returns
    -------
    list of dict
        The rows. A stream that stops sending (and does not return) ends the loop early with a
        warning; a jump in the sample times (samples lost on the way) is reported.
    """
    window_s = model.spec.preprocessing.window
    bufsize = max(4.0, 2 * window_s)
    stream = _connect(stream_name, bufsize, timeout)
    rows: list[dict[str, Any]] = []
    writer, handle = None, None
    try:
        decoder = OnlineDecoder(
            model, stream.ch_names, stream.info["sfreq"], compile=compile, bads=bads
        )
        classes = model.classes
        publish = _outlet(outlet, classes) if outlet is not None else None
        if out is not None:
            handle = Path(out).open("w", newline="")
            writer = csv.DictWriter(handle, ["time", *classes, "label", "quality", "latency_ms"])
            writer.writeheader()
        end = time.monotonic() + duration
        received, last_stamp, stalled_since = 0, None, time.monotonic()
        while time.monotonic() < end:
            time.sleep(step)
            new = stream.n_new_samples
            if new == 0:
                if time.monotonic() - stalled_since <= max(2.0, 4 * step):
                    continue
                logger.warning("Stream %s stopped sending.", stream_name)
                stream.disconnect()
                stream = _wait_for_return(
                    stream_name, bufsize, min(reconnect, end - time.monotonic())
                )
                if stream is None:
                    logger.warning("Stream %s did not return; decoding ends.", stream_name)
                    break
                logger.warning("Stream %s is back; decoding resumes.", stream_name)
                if (stream.ch_names, stream.info["sfreq"]) != (decoder.ch_names, decoder.sfreq):
                    decoder = OnlineDecoder(
                        model, stream.ch_names, stream.info["sfreq"], compile=compile, bads=bads
                    )
                received, last_stamp, stalled_since = 0, None, time.monotonic()
                continue
            stalled_since = time.monotonic()
            received += new
            data, stamps = stream.get_data(winsize=window_s)
            fresh = stamps[-min(new, len(stamps)) :]
            if last_stamp is not None and fresh[0] - last_stamp > max(0.1, 5 / decoder.sfreq):
                logger.warning(
                    "Stream %s: %.2f s without samples before %.3f (samples lost on the way).",
                    stream_name, fresh[0] - last_stamp, fresh[0],
                )  # fmt: skip
            last_stamp = float(stamps[-1])
            if received < decoder.window_samples:  # the buffer still holds its initial zeros
                continue
            started = time.perf_counter()
            proba, quality = decoder.decode(data[:, -decoder.window_samples :])
            values = np.full(len(classes), np.nan) if proba is None else proba
            row = {"time": float(stamps[-decoder.window_samples]),
                   **dict(zip(classes, map(float, values), strict=True)),
                   "label": "" if proba is None else classes[int(proba.argmax())],
                   "quality": quality,
                   "latency_ms": 1e3 * (time.perf_counter() - started)}  # fmt: skip
            rows.append(row)
            if publish is not None and proba is not None:
                publish.push_sample(proba.astype(np.float32), timestamp=row["time"])
            if writer is not None:
                writer.writerow(row)
                handle.flush()
            if on_prediction is not None:
                on_prediction(row)
    finally:
        if handle is not None:
            handle.close()
        if stream is not None and stream.connected:
            stream.disconnect()
    return rows


def _connect(name: str, bufsize: float, timeout: float) -> Any:
    """A connected ``StreamLSL`` named ``name``, or a clear error when none appears in time."""
    from mne_lsl.stream import StreamLSL

    stream = StreamLSL(bufsize=bufsize, name=name)
    try:
        stream.connect(acquisition_delay=0.01, timeout=timeout)
    except Exception as err:  # mne-lsl raises RuntimeError and others when nothing is found
        raise UserInputError(
            f"No LSL stream named {name!r} within {timeout:g} s ({err}). Check the name "
            "(e.g. with mne_lsl.lsl.resolve_streams()) and that the device is streaming."
        ) from err
    return stream


def _wait_for_return(name: str, bufsize: float, patience: float) -> Any | None:
    """The stream ``name`` reconnected within ``patience`` seconds, or None."""
    deadline = time.monotonic() + patience
    while (left := deadline - time.monotonic()) > 0:
        try:
            return _connect(name, bufsize, min(left, 2.0))
        except UserInputError:
            continue
    return None


def _outlet(name: str, classes: list[str]) -> Any:
    """An LSL outlet of class probabilities: one float32 channel per class, irregular rate."""
    from mne_lsl.lsl import StreamInfo, StreamOutlet

    info = StreamInfo(name, "Predictions", len(classes), 0.0, "float32", f"mmm-eeg-{name}")
    info.set_channel_names(list(classes))
    return StreamOutlet(info)
