"""Time AttentionProbe.probe against a plain forward pass of the same model.

Target: a probe over a ~400-token prompt costs at most 1.5x a plain forward pass.
Runs on whatever device resolve_device picks (CUDA when present, else CPU) and writes
docs/benchmarks/probe_speed.md.

    python benchmarks/probe_speed.py [--tokens 400] [--repeats 7] [--threads 2] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]

SENTENCES = [
    ("an engrossing, beautifully shot drama with a fine cast", "positive"),
    ("the jokes fall flat and the plot goes nowhere", "negative"),
    ("a warm, funny film that never talks down to its audience", "positive"),
    ("tedious, overlong and strangely lifeless", "negative"),
    ("the soundtrack alone is worth the ticket", "positive"),
    ("a muddled script sinks a promising premise", "negative"),
]


def build_prompt(tokenizer, n_tokens: int):
    from promptkd import Demo
    from promptkd.rendering import PromptTemplate

    template = PromptTemplate()
    demos = []
    query = "a clever, moving story told with real care"
    i = 0
    while True:
        text, label = SENTENCES[i % len(SENTENCES)]
        candidate = [*demos, Demo(input=f"{text} (review {i})", output=label)]
        if len(tokenizer(template.render(candidate, query))["input_ids"]) > n_tokens:
            break
        demos = candidate
        i += 1
    return demos, query, template


def timed_round_robin(fns: list, repeats: int, sync) -> list[tuple[list[float], list[float]]]:
    """Run the variants in turn (so load changes hit all alike); wall and process-CPU seconds each."""
    for fn in fns:  # warm-up
        fn()
    sync()
    out = [([], []) for _ in fns]
    for _ in range(repeats):
        for j, fn in enumerate(fns):
            w, c = time.perf_counter(), time.process_time()
            fn()
            sync()
            out[j][0].append(time.perf_counter() - w)
            out[j][1].append(time.process_time() - c)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=400)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default=None)
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--out", default=str(REPO / "docs" / "benchmarks" / "probe_speed.md"))
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from promptkd.probes import AttentionProbe, load_lm

    lm = load_lm(device=args.device)
    demos, query, template = build_prompt(lm.tokenizer, args.tokens)
    text = template.render(demos, query)
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]], device=lm.device)
    n = ids.shape[1]
    sync = torch.cuda.synchronize if lm.device.startswith("cuda") else (lambda: None)

    def plain() -> None:
        with torch.inference_mode():
            lm.model(input_ids=ids, use_cache=False)

    def plain_last() -> None:
        with torch.inference_mode():
            lm.model(input_ids=ids, use_cache=False, logits_to_keep=1)

    probe_all = AttentionProbe(lm, layers="all")
    probe_few = AttentionProbe(lm, layers=[0, 15, 29])

    variants = [
        ("plain forward (full logits)", plain),
        ("plain forward (last-position logits)", plain_last),
        ("AttentionProbe.probe, all 30 layers", lambda: probe_all.probe(demos, query, template)),
        ("AttentionProbe.probe, 3 layers", lambda: probe_few.probe(demos, query, template)),
    ]
    times = timed_round_robin([fn for _, fn in variants], args.repeats, sync)
    base_wall, base_cpu = statistics.median(times[0][0]), statistics.median(times[0][1])
    rows = []
    for (name, _), (wall, cpu) in zip(variants, times, strict=True):
        med, mcpu = statistics.median(wall), statistics.median(cpu)
        rows.append((name, med * 1000, min(wall) * 1000, med / base_wall, mcpu * 1000, mcpu / base_cpu))
    device = lm.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(0)})"
    header = f"{lm.name}, {n} prompt tokens, {len(demos)} demos, device {device}, torch threads {args.threads}"
    print(header)
    print(f"{'what':<40} {'median ms':>10} {'min ms':>8} {'x plain':>8} {'CPU ms':>8} {'x plain CPU':>11}")
    for name, med, mn, ratio, cpu, cratio in rows:
        print(f"{name:<40} {med:>10.1f} {mn:>8.1f} {ratio:>8.2f} {cpu:>8.1f} {cratio:>11.2f}")
    result = {"header": header, "rows": rows, "tokens": n}
    if device.startswith("cpu") and os.cpu_count():
        result["load"] = os.getloadavg()[0]
        header += f", load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    if not args.no_write:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            "# Probe speed",
            "",
            "<!-- generated by benchmarks/probe_speed.py; rerun it to refresh -->",
            "",
            "Cost of `AttentionProbe.probe` (one forward pass with hooks on the attention modules and",
            "`v_proj`: attention row at the readout, values, then per-head mass, contribution and strength)",
            "relative to a plain forward pass of the same eager-attention model over the same prompt.",
            f"Target: at most 1.5x. Median over {args.repeats} runs after one warm-up.",
            "",
            f"Setup: {header}; {platform.processor() or platform.machine()}, Python {platform.python_version()},"
            f" torch {torch.__version__}.",
            "",
            "| what | median wall ms | min wall ms | x plain (wall) | median CPU ms | x plain (CPU) |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {med:.1f} | {mn:.1f} | {ratio:.2f} | {cpu:.1f} | {cratio:.2f} |"
            for name, med, mn, ratio, cpu, cratio in rows
        ]
        lines += [
            "",
            "The probe runs the decoder only and skips the LM head unless influence is requested;",
            "the second row shows a plain pass that also avoids most of the LM head, for a like-for-like view.",
            f"Command: `python benchmarks/probe_speed.py {' '.join(argv or [])}`".rstrip(),
            "",
        ]
        out.write_text("\n".join(lines), encoding="utf-8")
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
