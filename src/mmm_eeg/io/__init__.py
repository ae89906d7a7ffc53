"""Readers: EEG files and montages in, plain numpy data out (no torch here)."""

from mmm_eeg.io.headers import ChannelInfo, read_channel_info
from mmm_eeg.montage import load_montage

__all__ = ["ChannelInfo", "load_montage", "read_channel_info"]
