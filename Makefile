# fediscale.lemmy: the two front-door commands are `make lab` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
ANSIBLE_PLAYBOOK := $(VENV)/bin/ansible-playbook
LAB_INVENTORY := inventories/lab

.PHONY: help setup prereqs images lab lab-up lab-down lint sanity unit contract molecule test clean

help:
	@echo "make lab       set up, build the lab images, bring the lab up and deploy site.yml on it"
	@echo "make test      the whole test suite (lint, sanity, units, contract tests, molecule)"
	@echo "make setup     create .venv (python3.12) and link the collection under .collections/"
	@echo "make lab-up | lab-down | images | lint | sanity | unit | contract | molecule"

setup:
	@scripts/setup.sh

prereqs:
	@scripts/host_prereqs.sh

images: setup prereqs
	@tests/lab/build_images.sh
	@PYTHON=$(VENV)/bin/python tests/stand_ins/build.sh

lab-up: images
	$(ANSIBLE_PLAYBOOK) -i $(LAB_INVENTORY) playbooks/lab_up.yml

lab-down: setup prereqs
	$(ANSIBLE_PLAYBOOK) -i $(LAB_INVENTORY) playbooks/lab_down.yml

lab: lab-up
	$(ANSIBLE_PLAYBOOK) -i $(LAB_INVENTORY) site.yml
	@scripts/lab_banner.sh

lint: setup
	@scripts/test.sh lint

sanity: setup
	@scripts/test.sh sanity

unit: setup
	@scripts/test.sh unit

contract: images
	@scripts/test.sh contract

molecule: images
	@scripts/test.sh molecule

test: setup prereqs
	@scripts/test.sh all

clean:
	rm -rf .collections tests/output .pytest_cache .hypothesis
