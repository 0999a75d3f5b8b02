"""Figures of the wrap-up demo (matplotlib, written to files; nothing here computes results)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def throughput_figure(throughput: dict, path: Path, note: str = "") -> Path:
    """Images per second against the number of devices, one line per model, with ideal linear scaling."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, entry in throughput.items():
        rows = entry["rows"]
        n = np.array([r["devices"] for r in rows])
        ips = np.array([r["images_per_s"] for r in rows])
        (line,) = ax.plot(n, ips, "o-", label=name.replace("_", " "))
        if len(rows) and n[0] == 1:
            ax.plot(n, ips[0] * n, ":", color=line.get_color(), alpha=0.6, label=f"{name.replace('_', ' ')}: ideal")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("devices (data parallel, same global batch)")
    ax.set_ylabel("training examples / s (images or sequences)")
    ax.set_title("Data-parallel throughput")
    if note:
        fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=7, wrap=True)
    ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.06 if note else 0, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def sersic_fit_figure(image, model, start_model, path: Path, title: str = "") -> Path:
    """Observed galaxy, best-fit model, and the residual in units of the noise."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
    vmax = float(np.max(image))
    panels = [(image, "observed"), (start_model, "starting point (moments)"), (model, "Optimistix fit")]
    for ax, (img, label) in zip(axes, panels):
        ax.imshow(np.asarray(img), origin="lower", cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(label)
    resid = np.asarray(image) - np.asarray(model)
    lim = float(np.max(np.abs(resid)))
    im = axes[3].imshow(resid, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[3].set_title("residual")
    fig.colorbar(im, ax=axes[3], fraction=0.046)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def posterior_figure(samples: dict, truth: dict, fit: dict, path: Path) -> Path:
    """Marginal posteriors of every parameter (truth and least-squares fit marked) and the
    ``R_e``–``I_e`` correlation."""
    plt = _plt()
    names = list(truth)
    fig, axes = plt.subplots(2, 4, figsize=(13, 6))
    for ax, name in zip(axes.ravel(), names):
        s = np.asarray(samples[name])
        ax.hist(s, bins=30, color="#7a9cc6", density=True)
        ax.axvline(truth[name], color="k", lw=2, label="truth")
        ax.axvline(fit[name], color="#d95f02", ls="--", label="least squares")
        lo, hi = np.quantile(s, [0.025, 0.975])
        ax.axvspan(lo, hi, color="#7a9cc6", alpha=0.15, label="95% interval")
        ax.set_title(f"{name}: {s.mean():.3f} ± {s.std():.3f}", fontsize=9)
        ax.set_yticks([])
    axes.ravel()[0].legend(fontsize=7)
    ax = axes.ravel()[-1]
    ax.scatter(samples["r_eff"], samples["amplitude"], s=4, alpha=0.5)
    ax.plot(truth["r_eff"], truth["amplitude"], "k*", ms=12)
    ax.set_xlabel("r_eff")
    ax.set_ylabel("amplitude")
    ax.set_title("correlated: bigger and fainter", fontsize=9)
    fig.suptitle("NumPyro NUTS posterior of the Sérsic parameters")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def deconvolution_figure(truth, observed, naive, restored, lams, errors, path: Path) -> Path:
    """Truth, observation, naive inverse, Tikhonov restoration, and error against λ."""
    plt = _plt()
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.2))
    vmax = float(np.max(truth)) * 0.5
    for ax, (img, label) in zip(axes, [(truth, "truth"), (observed, "blurred + noise"),
                                       (naive, "naive inverse (λ = 0)"), (restored, "Tikhonov, Lineax CG")]):
        ax.imshow(np.clip(np.asarray(img), -vmax, None), origin="lower", cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[4].loglog(lams, errors, "o-")
    axes[4].set_xlabel("λ")
    axes[4].set_ylabel("rms error vs truth")
    axes[4].set_title("choosing the regularisation", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
