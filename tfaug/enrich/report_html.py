"""``report.html``: one self-contained page (inline CSS and base64 PNG images; nothing is fetched) with the verdict,
the candidates (table and plot with 95 % CIs), per-class recall, generated samples beside real ones, the nearest
training image of a sample of generated ones, and the commands to reproduce.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from tfaug.utils.io import atomic_write_text

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:24px auto;
padding:0 16px;color:#1f2328;background:#fff}h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #d0d7de}
.verdict{border:2px solid #1a7f37;background:#eefbf1;border-radius:8px;padding:12px 18px;font-size:1.08em}
.verdict.none{border-color:#9a6700;background:#fff8e5}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #d0d7de;padding:4px 10px;text-align:right}th{background:#f6f8fa}td:first-child{text-align:left}
img.px{image-rendering:pixelated}pre{background:#f6f8fa;padding:10px;overflow-x:auto}.note{color:#57606a}
.pairs{display:flex;flex-wrap:wrap;gap:14px}.pair{text-align:center;font-size:.85em}"""
MAX_CLASSES = 10  # classes shown in the sample grids
PER_ROW = 8       # real and generated images per class row
NEAREST = 8       # generated images shown with their nearest training image


def _png(image: np.ndarray) -> str:
    from tfaug.utils.images import png_bytes

    return base64.b64encode(png_bytes(image)).decode("ascii")


def _img(image: np.ndarray, width: int, alt: str) -> str:
    return f'<img class="px" alt="{html.escape(alt)}" width="{width}" src="data:image/png;base64,{_png(image)}">'


def _fig(fig, alt: str) -> str:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _pct(d: dict | None, key: str = "mean") -> str:
    if not d or d.get(key) is None:
        return "n/a"
    return f"{100 * d[key]:.1f}"


def _ci_text(d: dict | None, signed: bool = False) -> str:
    if not d or d.get("mean") is None or not np.isfinite(d["mean"]):
        return "n/a"
    sign = "+" if signed and d["mean"] >= 0 else ""
    if d.get("ci_low") is None:
        return f"{sign}{100 * d['mean']:.1f} (one repeat: no CI)"
    return f"{sign}{100 * d['mean']:.1f} [{100 * d['ci_low']:.1f}, {100 * d['ci_high']:.1f}]"


def _verdict_box(v: dict) -> str:
    t = v.get("test")
    lines = [f"<b>Chosen: <code>{html.escape(v['chosen'])}</code></b> &mdash; {html.escape(v['why'])}.",
             f"Validation accuracy difference to <code>classic</code>: {_ci_text(v['delta_vs_classic'], True)} "
             "points (paired repeats, 95 % CI)."]
    if t:
        lines.append(f"Test accuracy {_ci_text(t['accuracy'])} %, macro-F1 {_ci_text(t['macro_f1'])} % "
                     f"({t['n']} real test images, read once after the choice; 95 % bootstrap CI).")
    else:
        lines.append(f"No test set: {html.escape(v['protocol']['reason'])}. Validation accuracy "
                     f"{_ci_text(v['validation_accuracy'])} %.")
    if v.get("warning"):
        lines.append(f"<b>Warning:</b> {html.escape(v['warning'])}.")
    cls = "verdict" if v["generative"] else "verdict none"
    return f'<div class="{cls}" id="verdict">' + "<br>".join(lines) + "</div>"


def _candidates(v: dict) -> str:
    rows = ["<tr><th>candidate</th><th>repeats</th><th>val. accuracy % [95 % CI]</th>"
            "<th>Δ vs classic, points [95 % CI]</th><th>macro-F1 %</th><th>s / fit</th><th>stopped</th></tr>"]
    for c in v["candidates"]:
        mark = " ✔" if c["candidate"] == v["chosen"] else ""
        f1 = f"{100 * c['macro_f1']:.1f}" if c["macro_f1"] is not None else "n/a"
        sec = f"{c['seconds_per_fit']:.1f}" if c["seconds_per_fit"] is not None else "n/a"
        rows.append(f"<tr><td><code>{html.escape(c['candidate'])}</code>{mark}</td><td>{c['repeats']}</td>"
                    f"<td>{_ci_text(c['accuracy'])}</td><td>{_ci_text(c['delta_vs_classic'], True)}</td>"
                    f"<td>{f1}</td><td>{sec}</td><td>{html.escape(c['stopped'] or '')}</td></tr>")
    return "<table>" + "".join(rows) + "</table>" + _candidate_plot(v)


def _candidate_plot(v: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [c for c in v["candidates"] if c["repeats"]]
    if not done:
        return ""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(done) + 1.2))
    for i, c in enumerate(done):
        a = c["accuracy"]
        err = 0 if a["half_width"] is None else 100 * a["half_width"]
        color = "#1a7f37" if c["candidate"] == v["chosen"] else ("#57606a" if c["control"] else "#0969da")
        ax.errorbar(100 * a["mean"], i, xerr=err, fmt="o", color=color, capsize=4)
    ax.set_yticks(range(len(done)), [c["candidate"] for c in done])
    ax.invert_yaxis()
    ax.set_xlabel("validation accuracy % (mean, 95 % CI over repeats)")
    ax.grid(axis="x", alpha=0.3)
    return _fig(fig, "candidates plot")


