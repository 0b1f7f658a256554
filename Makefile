# lstmprune — build, test, demo, bench, deps.
#
#   make            build/liblstmprune.a and build/lstmprune
#   make test       build and run every CMocka test (tests/test_*.c), build the benchmarks (not run);
#                   non-zero exit on any failure
#   make asan       the same tests built with -fsanitize=address,undefined (in build-asan/)
#   make demo       the main job on synthetic data (see README.md)
#   make fuzz       every libFuzzer harness (tests/fuzz_*.c) under ASan+UBSan for FUZZ_SECONDS each (in
#                   build-fuzz/); non-zero on any crash, leak, sanitizer report or out-of-memory
#   make bench      build and run the benchmarks in bench/
#   make examples   build the teaching programs examples/*.c into build/examples/ (docs/TUTORIAL.md)
#   make deps       install the Debian packages the build needs (root), or print the command
#
# Sources are discovered by wildcard: a new module is a new .h/.c pair in one of LIB_DIRS, a new test is
# tests/test_<module>.c, a new benchmark is bench/bench_<name>.c, a new example is examples/<name>.c.
# BUILD=dir puts every output elsewhere (used by `make asan` and by developers building side by side).

BUILD    ?= build
CC       ?= cc
PKGS     := openblas lapacke libprotobuf-c zlib ompi-c
TEST_PKGS:= cmocka
DEB_PKGS := libopenblas-dev liblapacke-dev libprotobuf-c-dev protobuf-c-compiler libcmocka-dev \
            pkg-config zlib1g-dev gnuplot-nox python3 python3-torch clang libclang-rt-dev \
            libopenmpi-dev openmpi-bin libonnx-dev python3-onnx nodejs libdnnl-dev

# bf16 products through oneDNN (core/gemm.h); `make DNNL=0` builds without it (fp32 only).
DNNL ?= 1
ifeq ($(DNNL),1)
DNNL_LIBS := -ldnnl -l:libgomp.so.1
else
DNNL_CFLAGS := -DLP_NO_DNNL
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS:= $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS  := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

OPT      ?= -O3 -march=x86-64-v2 -mtune=native
WARN     := -Wall -Wextra -Wpedantic -Wshadow
CFLAGS   += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) -g $(WARN) \
            -I. -I$(BUILD)/gen $(PKG_CFLAGS) $(DNNL_CFLAGS) $(SAN)
LDLIBS   += $(PKG_LIBS) $(DNNL_LIBS) -lpthread -lm
LDFLAGS  += $(SAN)

