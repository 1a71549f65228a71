"""Pictures of runs and curves (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    """matplotlib's pyplot on Agg, imported when a picture is drawn (it costs a command's start ~0.5 s)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def history_png(history: list, path: Path, metric: str, title: str) -> None:
    """The task loss, each term the method reports, and the validation metric per epoch, a panel each."""
    epochs = [h["epoch"] for h in history]
    terms = [k for k in history[0] if k not in ("epoch", "task_loss", "seconds", f"val_{metric}")
             and not k.endswith("_rows")]
    keys = ["task_loss", *terms, f"val_{metric}"]
    plt = _pyplot()
    # fixed margins: matplotlib's constrained layout measures every label and took 30% of the drawing
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3), squeeze=False)
    axes = axes[0]
    fig.subplots_adjust(left=0.25 / len(keys), right=1 - 0.05 / len(keys), bottom=0.16, top=0.86, wspace=0.4)
    for ax, key in zip(axes, keys):
        label = {"task_loss": "task loss", f"val_{metric}": f"val {metric} (%)"}.get(key, f"{key} term")
        ax.plot(epochs, [h.get(key) if h.get(key) is not None else float("nan") for h in history], marker=".")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    scored = [h for h in history if h[f"val_{metric}"] is not None]  # none: a refit on train+val
    if scored:
        best = max(scored, key=lambda h: h[f"val_{metric}"])
        axes[-1].axvline(best["epoch"], color="grey", linestyle=":", label=f"best epoch {best['epoch']}")
        axes[-1].legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def curve_png(points: dict, path: Path, metric: str, split: str, title: str) -> None:
    """points: {mode: [(fraction, mean, low, high), ...]}; one line per mode, a band low..high."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.14, top=0.91)  # fixed margins, as history_png
    for mode, rows in points.items():
        xs = [r[0] for r in rows]
        ax.plot(xs, [r[1] for r in rows], marker="o", label=mode)
        ax.fill_between(xs, [r[2] for r in rows], [r[3] for r in rows], alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_xticks([r[0] for r in next(iter(points.values()))])
    ax.set_xticklabels([f"{r[0]:.3g}" for r in next(iter(points.values()))], fontsize=8)
    ax.set_xlabel("fraction of training pair groups")
    ax.set_ylabel(f"{split} {metric} (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)
