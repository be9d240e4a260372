"""``tk.browse(tl, tr)``: step through transitions in a notebook (ipywidgets)."""

from __future__ import annotations

from typing import Any

_HINT = ("tk.browse needs ipywidgets (and, for zoomable plots, ipympl): "
         "pip install 'tracekit[notebook]'  (or: pip install ipywidgets ipympl)")


def _widgets() -> Any:
    try:
        import ipywidgets
    except ImportError as e:  # pragma: no cover - exercised by monkeypatching in tests
        raise ImportError(_HINT) from e
    return ipywidgets


def browse(tl: Any, tr: Any, window: Any = "5s", lane: str = "source", tz: Any = None, **kw: Any) -> Any:
    """An ipywidgets stepper over the transitions ``tr``: a dropdown (one entry per transition)
    and a slider kept in step, which redraw the interleaving plot of the chosen transition.
    Returns the widget (a ``VBox``); display it as a cell's last value.

    Example::

        >>> tk.browse(tl, tr.filter(rule="endpoints"), window="2s")     # doctest: +SKIP
    """
    w = _widgets()
    from . import _style, interleaving

    items = list(tr)
    if not items:
        raise ValueError("no transitions to browse")
    labels = [(f"#{i} {_style.fmt_abs(t.ts, tz, digits=3, date=False)} {_style.abbreviate(t.entity, 40)}: "
               f"{_style.abbreviate(t.from_state, 16) or '∅'} → {_style.abbreviate(t.to_state, 16)} [{t.rule}]", i)
              for i, t in enumerate(items)]
    dropdown = w.Dropdown(options=labels, value=0, description="transition", layout=w.Layout(width="70%"))
    slider = w.IntSlider(value=0, min=0, max=len(items) - 1, description="step", continuous_update=False)
    w.link((slider, "value"), (dropdown, "index"))  # kernel-side, so it also works headless
    out = w.Output()

    state: dict[str, Any] = {"fig": None}

    def redraw(i: int) -> None:
        import matplotlib
        import matplotlib.pyplot as plt
        from IPython.display import display

        if state["fig"] is not None:  # the previous step's figure
            plt.close(state["fig"])
            state["fig"] = None
        with out:
            out.clear_output(wait=True)
            with plt.ioff():  # no auto-display: it is shown once, below
                ax = interleaving(tl, items[i], window=window, lane=lane, tz=tz, transitions=tr, **kw)
            fig = ax.figure
            backend = matplotlib.get_backend().lower()
            if "ipympl" in backend or "widget" in backend:  # %matplotlib widget: a live, zoomable canvas
                display(fig.canvas)
                state["fig"] = fig
            else:  # inline/Agg: a picture; the figure is closed so steps do not pile up
                display(fig)
                plt.close(fig)
        box.figure = fig  # type: ignore[attr-defined]

    def on_change(change: dict) -> None:
        if change.get("name") == "value" and change.get("new") is not None:
            redraw(int(change["new"]))

    box = w.VBox([w.HBox([dropdown, slider]), out])
    dropdown.observe(on_change, names="value")
    box.redraw = redraw  # type: ignore[attr-defined]
    box.dropdown, box.slider, box.output = dropdown, slider, out  # type: ignore[attr-defined]
    redraw(0)
    return box
