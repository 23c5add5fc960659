# Two entry points (see README): `make demo` and `make test`. Each builds .venv itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready

.PHONY: demo test lint bench mutation clean airflow checkov system

$(READY): pyproject.toml constraints.txt transform/requirements.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	# dbt apart, without resolving: its pathspec pin clashes with mypy's (transform/requirements.txt)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r transform/requirements.txt
	touch $(READY)

# Apache Airflow 3 in its own environment (its pins conflict with Metrify's): exactly the
# set in orchestration/requirements.txt, nothing resolved or downloaded at run time. The
# DAGs (orchestration/dags) run Metrify's jobs in .venv; tests/integration/orchestration
# runs them with `airflow dags test`.
AIRFLOW_VENV := .airflow-venv
AIRFLOW_READY := $(AIRFLOW_VENV)/.ready
$(AIRFLOW_READY): orchestration/requirements.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r orchestration/requirements.txt
	$(AIRFLOW_VENV)/bin/pip check --disable-pip-version-check
	touch $(AIRFLOW_READY)

airflow: $(AIRFLOW_READY)

# checkov (the scanner of deploy/: Terraform, the rendered Kubernetes manifests, the
# Dockerfile, secrets) in its own environment: its pins clash with Metrify's. Exactly the
# set in deploy/checkov/requirements.txt; tests/unit/deploy/test_checkov.py runs it.
CHECKOV_VENV := .checkov-venv
CHECKOV_READY := $(CHECKOV_VENV)/.ready
$(CHECKOV_READY): deploy/checkov/requirements.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r deploy/checkov/requirements.txt
	$(CHECKOV_VENV)/bin/pip check --disable-pip-version-check
	touch $(CHECKOV_READY)

checkov: $(CHECKOV_READY)

demo: $(READY)
	$(BIN)/metrify demo

# Debian packages and local services some tests need (Chromium, promtool, nginx, Redis,
# ...): installed or started when missing (.ci/system says what it does)
system:
	sh .ci/system

# two pytest workers (pytest-xdist), a module's tests kept on one worker so its shared
# fixtures (a warehouse build, a browser) are made once; each worker has its own
# embedded PostgreSQL and Kafka mock cluster
test: $(READY) $(AIRFLOW_READY) $(CHECKOV_READY) system lint
	$(BIN)/pytest -q -n 2 --dist loadfile

# Static checks: style, types, the one-way layers of pyproject.toml [tool.importlinter],
# and the docs site (strict: a broken link or anchor fails; built under .metrify/site).
lint: $(READY)
	$(BIN)/ruff check src tests bench orchestration
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict

# Every benchmark beside its peers -> bench/results/latest.{json,md}; the peers install
# into bench/.peers-venv. Options through BENCH_ARGS, e.g. BENCH_ARGS="--quick" (smoke
# check, a few minutes) or BENCH_ARGS="--only london,fleet --runs 3 --peer-runs pandas=1".
BENCH_ARGS ?=
bench: $(READY)
	$(BIN)/python bench/suite.py $(BENCH_ARGS)

# Mutation testing of quality, stores, the API's auth code and the stream worker (mutmut;
# outside CI, from minutes to hours) -> bench/results/mutation.md. Bounds, e.g.
# `make mutation PACKAGES=quality,auth MAX_MUTANTS=300` (a fixed-seed sample per package);
# after adding tests, MUTATION_ARGS=--survivors-only tries again only the last survivors.
PACKAGES ?= quality,auth,worker,stores
MAX_MUTANTS ?=
MUTATION_ARGS ?=
MUTATION := $(VENV)/.mutation-ready
$(MUTATION): $(READY)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,mutation]'
	touch $(MUTATION)

mutation: $(MUTATION)
	$(BIN)/python bench/mutation.py --packages $(PACKAGES) $(if $(MAX_MUTANTS),--max-mutants $(MAX_MUTANTS)) $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(CHECKOV_VENV) .metrify
