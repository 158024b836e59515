"""Plots the notebooks draw often enough that the plotting code would distract from the lesson."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator


def plot_curves(
    history: pd.DataFrame,
    title: str,
    ylabel: str = "RMSE",
    ax=None,
    right: str | None = None,
    best: tuple[str, str] | None = None,
):
    """Training curves: one line per column of ``history`` against its index (the epoch, whole numbers).

    The best epoch is marked, because that is the epoch whose parameters the labs keep: by default the minimum of a
    ``validation`` column (RMSE, losses); ``best=(column, "max")`` marks a score's maximum instead.

    Args:
        history: one row per epoch (index 1, 2, ...), one column per curve, e.g. ``train`` and ``validation``.
        title: the plot's title, usually the model's name.
        ylabel: what the values on the left axis are.
        ax: draw into this matplotlib Axes; a new figure when None.
        right: a column with another scale (a hit rate next to a loss), drawn against a second axis on the right.
        best: ``(column, "min" | "max")`` of the best epoch; None: ``("validation", "min")`` if that column exists.

    Returns:
        The Axes drawn into (the left one).

    Raises:
        ValueError: ``history`` has no rows or no columns, or ``right`` / ``best`` name a missing column.
    """
    if history.empty:
        raise ValueError(
            f"plot_curves needs at least one epoch and one column, got {history.shape[0]} rows "
            f"and columns {list(history.columns)}"
        )
    if best is None and "validation" in history.columns:
        best = ("validation", "min")
    for column in (right, best[0] if best else None):
        if column is not None and column not in history.columns:
            raise ValueError(f"plot_curves: no column {column!r} in {list(history.columns)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    axis_of = {column: ax for column in history.columns}
    if right is not None:
        axis_of[right] = ax.twinx()
        axis_of[right].set_ylabel(right)
    lines = []
    for number, column in enumerate(history.columns):
        lines += axis_of[column].plot(
            history.index, history[column], marker="o", markersize=3, label=column, color=f"C{number}"
        )
    if best is not None:
        column, direction = best
        epoch = history[column].idxmin() if direction == "min" else history[column].idxmax()
        lines.append(
            axis_of[column].scatter(
                [epoch],
                [history.loc[epoch, column]],
                s=80,
                facecolors="none",
                edgecolors="black",
                zorder=3,
                label=f"best epoch ({epoch})",
            )
        )
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(handles=lines)
    return ax
