# The two set-up commands of the README. Both create .venv when it is missing and install into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch/torchvision first, pinned: these exact builds install from the local mirror, where any
# other route downloads several GB.
$(STAMP): $(PY) pyproject.toml
	$(PIP) install --quiet torch==2.14.1 torchvision==0.29.1
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m clipproof.demo

# The whole suite (under 10 minutes on 2 cores).
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

# The edit-test loop: everything but what trains models or starts new processes (under 2 minutes).
test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info
