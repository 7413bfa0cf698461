# multilabel-edge: `make demo` and `make test` on a fresh machine with Python 3.11 and PyPI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
EDGE_VENV := .venv-edge
BIN := $(VENV)/bin
DEMO_DIR ?= work/demo
BENCH_DIR ?= work/bench
VOC_ROOT ?= ../shared/data/voc2007/VOCdevkit
EDGE_FIXTURES ?= build/edge-fixtures
MLEDGE := $(BIN)/mledge

.PHONY: install install-edge demo test test-main test-edge test-arm lint bench-train bench-export bench-edge bench-arm \
	bench-pretrained bench-formats clean

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[train,dev,plots,pretrained]'
	touch $@

# The edge environment: numpy, Pillow, LiteRT and pytest; no TensorFlow.
install-edge: $(EDGE_VENV)/.installed
$(EDGE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install -q --upgrade pip
	$(EDGE_VENV)/bin/pip install -q -e '.[edge]' pytest hypothesis
	touch $@

demo: install
	$(MLEDGE) data synth $(DEMO_DIR)/data --images 800 --size 64 --seed 0 --force
	$(MLEDGE) data stats $(DEMO_DIR)/data --split trainval
	$(MLEDGE) train $(DEMO_DIR)/data --arch multioutput --out $(DEMO_DIR)/runs/multioutput --img-size 48 \
	  --epochs 10 --patience 0 --force
	for arch in independent shared; do \
	  $(MLEDGE) train $(DEMO_DIR)/data --arch $$arch --out $(DEMO_DIR)/runs/$$arch --img-size 48 \
	    --epochs 3 --patience 0 --force || exit 1; \
	done
	$(MLEDGE) compare $(DEMO_DIR)/runs/multioutput $(DEMO_DIR)/runs/independent $(DEMO_DIR)/runs/shared
	for arch in multioutput independent; do for q in float32 int8; do \
	  $(MLEDGE) export $(DEMO_DIR)/runs/$$arch --quant $$q --out $(DEMO_DIR)/bundles/$$arch-$$q --force || exit 1; \
	done; done
	$(MLEDGE) export $(DEMO_DIR)/runs/shared --quant int8 --fuse --out $(DEMO_DIR)/bundles/shared-int8-fused --force
	$(MLEDGE) edge bench $(DEMO_DIR)/bundles/multioutput-float32 $(DEMO_DIR)/bundles/multioutput-int8 \
	  $(DEMO_DIR)/bundles/independent-float32 $(DEMO_DIR)/bundles/independent-int8 \
	  $(DEMO_DIR)/bundles/shared-int8-fused --voc $(DEMO_DIR)/data --split test --limit 100 --runs 30

test: test-main test-edge

test-main: install
	$(BIN)/pytest tests --ignore=tests/edge

# Bundles are built by the training environment, then only loaded by the edge environment.
test-edge: install install-edge
	$(BIN)/python -m tests.edge.fixtures $(EDGE_FIXTURES)
	MLEDGE_EXPECT_NO_TF=1 MLEDGE_EDGE_FIXTURES=$(EDGE_FIXTURES) $(EDGE_VENV)/bin/python -m pytest tests/edge

# The edge suite on an emulated aarch64 Debian (qemu-user), with LiteRT and with tflite-runtime 2.14;
# ARM outputs are compared with this host's under the same runtime.
test-arm: install
	scripts/arm_sysroot.sh
	$(BIN)/python -m tests.edge.fixtures $(EDGE_FIXTURES)
	MLEDGE_INTERPRETER=tflite_runtime PYTHONPATH=.arm/site-tflite-x86:. $(BIN)/python -m tests.edge.host_reference $(EDGE_FIXTURES)
	MLEDGE_EDGE_FIXTURES=$(EDGE_FIXTURES) scripts/arm_run.sh litert -m pytest tests/edge -p no:cacheprovider
	MLEDGE_EDGE_FIXTURES=$(EDGE_FIXTURES) scripts/arm_run.sh tflite -m pytest tests/edge -p no:cacheprovider

# Emulated edge bench of the demo's bundles (run `make demo` first, or pass ARM_BUNDLES and ARM_VOC).
ARM_VOC ?= $(DEMO_DIR)/data
ARM_BUNDLES ?= $(addprefix $(DEMO_DIR)/bundles/,multioutput-float32 multioutput-int8 independent-float32 independent-int8)
bench-arm: install
	scripts/arm_sysroot.sh
	$(BIN)/python benchmarks/bench_arm.py $(ARM_VOC) test $(ARM_BUNDLES)

lint: install
	$(BIN)/ruff check toolkit export edge mledge tests examples benchmarks

# Benchmarks on real photos (numbers, not tests): make bench-train VOC_ROOT=../shared/data/voc2007/VOCdevkit
# TRAIN_RUNS: recipe names from benchmarks/bench_train.py, comma-separated, or "all" (default: the study's,
# the best and the two ensembles).
bench-train: install
	$(BIN)/python benchmarks/bench_train.py $(VOC_ROOT) $(BENCH_DIR) $(TRAIN_RUNS)

bench-export: install
	$(BIN)/python benchmarks/bench_export.py $(VOC_ROOT) $(BENCH_DIR)

bench-pretrained: install
	$(BIN)/python benchmarks/bench_pretrained.py $(VOC_ROOT) $(BENCH_DIR)

bench-edge: install
	$(BIN)/python benchmarks/bench_edge.py $(VOC_ROOT) $(BENCH_DIR)

# The VOC copy as CSV and as COCO (hard links) trains to the same val mAP as from VOC.
bench-formats: install
	$(BIN)/python benchmarks/bench_formats.py $(VOC_ROOT) $(BENCH_DIR)

clean:
	rm -rf $(VENV) $(EDGE_VENV) build work
