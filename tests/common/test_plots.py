import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from common.plots import plot_confusion, plot_curves  # noqa: E402


def test_plot_curves_draws_each_column_and_marks_the_best_validation_epoch():
    history = pd.DataFrame({"train": [1.0, 0.9, 0.8], "validation": [1.1, 0.95, 0.97]}, index=[1, 2, 3])
    ax = plot_curves(history, "DMF")
    assert [line.get_label() for line in ax.get_lines()] == ["train", "validation"]
    assert list(ax.get_lines()[1].get_ydata()) == [1.1, 0.95, 0.97]
    assert "best epoch (2)" in [text.get_text() for text in ax.get_legend().get_texts()]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("DMF", "epoch", "RMSE")
    plt.close(ax.figure)


def test_plot_curves_draws_into_a_given_axes_without_a_validation_column():
    fig, axes = plt.subplots(1, 2)
    ax = plot_curves(pd.DataFrame({"loss": [0.7, 0.5]}, index=[1, 2]), "NeuMF", ylabel="log loss", ax=axes[1])
    assert ax is axes[1]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["loss"]
    plt.close(fig)


def test_plot_curves_refuses_an_empty_history():
    with pytest.raises(ValueError, match="at least one epoch and one column"):
        plot_curves(pd.DataFrame(), "empty")


def test_a_score_on_its_own_axis_marks_its_maximum_on_whole_epochs():
    history = pd.DataFrame({"train log loss": [0.5, 0.3, 0.25], "validation HR@10": [0.5, 0.7, 0.6]}, index=[1, 2, 3])
    ax = plot_curves(history, "NeuMF", ylabel="log loss", right="validation HR@10", best=("validation HR@10", "max"))
    right = next(other for other in ax.figure.axes if other is not ax)
    assert [line.get_label() for line in ax.get_lines()] == ["train log loss"]
    assert [line.get_label() for line in right.get_lines()] == ["validation HR@10"]
    assert right.get_ylabel() == "validation HR@10"
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["train log loss", "validation HR@10", "best epoch (2)"]
    ax.figure.canvas.draw()
    box, plot = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert box.y1 <= plot.y0  # below the plot, so it covers neither curve
    assert all(float(tick).is_integer() for tick in ax.get_xticks())
    plt.close(ax.figure)


def test_a_missing_column_is_named():
    with pytest.raises(ValueError, match="no column 'validation HR@10'"):
        plot_curves(pd.DataFrame({"loss": [0.7]}, index=[1]), "NeuMF", right="validation HR@10")


def test_plot_confusion_writes_each_count_in_the_colour_that_reads_on_its_shade():
    confusion = pd.crosstab(
        pd.Series([0] * 1635 + [0] * 977 + [1] * 794 + [1] * 2694, name="true"),
        pd.Series([0] * 1635 + [1] * 977 + [0] * 794 + [1] * 2694, name="predicted"),
    )
    ax = plot_confusion(confusion, "FM classifier", labels=["not liked", "liked"])
    image = ax.get_images()[0]
    for text in ax.texts:
        count = int(text.get_text().replace(",", ""))
        red, green, blue, _ = image.cmap(image.norm(count))
        shade = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
        background = 0.2126 * shade[0] + 0.7152 * shade[1] + 0.0722 * shade[2]
        ink = 0.0 if text.get_color() == "black" else 1.0
        lighter, darker = max(background, ink), min(background, ink)
        assert (lighter + 0.05) / (darker + 0.05) >= 4.5, text.get_text()  # WCAG AA for normal text
    assert [t.get_text() for t in ax.get_xticklabels()] == ["not liked", "liked"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    plt.close(ax.figure)


def test_plot_confusion_refuses_a_table_that_is_not_square():
    with pytest.raises(ValueError, match="square table of counts, got 2 rows and 1 columns"):
        plot_confusion(pd.DataFrame({"a": [1, 2]}), "bad")
