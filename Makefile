# Two commands a new user needs: `make demo` (train HalfCheetah on its reference reward) and
# `make test`. Each sets up its virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
VENV_SF ?= .venv-sf
# torch first, so pip does not pull a different build for the project. Override for CUDA wheels:
#   make demo TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
TORCH ?= torch==2.13.0
PYTEST_ARGS ?= -m "not slow"
export MUJOCO_GL ?= egl

.PHONY: demo test test-sf test-all bench lint docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(TORCH)
	$(VENV)/bin/pip install -q -e ".[mujoco,metaworld,nethack,embed,ray,web,vlm,test,docs]" "stable-baselines3>=2.7"
	touch $@

# The sample-factory stack: gymnasium 0.29.1, numpy < 2, MuJoCo -v4 envs.
$(VENV_SF)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_SF)
	$(VENV_SF)/bin/pip install -q --upgrade pip
	$(VENV_SF)/bin/pip install -q $(TORCH)
	$(VENV_SF)/bin/pip install -q -e ".[mujoco,sf,nethack,test]" "gymnasium==0.29.1" "numpy<2"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/rewardgen demo

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-sf: $(VENV_SF)/.installed
	$(VENV_SF)/bin/python -m pytest $(PYTEST_ARGS)

test-all: test test-sf

bench: $(VENV)/.installed
	$(VENV)/bin/python scripts/bench_wrapper.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/ruff format --no-cache --check .

# The documentation site (docs/README.md): warnings are errors; offline.
docs: $(VENV)/.installed
	$(VENV)/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) $(VENV_SF) .pytest_cache docs/_build
