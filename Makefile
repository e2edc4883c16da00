# unik — top-level build.  `make run` and `make test` work on a fresh Debian
# machine: they install what is missing (apt-get), make .venv, build kernels.
SHELL := /bin/bash
ROOT := $(abspath .)
APP ?= http
# make run: the host port forwarded to the http app's port 80.
HTTP_PORT ?= 8080
APPS := $(notdir $(wildcard kernel/apps/*))
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
UNIK := $(VENV)/bin/unik
PYTEST_ARGS ?=
# Debian packages and the command that proves each one is there.
DEPS := qemu-system-x86:qemu-system-x86_64 gcc:gcc binutils:ld make:make \
        xz-utils:xz curl:curl gdb:gdb tshark:tshark tcpdump:tcpdump nodejs:node python3-venv:python3 \
        wrk:wrk
# libpcap0.8 (the library unik tcpdump compiles filters with) is checked with ldconfig.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all run test kernel kernels bench deps venv clean docs

all: kernel

# Install the Debian packages that are missing (only those).
deps:
	@missing=""; for d in $(DEPS); do pkg=$${d%%:*}; cmd=$${d##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	python3 -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	/sbin/ldconfig -p 2>/dev/null | grep -q "libpcap\.so\.0\.8" || missing="$$missing libpcap0.8"; \
	if [ -n "$$missing" ]; then echo "deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# The virtualenv with the unik package (editable) and its test extra.
venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml | deps
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# The kernel for APP (default demo) and every app's kernel.
kernel: deps
	$(MAKE) -C kernel APP=$(APP) O=$(ROOT)/build/$(APP)
kernels: deps
	@for a in $(APPS); do $(MAKE) -s -C kernel APP=$$a O=$(ROOT)/build/$$a || exit 1; done

# Boot APP (http by default, with host port HTTP_PORT forwarded to its
# port 80; APP=demo for the demo) or reuse it, print the http app's URL,
# open the debug shell on it.  RUN_ARGS: more `unik boot` options.
RUN_ARGS ?= $(if $(filter http,$(APP)),--port $(HTTP_PORT):80)
run: venv kernel
	@$(UNIK) ls --json 2>/dev/null | $(PY) -c 'import json,sys; sys.exit(0 if any(i["name"]=="$(APP)" and i["state"]=="running" for i in json.load(sys.stdin)) else 1)' \
	  || $(UNIK) boot --app $(APP) --name $(APP) --detach $(RUN_ARGS)
	@$(if $(filter http,$(APP)),echo "http app: http://127.0.0.1:$(HTTP_PORT)/  (routes: /  /kv/<key>  /stats)")
	$(UNIK) shell $(APP)
	@echo "instance '$(APP)' is still running: 'unik stop $(APP)' stops it"

# The whole suite: units, host-compiled kernel C, runtime tests under QEMU.
test: venv kernels
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

bench: venv kernels
	$(UNIK) bench

docs: venv
	$(PY) -m introspect.protodoc docs/protocol.md
	$(PY) -m probes.isadoc docs/bytecode.md
	$(MAKE) -s -C kernel APP=demo O=$(CURDIR)/build/demo PYTHON=$(PY)
	$(PY) -m introspect.probetable --update-doc build/demo/kernel.elf docs/probes.md

clean:
	rm -rf build
