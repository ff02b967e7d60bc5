"""Theory check on a real model: does the distilled-weight bias grow linearly with MMD?

The claim (the bias bound in docs/theory.md): ``||W_0(S) - W_0(target)|| <= C * MMD(S, target)``. This script
builds demonstration sets with controlled MMD to a target sample by mixing demos from the
target distribution with demos from a shifted one (0..k shifted demos out of k), computes
the exact action of each set's distilled weights W_0 on the target queries at several
layers of SmolLM2 (``promptkd.probes.distilled_weights``), and plots the distance to the
action of a target-matched reference set against the set's MMD to the target sample.
It fits ``distance = a + b * MMD`` per layer and reports slope, intercept and R^2, and the same
line through the origin (``distance = b0 * MMD``, the bound's form) with its R^2.

Usage::

    python examples/theory_check.py                     # ../shared/data/icl: sst2 target, trec shift
    python examples/theory_check.py --data my.jsonl     # one JSONL: first label = target, others = shift
    python examples/theory_check.py --smoke --no-write  # seconds; used by the tests

The full run writes docs/theory_check.md and docs/theory_check.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "icl"
TEMPLATE = "Input: {input}\nOutput: {output}"


def read_rows(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                row = json.loads(line)
                text = row.get("text", row.get("input"))
                label = row.get("label", row.get("output"))
                if isinstance(text, str) and text.strip() and label is not None:
                    rows.append({"text": text.strip(), "label": str(label)})
    if not rows:
        raise SystemExit(f"no usable rows (need 'text'/'label' or 'input'/'output') in {path}")
    return rows


def load_data(args: argparse.Namespace) -> tuple[list[dict], list[dict], list[dict], str]:
    """Return (target pool, target queries, shifted pool, description)."""
    data = Path(args.data)
    if data.is_dir():
        tgt_train = read_rows(data / args.target / "train.jsonl")
        tgt_test = read_rows(data / args.target / "test.jsonl")
        shift = read_rows(data / args.shift / "train.jsonl")
        desc = f"target = {args.target} (demos from train, queries from test), shift = {args.shift} train"
        return tgt_train, tgt_test, shift, desc
    if data.is_file():
        rows = read_rows(data)
        labels = sorted({r["label"] for r in rows})
        if len(labels) < 2:
            raise SystemExit(f"{data} has a single label; the shift needs rows with another label")
        target = [r for r in rows if r["label"] == labels[0]]
        shift = [r for r in rows if r["label"] != labels[0]]
        half = len(target) // 2
        desc = f"{data.name}: target = label {labels[0]!r}, shift = other labels"
        return target[:half], target[half:], shift, desc
    raise SystemExit(f"--data {data} is neither a folder of <task>/train.jsonl files nor a JSONL file")


def fit_line(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least-squares lines ``y = a + b x`` and ``y = b0 x`` (through the origin) with their R^2.

    Both R^2 use the same denominator, the spread of y around its mean, so they compare:
    the through-origin R^2 is below the other and negative when the line through the
    origin fits worse than the constant mean(y).
    """
    A = np.vstack([np.ones_like(x), x]).T
    (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - (a + b * x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    sxx = float((x * x).sum())
    b0 = float((x * y).sum()) / sxx if sxx > 0 else float("nan")
    resid0 = y - b0 * x
    r2_origin = 1.0 - float((resid0**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    rank_x, rank_y = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    spearman = float(np.corrcoef(rank_x, rank_y)[0, 1])
    return {
        "intercept": float(a),
        "slope": float(b),
        "r2": r2,
        "slope_origin": b0,
        "r2_origin": r2_origin,
        "spearman": spearman,
    }


def main(argv: list[str] | None = None, lm=None) -> dict:
    """Run the check; ``lm`` may be an already loaded LoadedLM (the tests pass theirs)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder with <task>/{train,test}.jsonl, or one JSONL")
    p.add_argument("--target", default="sst2", help="target task (folder mode)")
    p.add_argument("--shift", default="trec", help="shifted task (folder mode)")
    p.add_argument("--model", default=None, help="model for load_lm (default SmolLM2-135M-Instruct)")
    p.add_argument("--k", type=int, default=6, help="demos per set")
    p.add_argument("--queries", type=int, default=12, help="target queries")
    p.add_argument("--reps", type=int, default=3, help="sets per mixing level")
    p.add_argument("--mmd-targets", type=int, default=300, help="target items the MMD is measured against")
    p.add_argument("--max-words", type=int, default=25, help="only target queries up to this many words (speed)")
    p.add_argument("--layers", default="0,3,6,9,12,15,18,21,24,27,29", help="comma-separated layer indices")
    p.add_argument("--embedder", default="minilm", choices=["minilm", "hashing", "lm-kv"], help="space of the MMD")
    p.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch's default); 1 is fastest on a shared CPU"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny run (k=3, 2 levels, 1 rep, 3 queries, 2 layers)")
    p.add_argument("--no-write", action="store_true", help="do not write docs/")
    p.add_argument("--out", default=str(REPO / "docs" / "theory_check.md"))
    p.add_argument("--figure", default=str(REPO / "docs" / "theory_check.png"))
    args = p.parse_args(argv)
    if args.smoke:
        args.k, args.queries, args.reps, args.layers = 3, 3, 1, "0,-1"
        args.embedder = "hashing" if args.embedder == "minilm" else args.embedder

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from promptkd import Demo
    from promptkd.kernels import median_bandwidth, mmd2
    from promptkd.probes import distilled_weights, load_lm

    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    tgt_pool, tgt_queries, shift_pool, desc = load_data(args)
    k = args.k
    short = [r["text"] for r in tgt_queries if len(r["text"].split()) <= args.max_words] or [
        r["text"] for r in tgt_queries
    ]
    queries = [short[i] for i in rng.choice(len(short), min(args.queries, len(short)), replace=False)]
    levels = [0, k] if args.smoke else list(range(k + 1))
    need_t = k * (1 + len(levels) * args.reps)
    tgt_idx = rng.choice(len(tgt_pool), min(need_t, len(tgt_pool)), replace=need_t > len(tgt_pool))
    tgt_demos = [Demo(input=tgt_pool[i]["text"], output=tgt_pool[i]["label"]) for i in tgt_idx]
    shift_idx = rng.choice(len(shift_pool), min(k * len(levels) * args.reps, len(shift_pool)), replace=False)
    shift_demos = [Demo(input=shift_pool[i]["text"], output=shift_pool[i]["label"]) for i in shift_idx]

    reference = tgt_demos[:k]
    sets: list[tuple[int, list[Demo]]] = []
    t_next, s_next = k, 0
    for level in levels:
        for _ in range(args.reps):
            chosen = tgt_demos[t_next : t_next + k - level] + shift_demos[s_next : s_next + level]
            t_next, s_next = t_next + k - level, s_next + level
            order = rng.permutation(len(chosen))
            sets.append((level, [chosen[i] for i in order]))

    lm = load_lm(lm if lm is not None else args.model)
    n_layers = len(lm.model.get_decoder().layers)
    layers = sorted({int(x) % n_layers for x in args.layers.split(",")})

    # MMD to the target distribution: the queries plus more target test items (embedding is cheap)
    extra = [r["text"] for r in tgt_queries if r["text"] not in set(queries)]
    n_extra = max(0, args.mmd_targets - len(queries))
    extra = [extra[i] for i in rng.choice(len(extra), min(n_extra, len(extra)), replace=False)] if extra else []
    targets = queries + extra
    set_texts = [[d.input for d in demos] for _, demos in sets]
    if args.embedder == "lm-kv":
        # per layer: the model's own mean-pooled [values | keys] and the product kernel k_att
        from promptkd.probes import LMEmbedder

        cols = []
        for layer in layers:
            emb = LMEmbedder(lm, layer=layer, output="kv")
            t_emb = emb.encode(targets)
            set_embs = [emb.encode(texts) for texts in set_texts]
            kern = emb.attention_kernel().fit(np.vstack([t_emb, *set_embs]))
            cols.append([np.sqrt(max(mmd2(e, t_emb, kernel=kern), 0.0)) for e in set_embs])
        mmd_matrix = np.array(cols).T  # (n_sets, L)
        embedder_id, bandwidth = "lm:<layer>:kv (AttentionKernel, rbf on keys)", float("nan")
    else:
        if args.embedder == "minilm":
            from promptkd.embeddings import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder(device="cpu")
        else:
            from promptkd.embeddings import HashingEmbedder

            embedder = HashingEmbedder(dim=256)
        t_emb = embedder.encode(targets)
        set_embs = [embedder.encode(texts) for texts in set_texts]
        bandwidth = float(median_bandwidth(np.vstack([t_emb, *set_embs])))
        mmds = np.array([np.sqrt(max(mmd2(e, t_emb, kernel="rbf", bandwidth=bandwidth), 0.0)) for e in set_embs])
        mmd_matrix = np.repeat(mmds[:, None], len(layers), 1)
        embedder_id = embedder.id
    ref = distilled_weights(lm, reference, queries, TEMPLATE, layers=layers, batch_size=args.queries)
    dists = []
    for j, (_, demos) in enumerate(sets):
        dw = distilled_weights(lm, demos, queries, TEMPLATE, layers=layers, batch_size=args.queries)
        dists.append(dw.distance(ref))
        if (j + 1) % 10 == 0:
            print(f"  {j + 1}/{len(sets)} sets, {time.perf_counter() - t0:.0f} s", flush=True)
    dists = np.array(dists)  # (n_sets, L)
    ref_norm = np.sqrt((ref.action**2).sum(-1).mean(0))
    fits = [fit_line(mmd_matrix[:, j], dists[:, j]) for j in range(len(layers))]
    # the same fit on the means over the sets of each mixing level (the expected relation)
    set_levels = np.array([lv for lv, _ in sets])
    for j, f in enumerate(fits):
        mean_mmd = np.array([mmd_matrix[set_levels == lv, j].mean() for lv in levels])
        mean_d = np.array([dists[set_levels == lv, j].mean() for lv in levels])
        level_fit = fit_line(mean_mmd, mean_d)
        f["r2_level_means"] = level_fit["r2"]
        f["slope_level_means"] = level_fit["slope"]
        f["r2_origin_level_means"] = level_fit["r2_origin"]
    elapsed = time.perf_counter() - t0

    print(f"{desc}; k={k}, {len(sets)} sets, {len(queries)} queries, model {lm.name}, {elapsed:.0f} s")
    print(
        f"{'layer':>5} {'slope':>9} {'intercept':>10} {'R^2':>6} {'R^2 means':>9} {'slope0':>9} {'R^2 0':>7}"
        f" {'R^2 0 means':>11} {'Spearman':>8} {'|ref|':>8}"
    )
    for layer, f, rn in zip(layers, fits, ref_norm, strict=True):
        print(
            f"{layer:>5} {f['slope']:>9.3f} {f['intercept']:>10.3f} {f['r2']:>6.3f} {f['r2_level_means']:>9.3f}"
            f" {f['slope_origin']:>9.3f} {f['r2_origin']:>7.3f} {f['r2_origin_level_means']:>11.3f}"
            f" {f['spearman']:>8.3f} {rn:>8.3f}"
        )

    result = {
        "description": desc,
        "model": lm.name,
        "k": k,
        "n_sets": len(sets),
        "n_queries": len(queries),
        "n_mmd_targets": len(targets),
        "levels": levels,
        "embedder": embedder_id,
        "bandwidth": bandwidth,
        "layers": layers,
        "mmd": mmd_matrix.tolist(),
        "set_levels": [lv for lv, _ in sets],
        "distance": dists.tolist(),
        "fits": fits,
        "reference_norm": ref_norm.tolist(),
        "seconds": elapsed,
        "threads": args.threads,
    }
    if not args.no_write:
        write_docs(result, Path(args.out), Path(args.figure), argv if argv is not None else sys.argv[1:])
    return result


def write_docs(result: dict, out: Path, figure: Path, argv: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers, fits = result["layers"], result["fits"]
    mmd = np.array(result["mmd"])
    dist = np.array(result["distance"])
    levels = np.array(result["set_levels"])
    cols = 4
    rows = int(np.ceil(len(layers) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.7 * rows), squeeze=False)
    for j, layer in enumerate(layers):
        ax = axes[j // cols][j % cols]
        x = mmd[:, j]
        sc = ax.scatter(x, dist[:, j], c=levels, cmap="viridis", s=14)
        span = x.max() - x.min()
        xs = np.linspace(x.min() - 0.05 * span, x.max() + 0.05 * span, 20)
        f = fits[j]
        ax.plot(xs, f["intercept"] + f["slope"] * xs, "r-", lw=1)
        ax.set_title(f"layer {layer}: R$^2$={f['r2']:.2f}", fontsize=9)
        ax.tick_params(labelsize=7)
        if j % cols == 0:
            ax.set_ylabel("||W0(S) phi - W0(ref) phi||", fontsize=7)
        if j // cols == rows - 1:
            ax.set_xlabel("MMD(S, target)", fontsize=7)
    for j in range(len(layers), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.colorbar(sc, ax=axes, shrink=0.6, label="shifted demos in the set")
    fig.suptitle(f"Distilled-weight distance vs MMD ({result['model']}, k={result['k']})", fontsize=10)
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110, bbox_inches="tight")
    plt.close(fig)

    r2 = np.array([f["r2"] for f in fits])
    r2_0 = np.array([f["r2_origin"] for f in fits])
    good = [layer for layer, v in zip(layers, r2, strict=True) if v >= 0.9]
    good_means = [layer for layer, f in zip(layers, fits, strict=True) if f["r2_level_means"] >= 0.9]
    lines = [
        "# Theory check: distilled-weight bias versus MMD on SmolLM2",
        "",
        "<!-- generated by examples/theory_check.py; rerun it to refresh -->",
        "",
        "Claim under test (the bias bound in [theory.md](theory.md)): the distance between the distilled weights W_0 built from a",
        "demonstration set S and those built from a target-matched set grows linearly with MMD(S, target).",
        "",
        "## Setup",
        "",
        f"- Data: {result['description']}.",
        f"- Model: {result['model']} (eager attention, CPU, torch threads={result['threads']}), template `Input: ...`/`Output: ...`.",
        f"- {result['n_sets']} sets of k={result['k']} demos: for each number of shifted demos in {result['levels']},"
        " sets mix target and shifted demos (shuffled order); a separate target-only set is the reference.",
        f"- Target sample: {result['n_queries']} queries (W_0 actions are read on these). MMD (biased estimator): Gaussian"
        f" kernel on {result['embedder']} embeddings of the demo inputs vs {result['n_mmd_targets']} target items (the"
        f" queries and more target test items), bandwidth {result['bandwidth']:.3f} (median heuristic, fixed for all sets).",
        "- R^2 (sets): linear fit over all sets. R^2 (level means): the same fit on the mean MMD and mean distance of the"
        " sets at each mixing level, i.e. the expected relation with the set-sampling noise averaged out.",
        "- Two fits per layer: `distance = a + b * MMD` (with an intercept) and `distance = b0 * MMD` (through the"
        " origin, the form of the bias bound). Both R^2 are `1 - SS_res / SS_tot` with the same SS_tot (spread around"
        " the mean distance), so they compare; the through-origin R^2 is negative where that line fits worse than a"
        " constant.",
        "- Distance per layer: root-mean-square over queries of the difference of the exact W_0 actions"
        " (sum over demo tokens of attention x value, per head, heads concatenated), read at the query's last token"
        " with the demo prefix cached (`promptkd.probes.distilled_weights`).",
        f"- Run time: {result['seconds']:.0f} s. Command: `python examples/theory_check.py {' '.join(argv)}`".rstrip(),
        "",
        "## Result",
        "",
        f"![distance vs MMD]({figure.name})",
        "",
        "| layer | slope | intercept | R^2 (sets) | R^2 (level means) | slope through origin | R^2 through origin (sets)"
        " | R^2 through origin (level means) | Spearman | RMS norm of the reference action |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layer, f, rn in zip(layers, fits, result["reference_norm"], strict=True):
        lines.append(
            f"| {layer} | {f['slope']:.3f} | {f['intercept']:.3f} | {f['r2']:.3f} | {f['r2_level_means']:.3f} |"
            f" {f['slope_origin']:.3f} | {f['r2_origin']:.3f} | {f['r2_origin_level_means']:.3f} |"
            f" {f['spearman']:.3f} | {rn:.3f} |"
        )
    lines += [
        "",
        f"R^2 >= 0.9 in {len(good)} of {len(layers)} layers"
        + (f" ({', '.join(map(str, good))})" if good else "")
        + f"; median R^2 {np.median(r2):.3f}, range {r2.min():.3f} to {r2.max():.3f}."
        + f" On the level means: R^2 >= 0.9 in {len(good_means)} of {len(layers)} layers"
        + (f" ({', '.join(map(str, good_means))})" if good_means else "")
        + ".",
        "",
        f"Through the origin: median R^2 {np.median(r2_0):.3f} (sets), range {r2_0.min():.3f} to {r2_0.max():.3f};"
        f" it is below the intercept fit's R^2 by a median of {np.median(r2 - r2_0):.3f}.",
        "",
    ]
    # keep a hand-written "## Reading" section across reruns
    if out.exists():
        old_text = out.read_text(encoding="utf-8")
        if "\n## Reading" in old_text:
            lines += ["", old_text[old_text.index("\n## Reading") + 1 :].rstrip(), ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {out} and {figure}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
