# multilabel-edge: `make demo` and `make test` on a fresh machine with Python 3.11 and PyPI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
EDGE_VENV := .venv-edge
MEDIAPIPE_VENV := .venv-mediapipe
BIN := $(VENV)/bin
DEMO_DIR ?= work/demo
BENCH_DIR ?= work/bench
VOC_ROOT ?= ../shared/data/voc2007/VOCdevkit
EDGE_FIXTURES ?= build/edge-fixtures
MLEDGE := $(BIN)/mledge

.PHONY: install install-edge install-mediapipe demo test test-main test-edge test-mediapipe test-arm \
	test-report lint bench-train bench-export bench-edge bench-arm \
	bench-pretrained bench-formats bench-train-speed bench-distill bench-recipes bench-pipeline bench-epoch-parts \
	bench-soak bench-scale bench-scale-data bench-stream demo-cluster docs clean

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[train,dev,plots,pretrained,serve,video]'
	touch $@

# MediaPipe Tasks beside the edge runtime, to check that it reads our bundles' files as we do.
install-mediapipe: $(MEDIAPIPE_VENV)/.installed
$(MEDIAPIPE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(MEDIAPIPE_VENV)
	$(MEDIAPIPE_VENV)/bin/pip install -q --upgrade pip
	$(MEDIAPIPE_VENV)/bin/pip install -q -e '.[edge]' mediapipe==1.2.2 pytest
	touch $@

# The edge environment: numpy, Pillow, LiteRT, the serve and video extras and pytest; no TensorFlow.
install-edge: $(EDGE_VENV)/.installed
$(EDGE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install -q --upgrade pip
	$(EDGE_VENV)/bin/pip install -q -e '.[edge,serve,video]' pytest hypothesis httpx2
	touch $@

# The demo's size; make test-report runs a small one (DEMO_IMAGES=160 ...).
DEMO_IMAGES ?= 800
DEMO_EPOCHS ?= 10
DEMO_CLASS_EPOCHS ?= 3
DEMO_WIDTHS ?= 32,64,512

demo: install
	$(MLEDGE) data synth $(DEMO_DIR)/data --images $(DEMO_IMAGES) --size 64 --seed 0 --force
	$(MLEDGE) data stats $(DEMO_DIR)/data --split trainval
	$(MLEDGE) train $(DEMO_DIR)/data --arch multioutput --out $(DEMO_DIR)/runs/multioutput --img-size 48 \
	  --widths $(DEMO_WIDTHS) --epochs $(DEMO_EPOCHS) --patience 0 --force
	for arch in independent shared; do \
	  $(MLEDGE) train $(DEMO_DIR)/data --arch $$arch --out $(DEMO_DIR)/runs/$$arch --img-size 48 \
	    --widths $(DEMO_WIDTHS) --epochs $(DEMO_CLASS_EPOCHS) --patience 0 --force || exit 1; \
	done
	$(MLEDGE) compare $(DEMO_DIR)/runs/multioutput $(DEMO_DIR)/runs/independent $(DEMO_DIR)/runs/shared
	for arch in multioutput independent; do for q in float32 int8; do \
	  $(MLEDGE) export $(DEMO_DIR)/runs/$$arch --quant $$q --out $(DEMO_DIR)/bundles/$$arch-$$q --force || exit 1; \
	done; done
	$(MLEDGE) export $(DEMO_DIR)/runs/shared --quant int8 --fuse --out $(DEMO_DIR)/bundles/shared-int8-fused --force
	$(MLEDGE) edge bench $(DEMO_DIR)/bundles/multioutput-float32 $(DEMO_DIR)/bundles/multioutput-int8 \
	  $(DEMO_DIR)/bundles/independent-float32 $(DEMO_DIR)/bundles/independent-int8 \
	  $(DEMO_DIR)/bundles/shared-int8-fused --data $(DEMO_DIR)/data --split test --limit 100 --runs 30 \
	  --save $(DEMO_DIR)/bench.json
	$(MLEDGE) report $(DEMO_DIR)/runs/multioutput $(DEMO_DIR)/runs/independent $(DEMO_DIR)/runs/shared \
	  $(foreach b,multioutput-int8 independent-int8 shared-int8-fused,--bundles $(DEMO_DIR)/bundles/$(b)) \
	  --bench $(DEMO_DIR)/bench.json --title "multilabel-edge demo: 20 CNNs or one?" \
	  --out $(DEMO_DIR)/report.html --force

# The demo's report in a real browser (Debian's chromium, headless): no network request, no console
# error, every chart drawn; the screenshot lands in build/report.png. Then the page of mledge edge
# serve on the demo's int8 bundle (build/serve.png).
REPORT_DIR ?= build/report-demo
test-report: install
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/pip install -q playwright
	$(MAKE) demo DEMO_DIR=$(REPORT_DIR) DEMO_IMAGES=160 DEMO_EPOCHS=3 DEMO_CLASS_EPOCHS=1 DEMO_WIDTHS=8,16,32
	$(BIN)/python tests/browser/check_report.py $(REPORT_DIR)/report.html build/report.png
	$(BIN)/python tests/browser/check_serve_page.py $(REPORT_DIR)/bundles/multioutput-int8 build/serve.png

test: test-main test-edge test-mediapipe

# Every environment first: tests/test_system_libraries.py checks what each one's compiled modules load.
# TEST_WORKERS pytest processes, a test file each at a time (a worker holds up to ~2.5 GB).
TEST_WORKERS ?= 2
test-main: install install-edge install-mediapipe
	$(BIN)/pytest tests --ignore=tests/edge --ignore=tests/mediapipe -n $(TEST_WORKERS) --dist loadfile --durations=15

# Bundles are built by the training environment, then only loaded by the edge environment.
test-edge: install install-edge
	$(BIN)/python -m tests.edge.fixtures $(EDGE_FIXTURES)
	MLEDGE_EXPECT_NO_TF=1 MLEDGE_EDGE_FIXTURES=$(EDGE_FIXTURES) $(EDGE_VENV)/bin/python -m pytest tests/edge

# MediaPipe's ImageClassifier on the same bundles' files: our class names and probabilities.
test-mediapipe: install install-mediapipe
	$(BIN)/python -m tests.edge.fixtures $(EDGE_FIXTURES)
	MLEDGE_EDGE_FIXTURES=$(EDGE_FIXTURES) $(MEDIAPIPE_VENV)/bin/python -m pytest tests/mediapipe

# The edge suite on an emulated aarch64 Debian (qemu-user), with LiteRT and with tflite-runtime 2.14;
# ARM outputs are compared with this host's under the same runtime.
test-arm: install
	scripts/arm_sysroot.sh
	$(BIN)/pytest tests/test_system_libraries.py
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
	$(BIN)/ruff check toolkit export edge report mledge tests examples benchmarks scripts

# Benchmarks on real photos (numbers, not tests): make bench-train VOC_ROOT=../shared/data/voc2007/VOCdevkit
# TRAIN_RUNS: recipe names from benchmarks/bench_train.py, comma-separated, or "all" (default: the study's,
# the best and the two ensembles).
bench-train: install
	$(BIN)/python benchmarks/bench_train.py $(VOC_ROOT) $(BENCH_DIR) $(TRAIN_RUNS)

bench-export: install
	$(BIN)/python benchmarks/bench_export.py $(VOC_ROOT) $(BENCH_DIR)

# PRETRAINED_RUNS: run names from benchmarks/bench_pretrained.py or "all" (default: the two measured ones).
bench-pretrained: install
	$(BIN)/python benchmarks/bench_pretrained.py $(VOC_ROOT) $(BENCH_DIR) $(PRETRAINED_RUNS)

bench-edge: install
	$(BIN)/python benchmarks/bench_edge.py $(VOC_ROOT) $(BENCH_DIR)

# Where training time goes: decode, the input pipeline alone, the model alone and end to end per precision.
bench-train-speed: install
	$(BIN)/python benchmarks/bench_train_speed.py $(VOC_ROOT)

# The study's CNN taught by EfficientNet-Lite0; DISTILL_RUNS: student names from benchmarks/bench_distill.py or "all".
bench-distill: install
	$(BIN)/python benchmarks/bench_distill.py $(VOC_ROOT) $(BENCH_DIR) $(DISTILL_RUNS)

# RECIPES: recipe names (mledge recipes) or "all": each from its one command, exported, benched on the device.
# From photos to a checked bundle, stage by stage (PIPELINE_RECIPE, edge-best by default).
PIPELINE_RECIPE ?= edge-best
bench-pipeline: install
	$(BIN)/python benchmarks/bench_pipeline.py $(VOC_ROOT) $(BENCH_DIR) $(PIPELINE_RECIPE)

bench-epoch-parts: install
	$(BIN)/python benchmarks/bench_epoch_parts.py

bench-recipes: install
	$(BIN)/python benchmarks/bench_recipes.py $(VOC_ROOT) $(BENCH_DIR) $(RECIPES)

# The VOC copy as CSV and as COCO (hard links) trains to the same val mAP as from VOC.
bench-formats: install
	$(BIN)/python benchmarks/bench_formats.py $(VOC_ROOT) $(BENCH_DIR)

# The edge loop for long (numbers, not a test): 100,000 photos through mledge edge watch and 20,000
# requests to mledge edge serve at 1, 4 and 16 concurrent, in the edge environment, then a shorter
# run of each under emulated aarch64. SOAK_BUNDLE: the demo's int8 bundle (make demo first).
SOAK_BUNDLE ?= $(DEMO_DIR)/bundles/multioutput-int8
SOAK_PHOTOS ?= 100000
SOAK_REQUESTS ?= 20000
bench-soak: install install-edge
	scripts/arm_sysroot.sh
	$(EDGE_VENV)/bin/python benchmarks/bench_soak.py $(SOAK_BUNDLE) $(VOC_ROOT)/VOC2007/JPEGImages $(BENCH_DIR) \
	  --photos $(SOAK_PHOTOS) --requests $(SOAK_REQUESTS) --arm

# Photos beyond memory (numbers, not a test): mledge data synth at 224 px with each of SCALE_SIZES photos,
# then the edge-fast recipe with --epochs 2 and its export: seconds per 1,000 photos and peak memory.
SCALE_SIZES ?= 2500,10000,40000
# A recipe on the real photos trained by this tree (streamed from disk) and by the last in-memory commit.
STREAM_RECIPE ?= edge-best
bench-stream: install
	$(MLEDGE) weights import efficientnet-lite2
	$(BIN)/python benchmarks/bench_stream.py $(VOC_ROOT) $(BENCH_DIR)/stream --recipe $(STREAM_RECIPE)

# Two worker processes on this machine train one pretrained model under MultiWorkerMirroredStrategy,
# each on its own shard of the photos (docs/training.md, Multi-worker).
demo-cluster: install
	$(MLEDGE) weights import efficientnet-lite0
	$(MLEDGE) data synth $(DEMO_DIR)/cluster-data --images 600 --size 224 --seed 0 --force
	rm -rf $(DEMO_DIR)/runs/two-workers
	$(BIN)/python examples/two_workers.py $(DEMO_DIR)/cluster-data $(DEMO_DIR)/runs/two-workers --epochs 3

bench-scale: install
	$(MLEDGE) weights import efficientnet-lite0
	$(BIN)/python benchmarks/bench_scale.py $(BENCH_DIR) --sizes $(SCALE_SIZES)

# The commands that read a dataset on SCALE_DATA_SIZES rows of CSV (numbers, not a test): data stats, split and
# convert, evaluate and edge predict; seconds per 1,000 rows, peak memory, edge predict's first result.
SCALE_DATA_SIZES ?= 10000,100000
bench-scale-data: install
	$(BIN)/python benchmarks/bench_scale_data.py $(BENCH_DIR)/scale-data --sizes $(SCALE_DATA_SIZES)

# Every benchmark table in README.md and docs/ from the records in benchmarks/results/.
docs: install
	$(BIN)/python scripts/make_docs.py

clean:
	rm -rf $(VENV) $(EDGE_VENV) $(MEDIAPIPE_VENV) build work
