# dbstack.ha — the two commands that matter:
#   make lab    bring up the local lab and provision the whole stack on it
#   make test   run the whole test suite (what CI runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
BIN         := $(CURDIR)/$(VENV)/bin
LAB_NAME    ?= dbstack
LAB_INV     := inventory/lab
COLL_LINK   := .build/collections/ansible_collections/dbstack/ha
TIMED       := TIMINGS=$(CURDIR)/.build/timings.txt lab/timed

# Everything below runs with the venv's tools and this checkout as dbstack.ha.
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PYTHONPATH := $(CURDIR)/.build/collections
export ANSIBLE_FORCE_COLOR ?= 0
export PY_COLORS ?= 0

.PHONY: help deps venv link host image test-deps lab lab-up site lab-down lab-purge \
        test lint sanity unit rules integration build-check molecule lab-e2e build bench-promote bench-pgbouncer bench-backup bench-sentinel bench-switchover bench-failover load-test clean

help:
	@echo "make lab        bring up the lab (podman) and run playbooks/site.yml on it"
	@echo "make lab-down   remove the lab's containers and network (keeps the base image)"
	@echo "make lab-purge  lab-down, and remove the base image too"
	@echo "make test       the whole suite: lint, sanity, unit, rules, integration, molecule, lab end-to-end"
	@echo "make build      build the collection artifact (dbstack-ha-VERSION.tar.gz)"

# --- set-up ---------------------------------------------------------------
$(VENV)/.installed: requirements.txt
	@python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# This checkout, importable and runnable as the dbstack.ha collection.
link:
	@mkdir -p $(dir $(COLL_LINK))
	@ln -sfn ../../../.. $(COLL_LINK)

host: venv link
	ansible-playbook lab/host.yml

image: host
	lab/build-image.sh

test-deps: venv link
	ansible-playbook tests/host.yml

deps: venv link host image test-deps

# --- the lab --------------------------------------------------------------
lab: venv link
	@rm -f .build/timings.txt
	@$(TIMED) "host set-up" $(MAKE) --no-print-directory host
	@$(TIMED) "base image" lab/build-image.sh
	@$(TIMED) "lab up" ansible-playbook -i $(LAB_INV) lab/up.yml -e lab_name=$(LAB_NAME)
	@$(TIMED) "site.yml" ansible-playbook -i $(LAB_INV) playbooks/site.yml -e lab_name=$(LAB_NAME)
	@echo; echo "Timings:"; cat .build/timings.txt

lab-up: venv link
	ansible-playbook -i $(LAB_INV) lab/up.yml -e lab_name=$(LAB_NAME)

site: venv link
	ansible-playbook -i $(LAB_INV) playbooks/site.yml -e lab_name=$(LAB_NAME)

lab-down: venv link
	ansible-playbook -i $(LAB_INV) lab/down.yml -e lab_name=$(LAB_NAME)

lab-purge: lab-down
	podman rmi -f localhost/dbstack-lab-base:bookworm

# --- tests ----------------------------------------------------------------
test: deps
	@rm -f .build/timings.txt
	tests/run_suite.sh

lint:
	ansible-lint --profile production

# ansible-test needs the collection at .../ansible_collections/dbstack/ha, on a
# path without hidden directories, and a pip bootstrap it cannot download here.
SANITY_DIR  ?= /tmp/dbstack-sanity
ATEST_PIP   = $(shell sed -n "s/^ *pip='\([0-9.]*\)',/\1/p" $(VENV)/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py)
GET_PIP     = $(HOME)/.ansible/test/cache/get_pip_$(subst .,_,$(ATEST_PIP)).py
sanity:
	@mkdir -p $(dir $(GET_PIP)) && cp tests/sanity/get_pip_offline.py $(GET_PIP)
	@rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)/ansible_collections/dbstack/ha
	@git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t $(SANITY_DIR)/ansible_collections/dbstack/ha
	cd $(SANITY_DIR)/ansible_collections/dbstack/ha && \
	  ansible-test sanity --color no --python 3.11 --requirements

unit:
	pytest -q --import-mode=importlib -p no:cacheprovider tests/unit

# The monitoring role's alert rules, rendered with its defaults: promtool check
# and promtool unit tests (tests/rules/*.test.yml), amtool on alertmanager.yml.
rules:
	ansible-playbook tests/rules/render.yml
	promtool check rules .build/rules/dbstack.rules.yml
	promtool test rules tests/rules/*.test.yml
	amtool check-config .build/rules/alertmanager-null.yml .build/rules/alertmanager-full.yml

integration:
	pytest -q --import-mode=importlib -p no:cacheprovider tests/integration

molecule:
	@rc=0; for scenario in molecule/*/molecule.yml; do \
	  s=$$(basename $$(dirname $$scenario)); \
	  $(TIMED) "molecule $$s" molecule test -s $$s || rc=1; \
	done; exit $$rc

# One scenario: make molecule-postgres_ha
molecule-%:
	molecule test -s $*

# The lab, end to end, under its own name so a developer's lab is untouched:
# up, converge, converge again with 0 changed, down.
lab-e2e:
	tests/lab_e2e.sh dbstack-ci

build:
	ansible-galaxy collection build --force

# Benchmarks and the load acceptance run against the lab (make lab first).
bench-promote:
	python benchmarks/pg_promote.py --runs $(or $(RUNS),5) --lab-name $(LAB_NAME)

bench-pgbouncer:
	python benchmarks/pgbouncer_vs_direct.py --lab-name $(LAB_NAME)

bench-sentinel:
	python benchmarks/sentinel_failover.py --runs $(or $(RUNS),3) --lab-name $(LAB_NAME)

# pgbench c=50 through PgBouncer for 300 s: switchover.yml, back, then the hand procedure (baseline).
bench-switchover:
	python benchmarks/switchover.py --lab-name $(LAB_NAME)

# Kill the primary's container 5 times, failover.yml at once (then the hand two-task version); the old primary
# comes back refused and rejoins with pg_rewind. ARGS=--load adds pgbench, ARGS=--frozen pauses instead of kills.
bench-failover:
	python benchmarks/failover.py --runs $(or $(RUNS),5) --lab-name $(LAB_NAME) $(ARGS)

load-test:
	python tests/load/pgbench_pgbouncer.py --lab --lab-name $(LAB_NAME)

# Starts its own throw-away PostgreSQL on loopback: an empty database, pgbench
# scale 10 (165 MB) and a >= 1 GB random data set; no lab needed.
# SIZES=empty,165mb for a quick run.
bench-backup:
	python benchmarks/pg_backup.py --runs $(or $(RUNS),5) --ansible $(if $(SIZES),--sizes $(SIZES))

# The artifact builds, leaves tests and lab state out, and installs (offline:
# its dependencies must already be installed, as the ansible bundle provides).
build-check:
	@rm -rf .build/artifact && mkdir -p .build/artifact
	ansible-galaxy collection build --output-path .build/artifact
	@if tar tzf .build/artifact/dbstack-ha-*.tar.gz | grep -E '^(tests|molecule|lab|\.venv|\.build)/'; then \
	  echo "artifact contains test or lab files"; exit 1; fi
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.build/artifact/installed ansible-galaxy collection install --offline --force \
	  -p .build/artifact/installed .build/artifact/dbstack-ha-*.tar.gz
	test -f .build/artifact/installed/ansible_collections/dbstack/ha/plugins/module_utils/postgres.py

clean:
	rm -rf .build dbstack-ha-*.tar.gz
