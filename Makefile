# Same targets as the seed's docker-compose Makefile, over Ansible.
#   make up                      local systemd "VM" container with the whole stack
#   make bootstrap ENV=<env>     generate the vault of inventories/<env> (once)
#   make deploy ENV=<env>        ansible-playbook -i inventories/<env> playbooks/site.yml
#   make lock ENV=<env>          lock the inventory's extra providers/packages (playbooks/lock.yml)
#   make dags ENV=<env>          ship only dags/ and plugins/ (playbooks/dags.yml)
#   make rollback ENV=<env>      back to the previous release (CONFIRM=yes to restore the DB)
#   make backup ENV=<env>        pg_dump of the metadata database on its host (FETCH=yes: a copy here)
#   make restore ENV=<env> BACKUP=<name> CONFIRM=yes   replace the database with that dump
#   make retire ENV=<env> HOST=<host>   drain and stop a host before it leaves the inventory
#   make rotate ENV=<env> SECRET=<fernet|redis|api|admin|jwt|postgresql|all>   new secrets, rolled out safely
#   make test                    lint, sanity, unit, every molecule scenario (what CI runs)
# `make help` lists every target.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ENV ?= local
INVENTORY := inventories/$(ENV)
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
SCENARIO ?=
SCENARIOS := $(filter-out shared,$(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
COMPONENT ?= scheduler
ARGS ?=
export ANSIBLE_FORCE_COLOR ?= true
export PATH := $(CURDIR)/$(BIN):$(PATH)
PLAYBOOK := $(BIN)/ansible-playbook -i $(INVENTORY) --vault-password-file $(INVENTORY)/.vault_pass

.PHONY: help build venv docker image testbed bootstrap up deploy lock dags rollback backup restore retire rotate check status down start reset logs changelog lint sanity unit test bench clean

help: ## list the targets
	@grep -E '^[a-z -]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/ansible-playbook: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# The roles call the collection's own plugins by their full name
# (airflow_ops.airflow_vm.managed_files), as they do once installed. From this
# checkout, ansible.cfg's collections_path finds the collection through this
# link to the checkout itself (and the folder of the declared collections
# below holds one too).
SELF := .cache/collections/ansible_collections/airflow_ops/airflow_vm
$(SELF):
	mkdir -p $(@D) && ln -sfn ../../../.. $@

build venv: $(BIN)/ansible-playbook | $(SELF) ## controller venv from requirements.txt (the "image build")

# What users of the collection may have, and what it is checked with besides
# the pinned venv: only galaxy.yml's dependencies (as in an execution
# environment; copied from the pinned `ansible` package), and the lowest
# ansible-core that meta/runtime.yml's requires_ansible claims, with the
# newest ansible-lint that still accepts it (26.10 excludes ansible-core 2.17),
# and requests for the test bed's community.docker modules (molecule/cluster).
# The test bed's own collections (the docker connection, the profile_tasks
# callback) are linked into a folder of their own, beside the declared ones.
DECLARED := .cache/collections-declared
TESTBED := .cache/collections-testbed
LOWEST_VENV := .venv-lowest
LOWEST_CORE = $(shell sed -n 's/^requires_ansible: ">=\([0-9.]*\)"$$/\1/p' meta/runtime.yml)
LOWEST_LINT := 26.6.0
BUNDLE = $$($(BIN)/python -c 'import ansible_collections; print(list(ansible_collections.__path__)[0])')
$(DECLARED): galaxy.yml $(BIN)/ansible-playbook
	rm -rf $@ && mkdir -p $@/ansible_collections
	bundle=$(BUNDLE); \
	for dep in $$($(BIN)/python -c 'import yaml; print(*yaml.safe_load(open("galaxy.yml"))["dependencies"])'); do \
	  mkdir -p $@/ansible_collections/$${dep%%.*} && cp -r $$bundle/$${dep%%.*}/$${dep#*.} $@/ansible_collections/$${dep%%.*}/; \
	done
	mkdir -p $@/ansible_collections/airflow_ops && ln -s ../../../.. $@/ansible_collections/airflow_ops/airflow_vm
$(TESTBED): $(BIN)/ansible-playbook
	rm -rf $@ && mkdir -p $@/ansible_collections/community $@/ansible_collections/ansible
	ln -s $(BUNDLE)/community/docker $@/ansible_collections/community/docker
	ln -s $(BUNDLE)/ansible/posix $@/ansible_collections/ansible/posix
$(LOWEST_VENV)/bin/ansible-lint: meta/runtime.yml requirements.txt
	test -n "$(LOWEST_CORE)" || { echo 'meta/runtime.yml: requires_ansible must read ">=X.Y.Z"'; exit 1; }
	rm -rf $(LOWEST_VENV) && $(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/pip install --quiet "ansible-core==$(LOWEST_CORE)" "ansible-lint==$(LOWEST_LINT)" \
	  "$$(grep -i '^requests==' requirements.txt)"

docker: ## install and start a Docker engine if there is none (test bed only)
	molecule/shared/ensure-docker.sh

# the Debian releases the scenarios' VMs run (and bookworm: make up, bench)
VM_SUITES = $(sort bookworm $(shell sed -n 's/^ *image: airflow-vm:\(.*\)$$/\1/p' molecule/*/molecule.yml))
image: docker ## build the systemd "VM" base images with debootstrap if missing
	molecule/shared/build-image.sh $(VM_SUITES)

bootstrap: build ## generate inventories/$(ENV) secrets into an encrypted vault, once
	$(BIN)/ansible-playbook -i localhost, playbooks/bootstrap.yml -e bootstrap_dir=$(CURDIR)/$(INVENTORY)

up: image bootstrap ## local: start the VM container, deploy everything, wait until healthy
	$(BIN)/ansible-playbook -i localhost, playbooks/local_vm.yml
	$(PLAYBOOK) playbooks/site.yml $(ARGS)
	@echo
	@echo "Airflow UI:     http://127.0.0.1:8080  (user: admin)"
	@echo "Admin password: $(BIN)/ansible-vault view $(INVENTORY)/group_vars/all/vault.yml --vault-password-file $(INVENTORY)/.vault_pass | grep admin_password"

deploy: build ## deploy inventories/$(ENV) (real VMs): playbooks/site.yml
	$(PLAYBOOK) playbooks/site.yml $(ARGS)

lock: build ## lock Airflow + airflow_extra_requirements of inventories/$(ENV) into its locks/ (commit them)
	$(PLAYBOOK) playbooks/lock.yml $(ARGS)

dags: build ## ship only the dags/ and plugins/ folders to inventories/$(ENV) (seconds)
	$(PLAYBOOK) playbooks/dags.yml $(ARGS)

rollback: build ## back to the previous release on every host (CONFIRM=yes when the DB must be restored)
	$(PLAYBOOK) playbooks/rollback.yml -e rollback_confirm=$(CONFIRM) $(ARGS)

backup: build ## pg_dump of the metadata database, kept on its host (FETCH=yes: also copied to inventories/$(ENV)/backups/)
	$(PLAYBOOK) playbooks/backup.yml -e backup_fetch=$(or $(FETCH),no) $(ARGS)

retire: build ## drain a worker and stop every component of HOST=<host> before it leaves the inventory
	$(PLAYBOOK) playbooks/retire.yml -e retire_host=$(HOST) $(ARGS)

rotate: build ## new secrets into the vault, rolled out with no failed task: SECRET=<fernet|redis|api|admin|jwt|postgresql|all>
	$(PLAYBOOK) playbooks/rotate.yml -e rotate_secret=$(SECRET) -e rotate_vault_password_file=$(CURDIR)/$(INVENTORY)/.vault_pass $(ARGS)

restore: build ## replace the metadata database with a dump: BACKUP=<file name, or a dump here> CONFIRM=yes (Airflow stops meanwhile)
	$(PLAYBOOK) playbooks/restore.yml -e restore_backup=$(BACKUP) -e restore_confirm=$(CONFIRM) $(ARGS)

check: build ## dry run with diffs against inventories/$(ENV)
	$(PLAYBOOK) playbooks/site.yml --check --diff $(ARGS)

status: build ## what runs where and whether it is healthy; fails naming each problem (changes nothing)
	$(PLAYBOOK) playbooks/status.yml $(if $(REPORT),-e status_report=$(abspath $(REPORT))) $(ARGS)

down: build ## stop Airflow and the data stores of inventories/$(ENV) and keep them down (data kept, monitoring runs)
	$(PLAYBOOK) playbooks/down.yml $(ARGS)

start: build ## start the stopped services again (health-gated: same as deploy)
	$(PLAYBOOK) playbooks/site.yml $(ARGS)

reset: build ## stop and WIPE the metadata DB, the broker's data and the logs of inventories/$(ENV) (CONFIRM=yes; dumps kept)
	$(PLAYBOOK) playbooks/reset.yml -e reset_confirm=$(CONFIRM) $(ARGS)

logs: build ## follow a component's journal: make logs COMPONENT=scheduler [ENV=local]
	scripts/logs.sh $(INVENTORY) $(COMPONENT)

changelog: build ## CHANGELOG.md from changelogs/ (RELEASE=yes: the fragments become galaxy.yml's version)
	$(BIN)/antsibull-changelog $(if $(filter yes,$(RELEASE)),release,generate)

lint: build $(DECLARED) $(LOWEST_VENV)/bin/ansible-lint ## yamllint, ansible-lint (production profile; also with only the declared collections, on the pinned and the lowest ansible-core), syntax with the lowest
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	for venv in $(BIN) $(LOWEST_VENV)/bin; do \
	  ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/$(DECLARED) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
	    $$venv/ansible-lint --offline --exclude playbooks/local_vm.yml -- roles playbooks || exit 1; \
	done
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/$(DECLARED) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false ANSIBLE_HOST_PATTERN_MISMATCH=ignore \
	  $(LOWEST_VENV)/bin/ansible-playbook -i localhost, --syntax-check $(filter-out playbooks/local_vm.yml,$(wildcard playbooks/*.yml)) >/dev/null
	$(BIN)/python scripts/role-docs.py --check
	$(BIN)/antsibull-changelog lint
	$(BIN)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
	mkdir -p .cache && $(BIN)/antsibull-changelog generate --output .cache/CHANGELOG.md --output-format md
	diff -u .cache/CHANGELOG.md CHANGELOG.md || { echo "CHANGELOG.md is not what changelogs/changelog.yaml says: run make changelog"; exit 1; }

# The collection's Ansible plugins (tests/unit: each run by ansible-playbook on
# this machine, connection local) with the pinned and the lowest ansible-core.
unit: build $(LOWEST_VENV)/bin/ansible-lint ## the collection's Ansible plugins, tested with the pinned and the lowest ansible-core (no hosts needed)
	for venv in $(BIN) $(LOWEST_VENV)/bin; do \
	  ANSIBLE_PLAYBOOK=$(CURDIR)/$$venv/ansible-playbook $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit || exit 1; \
	done

# ansible-test sanity runs on the collection as it is installed (built,
# then installed outside this git tree). Skipped: the tests that run in a
# venv of their own (pep8, pylint, validate-modules, yamllint, import,
# runtime-metadata, ansible-doc): ansible-test bootstraps pip into it with a script from
# a download host that the test machines cannot reach. yamllint runs in lint.
SANITY_DIR := $(or $(TMPDIR),/tmp)/airflow-vm-sanity
SANITY_SKIP := pep8 pylint validate-modules yamllint import runtime-metadata ansible-doc
sanity: build ## ansible-test sanity (the tests that run offline) and antsibull-docs lint on the built and installed collection
	rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	$(BIN)/ansible-galaxy collection build --output-path $(SANITY_DIR) .
	$(BIN)/ansible-galaxy collection install --no-deps --force -p $(SANITY_DIR) $(SANITY_DIR)/airflow_ops-airflow_vm-*.tar.gz
	cd $(SANITY_DIR)/ansible_collections/airflow_ops/airflow_vm && $(CURDIR)/$(BIN)/ansible-test sanity --local \
	  --python $$($(CURDIR)/$(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])') $(addprefix --skip-test ,$(SANITY_SKIP))
	# the role docs (argument_specs) as docs.ansible.com's tooling reads them
	cd $(SANITY_DIR)/ansible_collections/airflow_ops/airflow_vm && ANSIBLE_COLLECTIONS_PATH=$(SANITY_DIR) \
	  $(CURDIR)/$(BIN)/antsibull-docs lint-collection-docs --plugin-docs .

# The test bed (Docker engine, base images, browser: apt and downloads) is
# set up in the background while lint, sanity and unit use the CPU (two of
# them at a time: each is mostly one process; their outputs are not mixed);
# its output follows theirs. Both say how long they took.
testbed: image $(TESTBED) ## Docker engine, the VM base images and the headless browser the scenarios need
	molecule/shared/ensure-browser.sh

test: build ## lint + sanity + unit, then every molecule scenario (create, converge, idempotence, verify, destroy)
	mkdir -p .cache
	start=$$(date +%s); took() { echo "$$(( $$(date +%s) - start )) s"; }; \
	  { rc=0; $(MAKE) --no-print-directory testbed || rc=$$?; echo "== ready after $$(took)"; exit $$rc; } \
	    > .cache/testbed.log 2>&1 & bed=$$!; \
	  checks=0; $(MAKE) --no-print-directory -j2 --output-sync=target unit lint sanity || checks=$$?; \
	  echo "== lint, sanity and unit (two at a time): rc $$checks after $$(took)"; \
	  bed_rc=0; wait $$bed || bed_rc=$$?; \
	  echo "== test bed (make testbed, .cache/testbed.log): rc $$bed_rc"; cat .cache/testbed.log; \
	  [ $$checks -eq 0 ] && [ $$bed_rc -eq 0 ]
	$(BIN)/ansible-playbook -i localhost, playbooks/bootstrap.yml -e bootstrap_dir=$(CURDIR)/molecule/shared
	ANSIBLE_VAULT_PASSWORD_FILE=$(CURDIR)/molecule/shared/.vault_pass \
	  molecule/shared/run-scenarios.sh $(or $(SCENARIO),$(SCENARIOS))

BENCH_ARGS ?=
bench: build image ## deploy benchmark on bench-* containers (BENCH_ARGS="--runs 1 --only rerun"), bench/results.json
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

clean: ## remove the local VM container (its data goes with it)
	-$(BIN)/ansible-playbook -i localhost, playbooks/local_vm.yml -e local_vm_state=absent
