"""Plots the notebooks draw often enough that the plotting code would distract from the lesson."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def plot_curves(history: pd.DataFrame, title: str, ylabel: str = "RMSE", ax=None):
    """Training curves: one line per column of ``history`` against its index (the epoch).

    The best epoch of a ``validation`` column (its minimum, as for RMSE and losses) is marked, because that
    is the epoch whose parameters the labs keep.

    Args:
        history: one row per epoch (index 1, 2, ...), one column per curve, e.g. ``train`` and ``validation``.
        title: the plot's title, usually the model's name.
        ylabel: what the values are.
        ax: draw into this matplotlib Axes; a new figure when None.

    Returns:
        The Axes drawn into.

    Raises:
        ValueError: ``history`` has no rows or no columns.
    """
    if history.empty:
        raise ValueError(
            f"plot_curves needs at least one epoch and one column, got {history.shape[0]} rows "
            f"and columns {list(history.columns)}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for column in history.columns:
        ax.plot(history.index, history[column], marker="o", markersize=3, label=column)
    if "validation" in history.columns:
        best = history["validation"].idxmin()
        ax.scatter(
            [best],
            [history.loc[best, "validation"]],
            s=80,
            facecolors="none",
            edgecolors="black",
            zorder=3,
            label=f"best epoch ({best})",
        )
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
