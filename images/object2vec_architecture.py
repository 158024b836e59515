"""Draw Object2Vec's architecture as Lab 2 uses it: run ``python images/object2vec_architecture.py``.

Writes ``object2vec_architecture.png`` next to this script: two inputs (a user id and a movie id), one encoder
each, the comparator, the MLP and the two output layers, with the shape of what flows between them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file backend)
from matplotlib.patches import FancyBboxPatch  # noqa: E402

OUTPUT = Path(__file__).with_suffix(".png")
INPUT, ENCODER, VECTOR, COMBINE, HEAD = "#e8eef7", "#c9daf8", "#fff2cc", "#d9ead3", "#f4cccc"


def box(ax, x, y, width, height, text, color, size=10):
    """A rounded box centred on (x, y) with centred text."""
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=color,
            edgecolor="#444444",
            linewidth=1.2,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": "#444444", "lw": 1.3})


def draw() -> plt.Figure:
    fig, ax = plt.subplots(figsize=(12, 4.6))
    ax.set(xlim=(0, 12.4), ylim=(0.2, 4.6))
    ax.axis("off")
    for y, side, example, thing in ((3.6, 0, "[42]", "user"), (1.2, 1, "[260]", "movie")):
        box(ax, 1.0, y, 1.6, 0.8, f"in{side}\n{thing} id {example}", INPUT)
        box(ax, 3.2, y, 1.9, 0.9, f"enc{side}\npooled_embedding\n(token → vector)", ENCODER, 9)
        box(ax, 5.2, y, 1.1, 0.8, f"e{side}\nenc_dim\nnumbers", VECTOR, 9)
        arrow(ax, (1.8, y), (2.25, y))
        arrow(ax, (4.15, y), (4.65, y))
        arrow(ax, (5.75, y), (6.45, 2.4 + (y - 2.4) * 0.25))
    box(ax, 7.3, 2.4, 1.7, 1.9, "comparator\n\ne0 ⊙ e1\n[e0 ; e1]\n|e0 − e1|\n\n4 × enc_dim", COMBINE, 9)
    box(ax, 9.2, 2.4, 1.3, 1.0, "MLP\nmlp_layers ×\nmlp_dim", COMBINE, 9)
    box(ax, 11.3, 3.3, 1.9, 0.9, "softmax\nP(not liked), P(liked)", HEAD, 9)
    box(ax, 11.3, 1.5, 1.9, 0.9, "mean_squared_error\npredicted rating", HEAD, 9)
    arrow(ax, (8.15, 2.4), (8.55, 2.4))
    arrow(ax, (9.85, 2.6), (10.35, 3.2))
    arrow(ax, (9.85, 2.2), (10.35, 1.6))
    ax.text(11.3, 2.4, "output_layer:\none or the other", ha="center", va="center", fontsize=8, color="#555555")
    ax.text(
        3.2,
        4.35,
        "each encoder turns its input into a vector of the same length",
        ha="center",
        fontsize=9,
        style="italic",
    )
    ax.text(
        3.2,
        0.45,
        "a request with only in0 or only in1 returns that vector: the embedding",
        ha="center",
        fontsize=9,
        style="italic",
    )
    ax.set_title("Object2Vec: two encoders, a comparator, an MLP, one output layer", fontsize=12)
    return fig


if __name__ == "__main__":
    draw().savefig(OUTPUT, dpi=110, bbox_inches="tight")
    print(f"wrote {OUTPUT}")