LIB_DIRS := core check layers model optim eval data prune lm tasks train experiments deploy
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
PROTO    := $(wildcard third_party/*.proto)
# ONNX's own schema, as Debian's libonnx-dev installs it (never copied into the repository).
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
PROTO_C  := $(patsubst third_party/%.proto,$(BUILD)/gen/third_party/%.pb-c.c,$(PROTO)) $(BUILD)/gen/onnx/onnx.pb-c.c
PROTO_H  := $(PROTO_C:.c=.h)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(PROTO_C:.c=.o)
LIB      := $(BUILD)/liblstmprune.a

CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
BIN      := $(BUILD)/lstmprune

TEST_SRC := $(wildcard tests/test_*.c)
TEST_COMMON_SRC := $(wildcard tests/common/*.c)
TEST_COMMON_OBJ := $(TEST_COMMON_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

BENCH_SRC:= $(wildcard bench/bench_*.c)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

EX_SRC   := $(wildcard examples/*.c)
EX_BIN   := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
PC       := $(BUILD)/lstmprune.pc

.PHONY: all test asan fuzz fuzz-run fuzz-seeds demo bench bench-peer deps clean check-deps examples
.SECONDARY:

all: check-deps $(LIB) $(BIN) $(PC)

check-deps:
	@for p in $(PKGS) $(TEST_PKGS); do pkg-config --exists $$p || { \
	  echo "missing dependency '$$p' (pkg-config). Run: make deps" >&2; exit 1; }; done
	@command -v protoc-c >/dev/null || { echo "missing protoc-c. Run: make deps" >&2; exit 1; }
	@test -f $(ONNX_PROTO) || { echo "missing $(ONNX_PROTO) (libonnx-dev). Run: make deps" >&2; exit 1; }
	@test "$(DNNL)" != 1 || test -f /usr/include/dnnl.h || { echo "missing dnnl.h (libdnnl-dev). Run: make deps, or build with make DNNL=0 (fp32 only)" >&2; exit 1; }

# Generated protobuf-c code (never edited by hand).
$(BUILD)/gen/third_party/%.pb-c.c $(BUILD)/gen/third_party/%.pb-c.h: third_party/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen $<

$(BUILD)/gen/onnx/onnx.pb-c.c $(BUILD)/gen/onnx/onnx.pb-c.h: $(ONNX_PROTO)
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=$(abspath $(dir $(ONNX_PROTO))..) --c_out=$(BUILD)/gen $(ONNX_PROTO)

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	$(CC) $(filter-out -Wpedantic -Wshadow,$(CFLAGS)) -c $< -o $@

# Every object waits for the generated headers, so the first build has them.
$(BUILD)/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_COMMON_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_COMMON_OBJ) $(LIB) $(TEST_LIBS) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# The examples link like a student's own program: the library and its packages, nothing from tests/.
$(BUILD)/examples/%: $(BUILD)/examples/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

examples: all $(EX_BIN)

# A pkg-config file for programs built outside the Makefile (absolute paths into this tree):
#   cc -std=c11 prog.c $(pkg-config --cflags --libs build/lstmprune.pc)
$(PC): Makefile
	@mkdir -p $(dir $@)
	@printf '%s\n' 'prefix=$(abspath .)' 'libdir=$(abspath $(BUILD))' '' \
	  'Name: lstmprune' 'Description: structured pruning of LSTMs (the static library of this tree)' \
	  'Version: 0' 'Requires: $(PKGS)' 'Cflags: -I$${prefix}' \
	  'Libs: $${libdir}/liblstmprune.a -lpthread -lm' >$@

# Tests run from the repository root with a fixed thread count so numbers are reproducible.
# LP_SHARED points at ../shared (references and real data); CI lays it beside the clone.
LP_SHARED ?= $(abspath ../shared)
export LP_SHARED
LP_BIN := $(abspath $(BIN))
export LP_BIN
LP_EXAMPLES := $(abspath $(BUILD)/examples)
export LP_EXAMPLES
# The statistics that decide the comparisons with PyTorch (experiments/*.py) are tested too, by Debian's
# python3 (standard library only), and the PyTorch loader of every model kind against predict / lm-eval
# by Debian's python3-torch (TORCH_PY, below).
PYTHON ?= /usr/bin/python3
ANALYSIS_TEST := experiments/test_analysis.py
TORCH_TEST := experiments/test_torch_loader.py
# The benchmarks are built too (not run): an API change that breaks one fails here, not in `make bench`.
test: all $(TEST_BIN) $(EX_BIN) $(BENCH_BIN)
	@fail=0; pass=0; for t in $(TEST_BIN) "$(PYTHON) $(ANALYSIS_TEST)" "$(TORCH_PY) $(TORCH_TEST)"; do \
	  echo "== $$t"; \
	  if OPENBLAS_NUM_THREADS=1 $$t; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; echo "programs: $$pass passed, $$fail failed"; [ $$fail -eq 0 ]

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# Fuzzing (docs/FUZZING.md): one libFuzzer binary per tests/fuzz_<name>.c, the library built by clang
# with -fsanitize=fuzzer-no-link,address,undefined into build-fuzz/ (libclang-rt-dev has libFuzzer), each
# run for FUZZ_SECONDS on its seed corpus tests/fuzz/<name>/; new inputs go to build-fuzz/corpus/<name>/,
# never into the repository. A crash, leak, sanitizer report, allocation above FUZZ_MEM_MB or one input
# running over 60 s fails the target; the input is left in build-fuzz/<name>-{crash,leak,oom,timeout}-<sha1>
# (log: build-fuzz/fuzz_<name>.log). Once fixed, that input is committed to tests/fuzz/<name>/ as a
# regression seed: every later run replays it first. FUZZ_NAMES="ckpt ptb" runs only those;
# `make fuzz-seeds` regenerates the seeds (tests/fuzz/seeds.c).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_MEM_MB  ?= 2048
FUZZ_NAMES ?= $(patsubst tests/fuzz_%.c,%,$(wildcard tests/fuzz_*.c))
FUZZ_BIN := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz_%)

$(BUILD)/tests/fuzz_%: $(BUILD)/tests/fuzz_%.o $(LIB)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB) $(LDLIBS)

fuzz:
	@command -v $(FUZZ_CC) >/dev/null || { echo "missing $(FUZZ_CC). Run: make deps" >&2; exit 1; }
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) OPT="-O1 -fno-omit-frame-pointer" \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" fuzz-run

fuzz-run: check-deps $(FUZZ_BIN)
	@fail=0; for b in $(FUZZ_BIN); do n=$${b##*/fuzz_}; log=$(BUILD)/fuzz_$$n.log; mkdir -p $(BUILD)/corpus/$$n; \
	  echo "== $$b, $(FUZZ_SECONDS) s, seeds tests/fuzz/$$n"; \
	  if OPENBLAS_NUM_THREADS=1 $$b -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=$(FUZZ_MEM_MB) \
	      -malloc_limit_mb=$(FUZZ_MEM_MB) -timeout=60 -artifact_prefix=$(BUILD)/$$n- -print_final_stats=1 \
	      $(BUILD)/corpus/$$n tests/fuzz/$$n >$$log 2>&1; then grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' $$log; \
	  else fail=$$((fail+1)); tail -n 60 $$log; echo "FAILED: $$b (log $$log)"; fi; \
	done; [ $$fail -eq 0 ]

