#!/usr/bin/env bash
# Batch selection from the command line: embed a pool once, then select demos for a file of queries.
#
# Run:  bash examples/batch_cli.sh           (MiniLM embeddings, offline; cached under the user cache dir)
#       bash examples/batch_cli.sh --smoke   (hashing embedder, seconds)
# Uses $PYTHON (default: the repository's .venv, as `make install` builds it, else python3), $PROMPTKD
# (default: "$PYTHON -m promptkd") and writes into $OUT (default: a temp folder).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV_PY="$HERE/../.venv/bin/python"
if [[ -x "$VENV_PY" ]]; then DEFAULT_PYTHON="$VENV_PY"; else DEFAULT_PYTHON=python3; fi
PYTHON=${PYTHON:-$DEFAULT_PYTHON}
PROMPTKD=${PROMPTKD:-"$PYTHON -m promptkd"}
OUT=${OUT:-"${TMPDIR:-/tmp}/promptkd-examples/batch"}
EMBEDDER=minilm
if [[ "${1:-}" == "--smoke" ]]; then EMBEDDER=hashing; fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"

# 1. embed the demos into a saved pool (a second run reads every vector from the embedding cache)
$PROMPTKD pool build "$HERE/data/demos.jsonl" "$OUT/pool" --embedder "$EMBEDDER" --no-progress
$PROMPTKD pool info "$OUT/pool"

# 2. a file of queries, one per line
cat > "$OUT/queries.txt" <<'QUERIES'
Which river flows through Cairo?
Who painted the Mona Lisa?
How many players are on a football team?
What does NASA stand for?
QUERIES

# 3. one selection per query -> JSONL (MMD herding over the question demos only)
$PROMPTKD select --pool "$OUT/pool" --queries-file "$OUT/queries.txt" --out "$OUT/selections.jsonl" \
  --k 4 --where task=question_type

# 4. the same with a baseline (TopK / KATE), for comparison; add --label-balance cover, --max-tokens N,
#    --swaps N or --k auto to step 3 for the constrained variants
$PROMPTKD select --pool "$OUT/pool" --queries-file "$OUT/queries.txt" --out "$OUT/topk.jsonl" \
  --selector topk --k 4 --where task=question_type

"$PYTHON" - "$OUT/selections.jsonl" "$OUT/topk.jsonl" <<'PY'
import json, sys
mmd, topk = ([json.loads(line) for line in open(p)] for p in sys.argv[1:3])
print(f"{'query':<45} {'MMD2 promptkd':>13} {'MMD2 topk':>10}  labels (promptkd)")
for a, b in zip(mmd, topk):
    print(f"{a['query'][:45]:<45} {a['mmd2']:13.4f} {b['mmd2']:10.4f}  {[d['output'] for d in a['demos']]}")
PY
echo "selections written to $OUT/selections.jsonl"