def _recall(v: dict) -> str:
    t = v.get("test")
    if not t:
        return "<p class='note'>No test set (see the protocol): per-class recall is not measured.</p>"
    names = v["class_names"]
    cells = "".join(f"<tr><td>{html.escape(n)}</td><td>{100 * r:.1f}</td></tr>"
                    for n, r in zip(names, t["per_class_recall"]))
    return f"<table><tr><th>class</th><th>test recall %</th></tr>{cells}</table>"


def _generator(out: Path, v: dict):
    """The winner's final generator, else a selection generator of repeat 0 (trained on that repeat's split)."""
    from tfaug.synthesis.loader import load_generator

    if v["outputs"].get("generator"):
        return load_generator(out / v["outputs"]["generator"]), "the chosen strategy's generator (whole training side)"
    root = out / "work" / "r0"
    if root.is_dir():
        for run in sorted(root.iterdir()):
            if (run / "checkpoints" / "generator.keras").exists():
                return load_generator(run), f"{run.name}, trained during selection on repeat 0's training part"
    return None, ""


def _samples(out: Path, v: dict, side) -> str:
    from tfaug.utils.images import make_grid, to_uint8
    from tfaug.utils.neighbours import nearest_neighbours

    gen, what = _generator(out, v)
    k = min(len(side.class_names), MAX_CLASSES)
    h, w, c = side.images.shape[1:]
    width = max(24, 96 // max(h, w) * max(h, w) // 2)  # display size of one image (px)
    if gen is None:
        return "<p class='note'>No generator was trained (no generative candidate ran).</p>"
    ids = np.repeat(np.arange(k, dtype=np.int32), PER_ROW)
    fake = to_uint8(gen.sample(ids, np.arange(len(ids), dtype=np.int64) + 5_000_000))
    if fake.shape[1:] != side.images.shape[1:]:
        return f"<p class='note'>Generator images {fake.shape[1:]} differ from the data's {side.images.shape[1:]}.</p>"
    rows = ["<table><tr><th>class</th><th>real (training side)</th><th>generated</th></tr>"]
    for cls in range(k):
        real = side.images[side.labels == cls][:PER_ROW]
        gen_row = fake[cls * PER_ROW:(cls + 1) * PER_ROW]
        rows.append(f"<tr><td>{html.escape(side.class_names[cls])}</td>"
                    f"<td>{_img(make_grid(real, ncols=PER_ROW), width * PER_ROW, 'real images')}</td>"
                    f"<td>{_img(make_grid(gen_row, ncols=PER_ROW), width * PER_ROW, 'generated images')}</td></tr>")
    rows.append("</table>")
    pick = fake[np.linspace(0, len(fake) - 1, min(NEAREST, len(fake))).astype(int)]
    idx, dist = nearest_neighbours(pick.reshape(len(pick), -1).astype(np.float32) / 255.0,
                                   side.images.reshape(len(side.images), -1).astype(np.float32) / 255.0)
    pairs = "".join(f'<div class="pair">{_img(make_grid(np.stack([g, side.images[j]]), ncols=2), 2 * width, "pair")}'
                    f"<br>distance {d:.2f}</div>" for g, j, d in zip(pick, idx, dist))
    return (f"<p class='note'>Samples of {html.escape(what)}; seeds 5,000,000 and up.</p>" + "".join(rows)
            + "<h3>Nearest training image of generated samples</h3><p class='note'>Left: generated; right: the "
              "nearest real training image by pixel distance (L2 over [0, 1] pixels). Near-zero distances mean "
              "copies.</p>" + f'<div class="pairs">{pairs}</div>')


def _commands(v: dict, out: Path) -> str:
    lines = [v["command"], "# serve the exported models (classifier and, when a generator won, the generator):",
             f"tfaug serve --model-base {out}/saved_models"]
    if v["outputs"].get("generator_name"):
        lines.append(f"tfaug query {v['outputs']['generator_name']} --class-id 0 --n 16 --out samples")
    lines += ["# the classifier from Python (uint8 images in, probabilities out):",
              f"python -c \"import tensorflow as tf; m = tf.saved_model.load('{out}/{v['outputs']['classifier']}'); "
              "print(m.signatures['serving_default'])\""]
    return "<pre>" + html.escape("\n".join(lines)) + "</pre>"


def _protocol(v: dict) -> str:
    p = v["protocol"]
    text = (f"Protocol <b>{p['name']}</b>: {p['n_train']} training-side images, {p['n_test']} test images "
            f"(test fraction {p['test_fraction']}), validation fraction {p['val_fraction']} per repeat, up to "
            f"{p['max_repeats']} repeats, classifier {html.escape(p['classifier'])}, seed {p['seed']}. "
            f"Budget {v['budget']['minutes']} min, used {v['budget']['seconds_used'] / 60:.1f} min on "
            f"{html.escape(v['machine'])}.")
    if p["reason"]:
        text += f"<br>{html.escape(p['reason'])}."
    return f"<p>{text}</p>"


def write_report(out: Path, verdict: dict, ds, side) -> Path:
    """Write ``out/report.html`` (atomically) for ``verdict``; ``side`` is the training side (images shown)."""
    out = Path(out)
    body = [f"<h1>tfaug enrich: {html.escape(verdict['dataset'])}</h1>", _verdict_box(verdict), _protocol(verdict),
            "<h2>Candidates</h2>", _candidates(verdict), "<h2>Per-class recall (test)</h2>", _recall(verdict),
            "<h2>Generated and real images</h2>", _samples(out, verdict, side),
            "<h2>Reproduce</h2>", _commands(verdict, out)]
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>tfaug enrich report</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(body) + "</body></html>")
    return atomic_write_text(out / "report.html", page)
