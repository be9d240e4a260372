"""Regenerate the README images: ``MPLBACKEND=Agg .venv/bin/python docs/img/make.py``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import tracekit as tk  # noqa: E402
from tracekit import plot  # noqa: E402
from tracekit.demo import hosts_by_folder  # noqa: E402
from tracekit.plot._demo import T0, dense_timeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent


def save(fig, name: str, dpi: int = 90) -> None:
    fig.savefig(OUT / f"{name}.png", dpi=dpi)
    plt.close(fig)
    print(f"{name}.png {(OUT / f'{name}.png').stat().st_size // 1024} KB")


def main() -> None:
    p = ROOT / "data" / "demo-incident"
    al = tk.load(p, host=hosts_by_folder(p)).align(reference="host:node-a")
    tl = al.timeline
    tr = tl.transitions(exclude=["state-column"])
    ep = tr.filter(rule="endpoints")
    save(plot.interleaving(tl, ep[1], window="2s", transitions=tr).figure, "interleaving-race")
    save(plot.interleaving(tl, tr.filter(rule="exit-status")[0], window="3s", transitions=tr).figure,
         "interleaving-cron")
    save(plot.transitions(tl, ep, window="1s", cols=2, progress=False), "transitions-grid")
    save(plot.overview(tl, transitions=tr).figure, "overview")
    save(plot.clocks(al).figure, "clocks")
    big = dense_timeline(lanes=40, events=50_000)
    save(plot.interleaving(big, T0 + 5 * 10**9, window="5s").figure, "interleaving-dense", dpi=80)
    save(plot.overview(big).figure, "overview-dense", dpi=80)


if __name__ == "__main__":
    main()
