# Makefile — builds keeld/keelctl, generates protobuf-c code, runs every test.
# `make run` and `make test` first install missing Debian packages (tools/deps.sh).

BUILD   ?= build
CC      ?= cc
PKGS    := libevent libevent_openssl libprotobuf-c openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) check 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
DEFS    := -D_GNU_SOURCE
CFLAGS  ?= -O2 -g
ALL_CFLAGS := $(WARN) $(DEFS) $(CFLAGS) -Iinclude -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_CFLAGS := $(WARN) $(DEFS) -O1 -g $(SAN) -Iinclude -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP
LDLIBS  := $(PKG_LIBS) -lm -lpthread

# Library modules, bottom layer last (link order). Each src/<mod>/ becomes
# $(BUILD)/lib/libkl_<mod>.a; LIBS_<mod> lists what a test of <mod> links.
MODULES := node client controller broker quorum net storage wire metadata replica raft common
LIBS_common  := common
LIBS_raft    := raft common
LIBS_metadata:= metadata common
LIBS_replica := replica common
LIBS_wire    := wire metadata raft common
LIBS_storage := storage wire metadata replica raft common
LIBS_net     := net wire metadata raft common
LIBS_node    := node raft common
LIBS_client  := client net wire metadata raft common
LIBS_broker  := broker quorum node net storage wire metadata replica raft common
LIBS_controller := controller quorum node net storage wire metadata raft common
LIBS_all     := $(MODULES)

