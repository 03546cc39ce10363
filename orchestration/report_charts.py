"""The report's charts as matplotlib figures, drawn from the small aggregated rows that
``orchestration.report`` queries (panel name -> rows), and turned into SVG.

Figures are made without pyplot (no global state, no display), 10 inches wide, in the
Okabe-Ito colours, which people with the common colour-vision deficiencies can tell apart.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.transforms import offset_copy

ChartData = dict[str, list[dict[str, Any]]]

BLUE, ORANGE, GREEN, RED, SKY, PURPLE, GREY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#56B4E9",
    "#CC79A7",
    "#999999",
)
SOURCE_COLOURS = {"contacts": BLUE, "email": ORANGE, "calls": GREEN, "web": SKY, "orders": PURPLE}
STATUS_COLOURS = {"passed": GREEN, "warned": ORANGE, "failed": RED}


def _number(value: Any) -> float:
    return float(value) if value is not None else 0.0


def _figure(height: float, widths: Sequence[float] = (1,)) -> tuple[Figure, list]:
    """A figure 10 inches wide with one panel per entry of ``widths`` (relative widths)."""
    fig = Figure(figsize=(10, height), layout="constrained")
    axes = fig.subplots(1, len(widths), squeeze=False, width_ratios=widths)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(length=0)
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
    return fig, list(axes)


def to_svg(fig: Figure, salt: str, title: str) -> str:
    """The figure as SVG markup to inline in HTML: text stays text (searchable, small), the
    title is the picture's accessible name, and the same data gives the same bytes (``salt``
    keeps element ids apart between figures)."""
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        metadata = {"Title": title, "Date": None, "Creator": "crm360"}
        fig.savefig(buffer, format="svg", metadata=metadata)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _bar_labels(ax, bars, texts: Sequence[str]) -> None:
    ax.bar_label(bars, labels=texts, padding=3, fontsize=8, color="#333333")
    ax.margins(x=0.15)


def _legend(ax) -> None:
    """The legend on one line under the panel's tick labels, where it hides no bar."""
    below = offset_copy(ax.transAxes, fig=ax.figure, y=-16, units="points")
    ax.legend(
        loc="upper left", bbox_to_anchor=(0, 0), bbox_transform=below, ncols=4,
        frameon=False, fontsize=8, handlelength=1, borderaxespad=0,
    )  # fmt: skip


def _empty_panel(ax, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color=GREY, transform=ax.transAxes)


def _short(text: str, width: int = 42) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def segments_figure(data: ChartData) -> Figure:
    rows = data["segments"][::-1]  # largest on top
    fig, (left, right) = _figure(0.9 + 0.32 * len(rows), widths=(1, 1))
    names = [r["rfm_segment"] for r in rows]
    bars = left.barh(names, [r["customers"] for r in rows], color=BLUE)
    _bar_labels(left, bars, [f"{r['customers']:,}" for r in rows])
    left.set_title("Customers", loc="left", fontsize=10)
    shares = [_number(r["revenue_share"]) * 100 for r in rows]
    bars = right.barh(names, shares, color=ORANGE)
    _bar_labels(right, bars, [f"{s:.1f}%" for s in shares])
    right.set_title("Share of net revenue", loc="left", fontsize=10)
    right.set_yticks(range(len(rows)), labels=[""] * len(rows))
    right.xaxis.set_major_formatter("{x:.0f}%")
    return fig


def cohorts_figure(data: ChartData) -> Figure:
    cells = data["cells"]
    cohorts = list(dict.fromkeys(c["cohort"] for c in cells))
    months = max(c["month"] for c in cells) + 1
    grid = np.full((len(cohorts), months), np.nan)
    sizes = {}
    for c in cells:
        grid[cohorts.index(c["cohort"]), c["month"]] = _number(c["retention_rate"])
        sizes[c["cohort"]] = c["cohort_customers"]
    fig, (ax,) = _figure(1.0 + 0.38 * len(cohorts))
    ax.grid(False)
    # Month 0 is 100% by definition: the colours span the later months, where cohorts differ.
    later = [_number(c["retention_rate"]) for c in cells if c["month"] > 0]
    top = max(later, default=1.0) or 1.0
    image = ax.imshow(grid, cmap="YlGnBu", vmin=0, vmax=top, aspect="auto")
    ax.set_xticks(range(months), labels=[str(m) for m in range(months)])
    ax.set_yticks(range(len(cohorts)), labels=[f"{c} ({sizes[c]:,})" for c in cohorts])
    ax.set_xlabel("months since the first order")
    if months <= 16:
        for c in cells:
            value = _number(c["retention_rate"])
            ax.text(
                c["month"],
                cohorts.index(c["cohort"]),
                f"{value:.0%}" + ("" if c["is_complete_month"] else "*"),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value > top * 0.6 else "#222222",
            )
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8, format=lambda x, _: f"{x:.0%}")
    colorbar.set_label("ordered again")
    return fig


def lifetime_value_figure(data: ChartData) -> Figure:
    bins = data["bins"]
    width = _number(bins[0]["width"]) or 1.0
    fig, (ax,) = _figure(3.2)
    ax.bar(
        [b["bin"] * width for b in bins],
        [b["customers"] for b in bins],
        width=width * 0.92,
        align="edge",
        color=BLUE,
    )
    median = _number(data["summary"][0]["median"])
    ax.axvline(median, color=RED, linestyle="--", linewidth=1.2)
    ax.text(median, ax.get_ylim()[1] * 0.95, f"  median {median:,.0f}", color=RED, fontsize=8)
    ax.set_xlabel("predicted lifetime value (reporting currency)")
    ax.set_ylabel("customers")
    ax.xaxis.set_major_formatter("{x:,.0f}")
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    return fig


