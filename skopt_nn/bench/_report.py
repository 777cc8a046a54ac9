"""Tables and plots of a :class:`~skopt_nn.bench.BenchResult`: CSV, markdown, HTML and four PNG figures."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skopt_nn.bench._harness import BASELINES, BenchResult
from skopt_nn.bench._metrics import performance_profile, profile_ratios

__all__ = ["comparison", "count_true", "markdown_table", "write_report"]

_LABELS = {
    "mlp": "sklearn MLP (defaults)",
    "mlp-tuned": "sklearn MLP (tuned)",
    "hgb": "HistGradientBoosting (defaults)",
    "hgb-tuned": "HistGradientBoosting (tuned)",
}


def _label(name: str) -> str:
    return _LABELS.get(name, name)


def _pick(result: BenchResult, dataset: str, names: Sequence[str]) -> pd.Series | None:
    """Of the contenders ``names`` on ``dataset``, the row with the best validation score (first of ties)."""
    rows = result.results[(result.results["dataset"] == dataset) & result.results["contender"].isin(list(names))]
    rows = rows[rows["best_val"].notna()]
    if rows.empty:
        return None
    order = {n: i for i, n in enumerate(names)}
    rows = rows.assign(_order=rows["contender"].map(order)).sort_values(["best_val", "_order"], ascending=[False, True])
    return rows.iloc[0]


def comparison(result: BenchResult, tolerance: float = 0.01) -> pd.DataFrame:
    """The B8 reading, one row per dataset: the tuned network (the optimizer with the best validation score),
    sklearn's MLP and gradient boosting (each the better of defaults/tuned by validation score), their test
    scores and differences. ``beats_mlp``: net > MLP on test. ``matches_hgb``: net >= HGB - ``tolerance``."""
    rows = []
    optimizers = result.optimizers()
    mlps = [b for b in ("mlp", "mlp-tuned") if b in result.contenders()]
    hgbs = [b for b in ("hgb", "hgb-tuned") if b in result.contenders()]
    for dataset in result.datasets():
        net = _pick(result, dataset, optimizers)
        mlp = _pick(result, dataset, mlps)
        hgb = _pick(result, dataset, hgbs)
        row: dict[str, Any] = {
            "dataset": dataset,
            "metric": result.results.loc[result.results["dataset"] == dataset, "metric"].iloc[0],
        }
        row["net"] = net["contender"] if net is not None else ""
        row["net_test"] = net["test_score"] if net is not None else math.nan
        row["mlp"] = mlp["contender"] if mlp is not None else ""
        row["mlp_test"] = mlp["test_score"] if mlp is not None else math.nan
        row["hgb"] = hgb["contender"] if hgb is not None else ""
        row["hgb_test"] = hgb["test_score"] if hgb is not None else math.nan
        row["net_minus_mlp"] = row["net_test"] - row["mlp_test"]
        row["net_minus_hgb"] = row["net_test"] - row["hgb_test"]
        row["beats_mlp"] = bool(row["net_minus_mlp"] > 0) if mlp is not None and net is not None else None
        row["matches_hgb"] = bool(row["net_minus_hgb"] >= -tolerance) if hgb is not None and net is not None else None
        rows.append(row)
    return pd.DataFrame(rows)


def count_true(values: Any) -> int:
    """How many of ``values`` are true (``None``/NaN — a comparison that could not be made — are not)."""
    return sum(1 for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)) and bool(v))


# ------------------------------------------------------------------------------------------------------ tables


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "not reached" if value > 0 else "-inf"
        return f"{value:.{digits}f}"
    return "—" if value is None else str(value)


def markdown_table(frame: pd.DataFrame, digits: int = 4, bold_max_rows: bool = False) -> str:
    """A GitHub markdown table; with ``bold_max_rows`` the largest number of each row is in bold."""
    columns = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in frame.iterrows():
        values = list(row)
        numeric = [v for v in values if isinstance(v, (float, np.floating)) and math.isfinite(v)]
        top = max(numeric) if bold_max_rows and numeric else None
        cells = []
        for v in values:
            cell = _fmt(v, digits)
            if top is not None and isinstance(v, (float, np.floating)) and v == top:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _score_table(result: BenchResult) -> pd.DataFrame:
    table = result.pivot("test_score")
    table.insert(
        0, "metric", [result.results.loc[result.results["dataset"] == d, "metric"].iloc[0] for d in table.index]
    )
    return table.reset_index()


def _time_table(result: BenchResult) -> pd.DataFrame:
    table = result.pivot("time_to_target_s")
    table.insert(0, "target", [f"{result.targets[d]:.4f}" for d in table.index])
    return table.reset_index()


# ------------------------------------------------------------------------------------------------------ plots


def _colours(names: Sequence[str]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _style(name: str) -> dict[str, Any]:
    return {"linestyle": "--", "linewidth": 1.6} if name in BASELINES else {"linestyle": "-", "linewidth": 2.0}


def _plot_profile(result: BenchResult, path: Path, colours: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    groups = [("all contenders", result.contenders())]
    if result.optimizers() and len(result.optimizers()) < len(result.contenders()):
        groups.append(("optimizers only (ratios to the best optimizer)", result.optimizers()))
    fig, axes = plt.subplots(1, len(groups), figsize=(5.6 * len(groups) + 2.6, 4.6), squeeze=False)
    markers = "osD^vP*Xhp<>"
    n_data = len(result.datasets())
    for ax, (title, names) in zip(axes[0], groups):
        times = result.times_to_target(names)
        ratios = profile_ratios(times)
        finite = [r for rs in ratios.values() for r in rs if math.isfinite(r)]
        tau_max = max(2.0, max(finite, default=1.0) * 1.5)
        taus = np.unique(np.concatenate([[1.0, tau_max], np.asarray(finite, dtype=float)]))
        rho = performance_profile(times, taus)
        for i, name in enumerate(names):
            own = np.isin(taus, ratios[name])  # mark where this method's curve steps up
            ax.step(
                taus,
                rho[name],
                where="post",
                color=colours[name],
                marker=markers[i % len(markers)],
                markevery=list(np.flatnonzero(own)),
                markersize=5,
                label=f"{_label(name)} ({int(round(rho[name][-1] * n_data))}/{n_data})",
                **_style(name),
            )
        ax.set_xscale("log")
        ax.set_xlim(1.0, tau_max)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("τ: time to target / best time on the dataset (log)")
        ax.set_ylabel("fraction of datasets within τ")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    # one legend for both panels (same contenders, same colours; how many datasets each reached at all)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, title="(datasets reached)", title_fontsize=7.5)
    fig.suptitle("Performance profiles: time to reach each dataset's validation target", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1 - 2.6 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_time_to_target(result: BenchResult, path: Path, colours: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    table = result.pivot("time_to_target_s")
    names, datasets = list(table.columns), list(table.index)
    finite = table.to_numpy(float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    top = float(finite.max()) * 3 if finite.size else 10.0
    bottom = float(finite.min()) / 3 if finite.size else 0.01
    fig, ax = plt.subplots(figsize=(min(13.0, max(7.0, 0.18 * len(datasets) * max(1, len(names)) + 3.5)), 4.8))
    width = 0.8 / max(1, len(names))
    missed_label = True
    for j, name in enumerate(names):
        xs = np.arange(len(datasets)) + (j - (len(names) - 1) / 2) * width
        values = table[name].to_numpy(float)
        ok = np.isfinite(values)
        ax.bar(xs[ok], np.maximum(values[ok], bottom), width, color=colours[name], label=_label(name), bottom=0)
        if (~ok).any():
            ax.scatter(
                xs[~ok],
                np.full((~ok).sum(), top / 1.6),
                marker="x",
                color=colours[name],
                s=40,
                linewidths=2,
                label="not reached" if missed_label else None,
                zorder=3,
            )
            missed_label = False
    ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    ax.set_xticks(np.arange(len(datasets)))
    ax.set_xticklabels([d.split(":")[-1] for d in datasets])
    ax.set_ylabel("training time to reach the target (s, log)")
    ax.set_title("Time to reach the validation target (× = never reached within the budget)", fontsize=10)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return int(math.ceil(n / cols)), cols


def _plot_test_scores(result: BenchResult, path: Path, colours: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    table = result.pivot("test_score")
    names, datasets = list(table.columns), list(table.index)
    nrows, ncols = _grid(len(datasets))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.6 * ncols, 0.32 * len(names) * nrows + 1.4 * nrows), squeeze=False
    )
    for ax, dataset in zip(axes.flat, datasets):
        values = table.loc[dataset].to_numpy(float)
        ok = np.isfinite(values)
        ys = np.arange(len(names))[::-1]
        low = float(values[ok].min()) if ok.any() else 0.0
        high = float(values[ok].max()) if ok.any() else 1.0
        pad = max((high - low) * 0.15, 0.005)
        left = low - pad
        ax.barh(ys[ok], values[ok] - left, left=left, color=[colours[n] for n, o in zip(names, ok) if o], height=0.7)
        for y, v, o in zip(ys, values, ok):
            ax.text((v if o else left) + pad * 0.05, y, f"{v:.4f}" if o else "failed", va="center", fontsize=7)
        ax.set_xlim(left, high + pad * 1.6)
        ax.set_yticks(ys)
        ax.set_yticklabels([_label(n) for n in names], fontsize=7.5)
        metric = result.results.loc[result.results["dataset"] == dataset, "metric"].iloc[0]
        ax.set_title(f"{dataset}: test {metric}", fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    fig.suptitle("Test score of each contender's best configuration (refitted on train + validation)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_curves(result: BenchResult, path: Path, colours: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    datasets, names = result.datasets(), result.contenders()
    nrows, ncols = _grid(len(datasets))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.8 * ncols + 2.2, 3.5 * nrows), squeeze=False)
    totals = result.results.set_index(["dataset", "contender"])["train_time_s"]
    for ax, dataset in zip(axes.flat, datasets):
        target, reference = result.targets[dataset], result.references[dataset]
        bests: list[float] = []
        first = math.inf
        for name in names:
            times, scores = result.traces.get((dataset, name), (np.array([]), np.array([])))
            keep = np.isfinite(scores) & (times > 0)
            if not keep.any():
                continue
            t, s = times[keep], np.maximum.accumulate(scores[keep])
            end = max(float(totals.get((dataset, name), t[-1])), float(t[-1]))
            t, s = np.append(t, end), np.append(s, s[-1])  # the best so far holds until the run's end
            bests.append(float(s[-1]))
            first = min(first, float(t[0]))
            ax.step(t, s, where="post", color=colours[name], label=_label(name), **_style(name))
            ax.plot(t[:-1], s[:-1], linestyle="none", marker="o", markersize=2.5, color=colours[name])
        best_seen = max([target, *bests])
        gap = max(best_seen - target, 1e-3)
        low = max(reference, min([target - 3 * gap, *bests]) - 0.5 * gap)
        ax.axhline(target, color="black", linestyle=":", linewidth=1.2, label="target")
        ax.set_ylim(low, best_seen + 0.5 * gap)
        ax.set_xscale("log")
        if math.isfinite(first):
            ax.set_xlim(left=first * 0.7)
        metric = result.results.loc[result.results["dataset"] == dataset, "metric"].iloc[0]
        ax.set_title(f"{dataset} (target {target:.4f})", fontsize=9)
        ax.set_xlabel("cumulative training time of the tuning run (s, log)", fontsize=8)
        ax.set_ylabel(f"best validation {metric} so far", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7.5)
    fig.suptitle("Best validation score so far against tuning time (dots: measurements)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 2.2 / (4.8 * ncols + 2.2), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------------ report


def _settings_lines(result: BenchResult, command: str | None) -> list[str]:
    s = result.settings
    budget = f"{s['trials']} trials" if s["trials"] is not None else ""
    if s["timeout"] is not None:
        budget = (budget + " / " if budget else "") + f"{s['timeout']:g} s"
    baseline = (
        "the same wall-clock as the median optimizer study on the dataset"
        if s["baseline_budget"] == "time" and s["timeout"] is None
        else ("the same budget" if s["timeout"] is not None else "the same number of trials")
    )
    lines = []
    if command:
        lines.append(f"Command: `{command}`")
        lines.append("")
    lines += [
        f"- Run: {s['date']}, {s['elapsed_s']:.0f} s in total; machine: {s['machine']}; load average at the end: "
        f"{s['load_average']}; {s['threads']} thread(s) for every contender; {s['versions']}.",
        f"- Budget per optimizer: {budget} of {s['epochs']} epochs, sampler `{s['sampler']}`, seed {s['seed']}; "
        f"searched: the optimizer's hyperparameters, the schedule and its parameters, the batch size"
        + (", the hidden layers and dropout" if s["tune_network"] else " (network fixed: TabularMLP (128, 64))")
        + f". Tuned baselines: {baseline}, same sampler and seed.",
        f"- Splits: test {s['test_size']:.0%} (touched once, at the end), validation {s['val_size']:.0%}, "
        "train the rest (stratified for classification). Test score = the best configuration by final validation "
        "score, refitted on train + validation.",
        f"- Target per dataset: the trivial score (majority class / training mean on the validation split) plus "
        f"{s['target_fraction']:.2f} of the way to the best validation score any contender reached. Time to target = "
        "training time (validation scoring excluded) summed over the contender's tuning run up to the first epoch "
        "(networks) or the end of the first trial (baselines) that reached it.",
    ]
    return lines


def write_report(
    result: BenchResult, out: str | Path, command: str | None = None, tolerance: float = 0.01
) -> dict[str, Path]:
    """Write ``results.csv``, ``trials.csv``, ``results.md``, ``report.html`` and the figures
    (``performance_profile.png``, ``time_to_target.png``, ``test_scores.png``, ``curves.png``) into ``out``."""
    import matplotlib

    matplotlib.use("Agg")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    result.results.to_csv(out / "results.csv", index=False)
    files["results.csv"] = out / "results.csv"
    result.trials.to_csv(out / "trials.csv", index=False)
    files["trials.csv"] = out / "trials.csv"
    summary = {"settings": result.settings, "targets": result.targets, "references": result.references}
    (out / "settings.json").write_text(json.dumps(summary, indent=1, default=str))
    files["settings.json"] = out / "settings.json"
    colours = _colours(result.contenders())
    figures = [
        ("performance_profile.png", "Performance profiles (time to target)", _plot_profile),
        ("time_to_target.png", "Time to target per dataset", _plot_time_to_target),
        ("test_scores.png", "Test scores", _plot_test_scores),
        ("curves.png", "Best validation score against tuning time", _plot_curves),
    ]
    for name, _, plot in figures:
        plot(result, out / name, colours)
        files[name] = out / name

    scores = _score_table(result)
    times = _time_table(result)
    verdict = comparison(result, tolerance)
    shown_verdict = verdict.rename(
        columns={
            "net": "net (optimizer)",
            "net_test": "net test",
            "mlp": "MLP",
            "mlp_test": "MLP test",
            "hgb": "HGB",
            "hgb_test": "HGB test",
            "net_minus_mlp": "net − MLP",
            "net_minus_hgb": "net − HGB",
            "beats_mlp": "beats MLP",
            "matches_hgb": f"matches HGB (±{tolerance:g})",
        }
    )
    n = len(verdict)
    beats = count_true(verdict["beats_mlp"])
    matches = count_true(verdict["matches_hgb"])
    md = [
        "# skopt-nn bench",
        "",
        *_settings_lines(result, command),
        "",
        "## Test score (accuracy / R², higher is better; bold: best of the row)",
        "",
        markdown_table(scores, bold_max_rows=True),
        "",
        "## Time to reach the validation target (seconds of training; — or 'not reached')",
        "",
        markdown_table(times, digits=2),
        "",
        "## Tuned network against sklearn's MLP and gradient boosting",
        "",
        "net = the optimizer whose best configuration had the best validation score (choosing it used every "
        "optimizer's study); MLP / HGB = the better of defaults and tuned by validation score.",
        "",
        markdown_table(shown_verdict),
        "",
        f"The network beats sklearn's MLP on {beats}/{n} datasets and matches gradient boosting (within "
        f"{tolerance:g}) on {matches}/{n}.",
        "",
        "Figures: " + ", ".join(f"[{t}]({name})" for name, t, _ in figures),
        "",
    ]
    (out / "results.md").write_text("\n".join(md))
    files["results.md"] = out / "results.md"

    def to_html(frame: pd.DataFrame) -> str:
        return frame.to_html(index=False, border=0, na_rep="—", float_format=lambda v: _fmt(v))

    settings = "".join(
        f"<li>{html.escape(line[2:] if line.startswith('- ') else line)}</li>"
        for line in _settings_lines(result, command)
        if line
    )
    images = "\n".join(
        f'<h2>{html.escape(t)}</h2>\n<img src="{name}" alt="{html.escape(t)}">' for name, t, _ in figures
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>skopt-nn bench</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}} img{{max-width:100%}}</style></head>
<body><h1>skopt-nn bench: optimizers tuned on an equal budget, against sklearn's MLP and gradient boosting</h1>
<ul>{settings}</ul>
<h2>Test score</h2>{to_html(scores)}
<h2>Time to reach the validation target (s)</h2>{to_html(times)}
<h2>Tuned network against sklearn's MLP and gradient boosting</h2>{to_html(shown_verdict)}
<p>The network beats sklearn's MLP on {beats}/{n} datasets and matches gradient boosting (within {tolerance:g}) on
{matches}/{n}.</p>
{images}
</body></html>
"""
    (out / "report.html").write_text(page)
    files["report.html"] = out / "report.html"
    result.files = files
    return files
