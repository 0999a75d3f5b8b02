"""Figures for the 2-D toy: the forward process as a GIF, score fields, trajectories, samples.

Figures are built with matplotlib's object-oriented API (``matplotlib.figure.Figure``,
no pyplot state, no GUI backend needed) and returned; pass ``path`` to also save them.
Arrays may be JAX or NumPy.

Example::

    >>> fig = samples_figure({"data": data, "ODE": x_ode}, path="samples.png")
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.figure import Figure

__all__ = ["forward_animation", "score_field_figure", "trajectories_figure", "samples_figure", "loss_figure"]

_LIM = 3.0


def _square(ax, lim: float = _LIM) -> None:
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def forward_animation(
    frames: np.ndarray,
    ts: Sequence[float],
    path: str | Path,
    fps: int = 8,
    lim: float = _LIM,
    title: str = "forward process",
) -> Path:
    """Write an animated GIF of point clouds ``frames[i]`` (``(n_frames, n, 2)``) at times ``ts``.

    Returns:
        The GIF's path.
    """
    frames = np.asarray(frames)
    path = Path(path)
    fig = Figure(figsize=(3.2, 3.4), dpi=80)
    ax = fig.add_subplot()
    _square(ax, lim)
    dots = ax.scatter(frames[0, :, 0], frames[0, :, 1], s=2, alpha=0.5, color="tab:blue")
    label = ax.set_title("")
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(path), dpi=80):
        for frame, t in zip(frames, ts):
            dots.set_offsets(frame[:, :2])
            label.set_text(f"{title}, t = {float(t):.2f}")
            writer.grab_frame()
    return path


def score_field_figure(
    fields: Mapping[str, Callable[[np.ndarray, float], np.ndarray]],
    ts: Sequence[float],
    path: str | Path | None = None,
    lim: float = 2.5,
    grid: int = 15,
) -> Figure:
    """Quiver plots of score fields: one row per named field, one column per time.

    Arguments:
        fields: name -> ``fn(points (m, 2), t) -> scores (m, 2)`` (batched).
        ts: the times of the columns.
        path: where to save the figure, if given.
    """
    g = np.linspace(-lim, lim, grid)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], axis=-1).astype(np.float32)
    fig = Figure(figsize=(2.6 * len(ts), 2.6 * len(fields)), dpi=90, layout="constrained")
    axes = fig.subplots(len(fields), len(ts), squeeze=False)
    for r, (name, fn) in enumerate(fields.items()):
        for c, t in enumerate(ts):
            s = np.asarray(fn(pts, float(t)))
            # Arrow length ~ direction, colour ~ log magnitude: the score spans orders of magnitude.
            mag = np.linalg.norm(s, axis=-1) + 1e-12
            ax = axes[r, c]
            ax.quiver(pts[:, 0], pts[:, 1], s[:, 0] / mag, s[:, 1] / mag, np.log10(mag), cmap="viridis", scale=grid * 1.3)
            _square(ax, lim)
            ax.set_title(f"{name}, t = {float(t):.2f}", fontsize=9)
    if path is not None:
        fig.savefig(path)
    return fig


def trajectories_figure(
    trajectories: Mapping[str, np.ndarray],
    background: np.ndarray | None = None,
    path: str | Path | None = None,
    n_paths: int = 40,
    lim: float = _LIM,
) -> Figure:
    """Side-by-side sample paths, one panel per name: ``(n_times, n, 2)`` arrays, the time
    axis running from noise to data; the end points are drawn as dots."""
    fig = Figure(figsize=(3.2 * len(trajectories), 3.3), dpi=90, layout="constrained")
    axes = fig.subplots(1, len(trajectories), squeeze=False)[0]
    for ax, (name, traj) in zip(axes, trajectories.items()):
        traj = np.asarray(traj)
        if background is not None:
            bg = np.asarray(background)
            ax.scatter(bg[:, 0], bg[:, 1], s=1, color="0.8")
        for i in range(min(n_paths, traj.shape[1])):
            ax.plot(traj[:, i, 0], traj[:, i, 1], lw=0.6, alpha=0.7)
        ax.scatter(traj[-1, :n_paths, 0], traj[-1, :n_paths, 1], s=6, color="k", zorder=3)
        _square(ax, lim)
        ax.set_title(name, fontsize=9)
    if path is not None:
        fig.savefig(path)
    return fig


def samples_figure(clouds: Mapping[str, np.ndarray], path: str | Path | None = None, lim: float = _LIM) -> Figure:
    """Scatter plots of named point clouds side by side (e.g. data, SDE samples, ODE samples)."""
    fig = Figure(figsize=(3.0 * len(clouds), 3.2), dpi=90, layout="constrained")
    axes = fig.subplots(1, len(clouds), squeeze=False)[0]
    for ax, (name, pts) in zip(axes, clouds.items()):
        pts = np.asarray(pts)
        ax.scatter(pts[:, 0], pts[:, 1], s=1.5, alpha=0.5)
        _square(ax, lim)
        ax.set_title(name, fontsize=9)
    if path is not None:
        fig.savefig(path)
    return fig


def loss_figure(losses: np.ndarray, path: str | Path | None = None, window: int = 50) -> Figure:
    """The training loss per step and its running mean."""
    losses = np.asarray(losses)
    fig = Figure(figsize=(4.5, 3.0), dpi=90, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(losses, lw=0.5, color="0.7", label="per step")
    if len(losses) >= window:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(losses)), smooth, color="tab:blue", label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("DSM loss")
    ax.legend()
    if path is not None:
        fig.savefig(path)
    return fig