$(BUILD)/tests/fuzz/seeds: $(BUILD)/tests/fuzz/seeds.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

fuzz-seeds: all $(BUILD)/tests/fuzz/seeds
	mkdir -p $(addprefix tests/fuzz/,tfrecord yt8m ckpt config ptb)
	$(BUILD)/tests/fuzz/seeds tests/fuzz $(LP_SHARED)/reference
	cp experiments/*.conf tests/fuzz/config/

demo: all
	./scripts/demo.sh $(BUILD)/lstmprune

# The PyTorch peer is Debian's python3-torch, importable only by the system interpreter (not a pyenv or
# venv python3 that may come first on PATH), hence TORCH_PY.
# Every benchmark and the peer run with the same thread count (BENCH_THREADS, default all cores); their
# `result:` lines go to $(BUILD)/bench/results.txt, which bench/table.py (standard library only) turns into
# one side-by-side table: docs/BENCHMARKS.md.
TORCH_PY ?= $(PYTHON)
BENCH_THREADS ?= $(shell nproc 2>/dev/null || echo 1)
bench: all $(BENCH_BIN)
	@out=$(BUILD)/bench/results.txt; rm -f $$out; \
	export OPENBLAS_NUM_THREADS=$(BENCH_THREADS) OMP_NUM_THREADS=$(BENCH_THREADS); uptime; \
	for b in $(BENCH_BIN); do echo "== $$b"; { $$b || echo "bench-failed: $$b"; } | tee -a $$out; done; \
	if $(TORCH_PY) -c 'import torch' 2>/dev/null; then echo "== bench/torch_ref.py"; \
	  { $(TORCH_PY) -u bench/torch_ref.py --threads $(BENCH_THREADS) || echo "bench-failed: torch_ref.py"; } | tee -a $$out; \
	else echo "(PyTorch peer not installed: make bench-peer)"; fi; \
	echo "== ours vs PyTorch ($$out)"; python3 bench/table.py $$out; uptime; ! grep -q '^bench-failed' $$out

bench-peer:
	@$(TORCH_PY) -c 'import torch' 2>/dev/null || ./scripts/deps.sh python3-torch

# ONNX Runtime for the export tests and benchmarks: the npm package's CPU runtime (its install script,
# skipped, would fetch a GPU build), pinned by scripts/ort/package-lock.json.
ORT_DIR := scripts/ort
deps:
	@./scripts/deps.sh $(DEB_PKGS)
	@command -v npm >/dev/null || ./scripts/deps.sh npm
	@cd $(ORT_DIR) && npm ci --ignore-scripts --no-audit --no-fund >/dev/null && echo "deps: onnxruntime-node in $(ORT_DIR)/node_modules"

clean:
	rm -rf $(BUILD) build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
