"""Experiments built on the library: the transfer benchmark and the paper's reproduction."""
