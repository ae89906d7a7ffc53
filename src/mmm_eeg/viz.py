"""Figures: the topology seen from above, with a channel mapping drawn on it; figure files.

matplotlib is imported on first use (``pyplot``), so importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmm_eeg.atomic import atomic_path
from mmm_eeg.channels import clean_name, parse_channel_name
from mmm_eeg.mapping import ChannelMapping
from mmm_eeg.montage import template_position
from mmm_eeg.topology import UnifiedTopology


def pyplot(interactive: bool = False):
    """``matplotlib.pyplot``, on the file-only Agg backend unless ``interactive``."""
    import matplotlib

    if not interactive:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` atomically (format from the suffix) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)


def project_top_view(positions: np.ndarray) -> np.ndarray:
    """Azimuthal equidistant projection of head-frame positions seen from above.

    The vertex maps to the centre; points at ear level (90 degrees from the vertex) map to the
    unit circle, as in the usual topographic maps.

    Parameters
    ----------
    positions : ndarray, shape (n, 3)
        Positions in the MNE head frame.

    Returns
    -------
    ndarray, shape (n, 2)
        Projected coordinates (x to the right ear, y to the nose).
    """
    positions = np.asarray(positions, dtype=float)
    polar = np.arccos(np.clip(positions[:, 2] / np.linalg.norm(positions, axis=1), -1.0, 1.0))
    azimuth = np.arctan2(positions[:, 1], positions[:, 0])
    radius = polar / (np.pi / 2)
    return np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth)], axis=1)


def plot_topology(
    topology: UnifiedTopology,
    mapping: ChannelMapping | None = None,
    input_positions: dict[str, np.ndarray] | None = None,
    fname: str | Path | None = None,
    title: str | None = None,
):
    """Draw the topology from above: regions coloured, present nodes filled.

    Parameters
    ----------
    topology : UnifiedTopology
        The topology to draw.
    mapping : ChannelMapping | None
        When given, nodes it feeds are filled and the others hollow; position-matched inputs
        are drawn where they really are, joined to their node.
    input_positions : dict of str to ndarray | None
        Positions of the inputs (upper-case name -> xyz); channels without one use the template.
    fname : str | path-like | None
        Write the figure there (written atomically) and close it.
    title : str | None
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (already closed when ``fname`` is given).
    """
    plt = pyplot(interactive=fname is None)
    xy = project_top_view(topology.positions)
    colours = plt.get_cmap("tab20")(np.arange(topology.n_regions) % 20)
    present = mapping.present if mapping is not None else np.ones(topology.n_nodes, bool)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="0.3"))
    ax.plot([-0.09, 0, 0.09], [0.995, 1.1, 0.995], color="0.3")  # nose
    for r, members in enumerate(topology.regions):
        idx = list(members)
        face = [colours[r] if present[i] else "white" for i in idx]
        ax.scatter(xy[idx, 0], xy[idx, 1], s=260, c=face, edgecolors=[colours[r]], linewidths=2)
    for i, name in enumerate(topology.nodes):
        ax.annotate(name, xy[i], ha="center", va="center", fontsize=6)
    if mapping is not None:
        known = input_positions or {}
        for ch in mapping.channels:
            if ch.method != "position":
                continue
            parsed = parse_channel_name(ch.name)
            points = [
                known.get(clean_name(ch.name), template_position(e)) for e in parsed.electrodes
            ]
            if any(p is None for p in points):
                continue
            where = project_top_view(np.mean(points, axis=0)[None])[0]
            ax.plot(*zip(where, xy[ch.node], strict=True), color="crimson", lw=1)
            ax.scatter(*where, marker="x", color="crimson", s=50, zorder=3)
            ax.annotate(
                ch.name.strip(),
                where,
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=7,
                color="crimson",
            )
        title = title or f"{mapping.n_present} of {topology.n_nodes} nodes present"
    ax.set_title(
        title or f"{topology.name}: {topology.n_nodes} nodes, {topology.n_regions} regions"
    )
    ax.set_xlim(-1.25, 1.25)
    ax.set_ylim(-1.25, 1.25)
    ax.set_aspect("equal")
    ax.axis("off")
    if fname is not None:
        save_figure(fig, fname, dpi=120)
    return fig
