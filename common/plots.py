"""Plots the notebooks draw often enough that the plotting code would distract from the lesson."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
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
    if right is None:
        ax.legend(handles=lines)
    else:  # "best" placement sees only the left axis's lines and could cover the right one's: put it below
        ax.legend(handles=lines, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(lines), frameon=False)
    return ax


def _readable_on(colour) -> str:
    """Black or white, whichever contrasts more with ``colour`` (WCAG 2 relative luminance and contrast ratio)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in colour[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "black" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "white"


def plot_confusion(confusion: pd.DataFrame, title: str, labels: list[str] | None = None, ax=None):
    """A confusion matrix as shaded cells, each count written in black or white, whichever reads better on its shade.

    Args:
        confusion: counts, true classes as rows and predicted classes as columns (``pd.crosstab(true, predicted)``);
            the index and column names label the axes.
        title: the plot's title.
        labels: the classes' names in row order; None: the index values.
        ax: draw into this matplotlib Axes; a new figure when None.

    Returns:
        The Axes drawn into.

    Raises:
        ValueError: ``confusion`` is empty or not square, or ``labels`` has another length.
    """
    rows, columns = confusion.shape
    if rows == 0 or rows != columns:
        raise ValueError(f"plot_confusion needs a square table of counts, got {rows} rows and {columns} columns")
    labels = [str(value) for value in confusion.index] if labels is None else labels
    if len(labels) != rows:
        raise ValueError(f"plot_confusion: {len(labels)} labels for {rows} classes")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3))
    image = ax.imshow(confusion.to_numpy(), cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion.to_numpy()):
        ax.text(j, i, f"{count:,}", ha="center", va="center", color=_readable_on(image.cmap(image.norm(count))))
    ticks = list(range(rows))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=labels, yticklabels=labels, title=title)
    ax.set(xlabel=confusion.columns.name or "predicted", ylabel=confusion.index.name or "true")
    return ax