PROTOS   := $(wildcard proto/*.proto)
GEN_C    := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H    := $(GEN_C:.c=.h)

src_of = $(wildcard src/$(1)/*.c)
obj_of = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(call src_of,$(1))) $(if $(filter wire,$(1)),$(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C)))
sobj_of = $(patsubst src/%.c,$(BUILD)/san/%.o,$(call src_of,$(1))) $(if $(filter wire,$(1)),$(patsubst $(BUILD)/gen/%.c,$(BUILD)/san/gen/%.o,$(GEN_C)))
lib_of  = $(foreach m,$(1),$(if $(call src_of,$(m)),$(BUILD)/lib/libkl_$(m).a))
slib_of = $(foreach m,$(1),$(if $(call src_of,$(m)),$(BUILD)/lib/libkl_$(m)-san.a))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
SIM_SRCS  := $(wildcard tests/sim/*.c)
SIM_BIN   := $(BUILD)/tests/sim
SIM_SEEDS ?= 2000
DP_SEEDS  ?= 1000

.PHONY: all deps run test unit sim integration chaos chaos-checker chaos-test check-pure clean help
.DELETE_ON_ERROR:
.SECONDARY:

all: $(BUILD)/bin/keeld $(BUILD)/bin/keelctl $(BUILD)/bin/keel-chaos-worker check-pure

help:
	@echo "make            build build/bin/keeld and build/bin/keelctl"
	@echo "make run        install packages, build, start a local cluster (tools/cluster up)"
	@echo "make test       install packages, build, run unit, simulation and integration tests"
	@echo "make unit|sim|integration|chaos-test   one test layer; SIM_SEEDS=N sets the seed count"
	@echo "make chaos      a 5-minute chaos run with every fault (CHAOS_SECS, CHAOS_SEED)"

deps:
	@bash tools/deps.sh

# ---- generated protobuf-c code ------------------------------------------------
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

# Every object may include generated headers, so they exist first.
$(BUILD)/obj/%.o: src/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(BUILD)/san/%.o: src/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -c $< -o $@
$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(BUILD)/san/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -c $< -o $@

define MODULE_RULES
$(BUILD)/lib/libkl_$(1).a: $(call obj_of,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/lib/libkl_$(1)-san.a: $(call sobj_of,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call MODULE_RULES,$(m))))

# ---- programs -----------------------------------------------------------------
$(BUILD)/bin/keeld: $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/server/*.c)) $(call lib_of,$(LIBS_all))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/bin/keelctl: $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/cli/*.c)) $(call lib_of,$(LIBS_all))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
# The chaos harness's workload process (tools/chaos run), on the client library.
$(BUILD)/obj/tools/%.o: tools/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(BUILD)/bin/keel-chaos-worker: $(BUILD)/obj/tools/chaos_worker.o $(call lib_of,$(LIBS_client))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# keeld-bugs: keeld whose node and broker modules are compiled with
# KL_INJECT_BUGS, which adds the config key debug.inject.bug (issue 4's teeth:
# a chaos run against it must come out invalid). Only tools/chaos run
# --inject-bug uses it; build/bin/keeld never contains the switch.
BUG_MODULES := node broker
$(BUILD)/bugs/%.o: src/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DKL_INJECT_BUGS -c $< -o $@
$(BUILD)/bin/keeld-bugs: $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/server/*.c)) \
		$(foreach m,$(MODULES),$(if $(filter $(m),$(BUG_MODULES)),$(patsubst src/%.c,$(BUILD)/bugs/%.o,$(call src_of,$(m))),$(call lib_of,$(m))))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# ---- tests (built with ASan + UBSan) -------------------------------------------
# tests/unit/test_<module>[_<topic>].c links the sanitizer libs of LIBS_<module>.
test_mod = $(word 2,$(subst _, ,$(notdir $(1))))
$(BUILD)/san/tests/%.o: tests/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -Itests -c $< -o $@

.SECONDEXPANSION:
$(BUILD)/tests/unit/%: $(BUILD)/san/tests/unit/%.o $$(call slib_of,$$(LIBS_$$(call test_mod,$$*)))
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

$(SIM_BIN): $(patsubst tests/%.c,$(BUILD)/san/tests/%.o,$(SIM_SRCS)) $(call slib_of,metadata replica raft common)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

sim: $(SIM_BIN)
	$(SIM_BIN) --seeds $(SIM_SEEDS)
	$(SIM_BIN) --dp --seeds $(DP_SEEDS)

integration: all
	@BUILD=$(BUILD) bash tests/integration/run.sh

# The chaos history checker on hand-made histories (issue 4: every anomaly must be caught).
chaos-checker:
	bash tests/chaos/test_checker.sh

# Real clusters under faults (tools/chaos run, DESIGN.md §8). chaos-test is
# make test's part: a 60-second mixed run that must come out valid and a short
# run against a broker with a planted bug that must come out invalid.
CHAOS_SECS ?= 300
CHAOS_SEED ?=
chaos: deps all $(BUILD)/bin/keeld-bugs
	KEEL_BIN=$(abspath $(BUILD)/bin) bash tools/chaos run --duration $(CHAOS_SECS) \
	  --faults kill,pause,partition,restart-all,slow $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))
chaos-test: all $(BUILD)/bin/keeld-bugs
	@BUILD=$(BUILD) bash tests/chaos/test_runs.sh

# The pure cores (DESIGN.md §6) may not include I/O, clock or library headers,
# and their objects may not call anything outside an allow-list of pure libc.
PURE_DIRS := raft metadata replica
PURE_FORBIDDEN_INC := '\#include *[<"](event2/|openssl/|protobuf-c/|time\.h|sys/|unistd\.h|fcntl\.h|pthread\.h|signal\.h|dirent\.h)'
PURE_ALLOWED_SYMS := $(shell cat tools/pure-symbols.txt 2>/dev/null)
check-pure: $(foreach d,$(PURE_DIRS),$(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/$(d)/*.c)))
	@bad=$$(grep -rnE $(PURE_FORBIDDEN_INC) $(foreach d,$(PURE_DIRS),$(wildcard src/$(d))) /dev/null); \
	if [ -n "$$bad" ]; then echo "check-pure: forbidden include in a pure core:"; echo "$$bad"; exit 1; fi
	@for o in $^; do \
	  for s in $$(nm -u $$o | awk '{print $$2}'); do \
	    case " $(PURE_ALLOWED_SYMS) " in *" $$s "*) ;; *) case $$s in kl_log_*) echo "check-pure: $$o logs via $$s; return notes instead"; exit 1;; kl_*|raft_*|meta_*|replica_*) ;; \
	      *) echo "check-pure: $$o calls $$s, which is not on tools/pure-symbols.txt"; exit 1;; esac;; esac; \
	  done; \
	done
	@echo "check-pure: ok ($(PURE_DIRS))"

# A local cluster (3 controllers, 3 brokers), a demo topic with a few records, and a how-to.
run: deps all
	bash tools/cluster up --controllers 3 --brokers 3
	@bash tools/cluster demo
	@bash tools/cluster tour

test: deps all
	$(MAKE) --no-print-directory unit sim chaos-checker integration chaos-test

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