def _campaign_label(row: dict) -> str:
    source = "" if row["campaign_source"] == row["channel"] else f" {row['campaign_source']}"
    return _short(f"{row['channel']}{source} · {row['campaign']}", 36)


def channels_figure(data: ChartData) -> Figure:
    revenue = data["attributed_revenue"][::-1]
    email = data["email_rates"][::-1]
    fig, (left, right) = _figure(1.0 + 0.36 * max(len(revenue), len(email), 3), widths=(1, 1))
    if revenue:
        y = np.arange(len(revenue))
        first = [_number(r["first_touch"]) for r in revenue]
        last = [_number(r["last_touch"]) for r in revenue]
        left.barh(y + 0.2, last, height=0.4, color=BLUE, label="last touch")
        left.barh(y - 0.2, first, height=0.4, color=SKY, label="first touch")
        left.set_yticks(y, labels=[_campaign_label(r) for r in revenue])
        left.xaxis.set_major_formatter("{x:,.0f}")
        _legend(left)
        left.set_title("Attributed net revenue", loc="left", fontsize=10)
    else:
        _empty_panel(left, "No attributed revenue")
    if email:
        y = np.arange(len(email))
        opens = [_number(r["open_rate"]) * 100 for r in email]
        clicks = [_number(r["click_rate"]) * 100 for r in email]
        bars = right.barh(y + 0.2, opens, height=0.4, color=ORANGE, label="opened")
        _bar_labels(right, bars, [f"{v:.0f}%" for v in opens])
        bars = right.barh(y - 0.2, clicks, height=0.4, color=GREEN, label="clicked")
        _bar_labels(right, bars, [f"{v:.0f}%" for v in clicks])
        right.set_yticks(y, labels=[_short(r["campaign"], 24) for r in email])
        right.xaxis.set_major_formatter("{x:.0f}%")
        _legend(right)
        right.set_title("Delivered emails opened, clicked", loc="left", fontsize=10)
    else:
        _empty_panel(right, "No emails delivered")
    return fig


def identity_figure(data: ChartData) -> Figure:
    fig, (left, right) = _figure(2.6, widths=(1, 1))
    offset = 0
    for r in data["records"]:
        colour = SOURCE_COLOURS.get(r["source"], GREY)
        left.barh(1, r["records"], left=offset, color=colour, label=r["source"])
        offset += r["records"]
    left.text(offset, 1, f"  {offset:,}", va="center", fontsize=8)
    people = data.get("people") or [{"known": 0, "anonymous": 0}]
    known, anonymous = people[0]["known"], people[0]["anonymous"]
    left.barh(0, known, color="#333333", label="known people")
    left.barh(0, anonymous, left=known, color="#bbbbbb", label="anonymous people")
    left.text(known + anonymous, 0, f"  {known + anonymous:,}", va="center", fontsize=8)
    left.set_yticks([0, 1], labels=["people", "records"])
    left.xaxis.set_major_formatter("{x:,.0f}")
    left.margins(x=0.15)
    _legend(left)
    left.set_title("Records resolved to people", loc="left", fontsize=10)
    items = data.get("protection", [])[::-1]
    bars = right.barh(
        [i["item"] for i in items],
        [i["n"] for i in items],
        color=[PURPLE if i["item"].startswith("ids") else ORANGE for i in items],
    )
    _bar_labels(right, bars, [f"{i['n']:,}" for i in items])
    right.set_xlim(left=0, right=max([i["n"] for i in items] + [1]) * 1.2)
    right.set_title("Id changes and merge protection", loc="left", fontsize=10)
    return fig


def quality_figure(data: ChartData) -> Figure:
    checks = data.get("checks", [])[::-1]
    quarantine = data.get("quarantine", [])[::-1]
    fig, (left, right) = _figure(1.2 + 0.3 * max(len(quarantine), len(checks), 4), widths=(1, 1.5))
    if checks:
        offsets = [0] * len(checks)
        for status, colour in STATUS_COLOURS.items():
            values = [c[status] for c in checks]
            left.barh(
                [c["stage"] for c in checks], values, left=offsets, color=colour, label=status
            )
            offsets = [o + v for o, v in zip(offsets, values, strict=True)]
        for y, c in enumerate(checks):
            bad = f", {c['warned']} warned" if c["warned"] else ""
            bad += f", {c['failed']} failed" if c["failed"] else ""
            left.text(offsets[y], y, f"  {c['passed']} passed{bad}", va="center", fontsize=8)
        left.margins(x=0.45)
        _legend(left)
        left.set_title("Checks of this run", loc="left", fontsize=10)
    else:
        _empty_panel(left, "No check results")
    if quarantine:
        bars = right.barh(
            [_short(f"{q['source']} · {q['reason']}", 56) for q in quarantine],
            [q["rows"] for q in quarantine],
            color=[SOURCE_COLOURS.get(q["source"], GREY) for q in quarantine],
        )
        _bar_labels(right, bars, [f"{q['rows']:,}" for q in quarantine])
        right.set_title("Quarantined rows", loc="left", fontsize=10)
    else:
        _empty_panel(right, "No rows quarantined")
    return fig
