# sbx build. `make` builds build/{libsbx.so,libsbx.a,libsbx-mcp.a,sbx,sbx-agent,sbx.pc}.
# `make demo` and `make check` also do the machine set-up (scripts/setup.sh);
# `make install [PREFIX=/usr/local] [DESTDIR=...]` installs.

CC ?= cc
PREFIX ?= /usr/local
BUILD ?= build
SAN ?=

WARN := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
        -Wmissing-prototypes -Wstrict-prototypes -Wvla
HARDEN := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fstack-clash-protection
CFLAGS ?= -O2 -g
# Each object's header dependencies, written as it compiles (.d files).
ALL_CFLAGS := $(WARN) $(HARDEN) $(CFLAGS) -D_GNU_SOURCE -Iinclude -Isrc/common -MMD -MP \
              -ffile-prefix-map=$(CURDIR)=.
# libcurl and libarchive are loaded on first use (src/lib/dl.c): only their
# headers are needed to build.
LIB_PKGS := libcurl jansson libarchive
LIB_CFLAGS := $(shell pkg-config --cflags $(LIB_PKGS) 2>/dev/null)
LIB_LIBS := $(shell pkg-config --libs jansson 2>/dev/null) -ldl
LDHARDEN := -Wl,-z,relro,-z,now
# The CLI takes jansson's archive where there is one: one shared library
# fewer to load on every `sbx` command.
JANSSON_A := $(wildcard $(shell pkg-config --variable=libdir jansson 2>/dev/null)/libjansson.a)
CLI_LIBS := $(if $(JANSSON_A),$(JANSSON_A) -ldl,$(LIB_LIBS))

ifeq ($(SAN),1)
  BUILD := build-asan
  ALL_CFLAGS += -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=all -O1
  LDHARDEN += -fsanitize=address,undefined,float-cast-overflow
endif
# The MCP server's two threads under ThreadSanitizer (`make tsan`).
ifeq ($(SAN),thread)
  BUILD := build-tsan
  ALL_CFLAGS += -fsanitize=thread -fno-omit-frame-pointer -O1
  LDHARDEN += -fsanitize=thread
endif

ABS_BUILD := $(abspath $(BUILD))
# Where `make install` puts the agent, which the library then finds (an
# uninstalled build finds the one beside its program; SBX_AGENT overrides
# both; src/lib/hostdir.c). Objects depend on the prefix they were built for.
LIBEXECDIR := $(PREFIX)/libexec/sbx
AGENT_PATH := $(LIBEXECDIR)/sbx-agent
PREFIX_STAMP := $(BUILD)/prefix.stamp

COMMON_SRC := $(wildcard src/common/*.c)
LIB_SRC := $(wildcard src/lib/*.c) $(COMMON_SRC)
MCP_SRC := $(wildcard src/mcp/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
SBXD_SRC := $(wildcard src/sbxd/*.c)
AGENT_SRC := $(wildcard src/agent/*.c) $(COMMON_SRC)

LIB_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
CLI_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(CLI_SRC))
MCP_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(MCP_SRC))
SBXD_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SBXD_SRC))

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ITEST_SRC := $(wildcard tests/integration/*.c)
ITEST_BIN := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRC))

.PHONY: all clean demo check tests asan tsan bench setup example install python FORCE
all: $(BUILD)/libsbx.so $(BUILD)/libsbx.a $(BUILD)/libsbx-mcp.a $(BUILD)/sbx $(BUILD)/sbxd \
     $(BUILD)/sbx.pc build/sbx-agent

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

# Only the file that names the agent's path sees the prefix.
$(BUILD)/obj/lib/hostdir.o: src/lib/hostdir.c $(PREFIX_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -fPIC -fvisibility=hidden -DSBX_AGENT_PATH='"$(AGENT_PATH)"' -c $< -o $@

# Rewritten only when the prefix changes, so that it rebuilds only then.
$(PREFIX_STAMP): FORCE
	@mkdir -p $(BUILD)
	@[ "$$(cat $@ 2>/dev/null)" = '$(PREFIX)' ] || echo '$(PREFIX)' > $@
FORCE:

# A test program's dependencies go beside the objects', not among the
# programs that the test runner runs.
TEST_DEPS = -MF $(BUILD)/obj/tests/$(notdir $@).d
-include $(wildcard $(BUILD)/obj/*/*.d)

# Only sbx_* symbols are exported (SBX_EXPORT); internals stay hidden.
$(BUILD)/libsbx.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libsbx.so.0 $(LDHARDEN) -o $(BUILD)/libsbx.so.0 $^ $(LIB_LIBS)
	ln -sf libsbx.so.0 $@

$(BUILD)/libsbx.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

# The MCP tools as a library of their own, on libsbx (include/sbx_mcp.h).
$(BUILD)/libsbx-mcp.a: $(MCP_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/sbx: $(CLI_OBJ) $(BUILD)/libsbx-mcp.a $(BUILD)/libsbx.a
	$(CC) $(LDHARDEN) -o $@ $(CLI_OBJ) $(BUILD)/libsbx-mcp.a $(BUILD)/libsbx.a $(CLI_LIBS) -lpthread

# sbxd, the server (src/sbxd), on libsbx and libmicrohttpd. It is built
# with libsbx's internals (its state root, records, SHA-256) rather than
# with copies of them.
$(SBXD_OBJ): ALL_CFLAGS += -Isrc/lib
$(BUILD)/sbxd: $(SBXD_OBJ) $(BUILD)/libsbx-mcp.a $(BUILD)/libsbx.a
	$(CC) $(LDHARDEN) -o $@ $(SBXD_OBJ) $(BUILD)/libsbx-mcp.a $(BUILD)/libsbx.a $(CLI_LIBS) \
	  $$(pkg-config --libs libmicrohttpd) -lpthread

# The agent is static so it runs in any image; it is never sanitized (it runs
# as PID 1 in containers where the sanitizer runtimes do not exist). With
# musl (Debian's musl-tools) it is a static PIE of about 400 KiB resident;
# with glibc, the fallback, about 950 KiB. musl-gcc's specs cannot make a
# static PIE, so the compiler is pointed at musl's headers and start files.
MUSL_DIR := /usr/lib/$(subst -gnu,-musl,$(shell $(CC) -dumpmachine))
MUSL_INC := /usr/include/$(subst -gnu,-musl,$(shell $(CC) -dumpmachine))
PCRE2_A := $(shell $(CC) -print-file-name=libpcre2-8.a)
ifneq ($(wildcard $(MUSL_DIR)/rcrt1.o),)
build/sbx-agent: $(AGENT_SRC) $(wildcard src/agent/*.h src/common/*.h) include/sbx.h
	@mkdir -p build/musl-include
	ln -sf /usr/include/pcre2.h build/musl-include/pcre2.h
	$(CC) $(WARN) $(HARDEN) -O2 -D_GNU_SOURCE -DSBX_AGENT_MUSL -nostdinc -isystem $(MUSL_INC) \
	  -isystem $$($(CC) -print-file-name=include) -Ibuild/musl-include -Iinclude -Isrc/common \
	  -fPIE -static-pie -nostdlib -nostartfiles -o $@ $(MUSL_DIR)/rcrt1.o $(MUSL_DIR)/crti.o \
	  $$($(CC) -print-file-name=crtbeginS.o) $(AGENT_SRC) $(PCRE2_A) -L$(MUSL_DIR) -lc \
	  $$($(CC) -print-libgcc-file-name) $$($(CC) -print-file-name=crtendS.o) $(MUSL_DIR)/crtn.o \
	  $(LDHARDEN)
else
build/sbx-agent: $(AGENT_SRC) $(wildcard src/agent/*.h src/common/*.h) include/sbx.h
	@mkdir -p build
	$(CC) $(WARN) $(HARDEN) -O2 -D_GNU_SOURCE -Iinclude -Isrc/common -static-pie -fPIE \
	  -o $@ $(AGENT_SRC) -l:libpcre2-8.a $(LDHARDEN)
endif

$(BUILD)/sbx.pc: Makefile
	@mkdir -p $(BUILD)
	printf 'prefix=%s\nlibdir=%s\nincludedir=%s\n\nName: sbx\nDescription: Docker sandboxes for AI agents\nVersion: 0.1.0\nRequires.private: jansson\nCflags: -I$${includedir}\nLibs: -L$${libdir} -lsbx\n' \
	  '$(ABS_BUILD)' '$(ABS_BUILD)' '$(abspath include)' > $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsbx.a tests/tap.h
	@mkdir -p $(dir $@) $(BUILD)/obj/tests
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -Itests $(TEST_DEPS) -o $@ $< $(BUILD)/libsbx.a $(LIB_LIBS) $(LDHARDEN)

# The MCP library's unit tests link it (the more specific rule wins).
$(BUILD)/tests/test_mcp_%: tests/unit/test_mcp_%.c $(BUILD)/libsbx-mcp.a $(BUILD)/libsbx.a tests/tap.h
	@mkdir -p $(dir $@) $(BUILD)/obj/tests
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -Itests -Isrc/mcp $(TEST_DEPS) -o $@ $< $(BUILD)/libsbx-mcp.a $(BUILD)/libsbx.a $(LIB_LIBS) -lpthread $(LDHARDEN)

# sbxd's pure parts (src/sbxd/text.c, events.c) with their unit tests.
$(BUILD)/tests/test_sbxd_%: tests/unit/test_sbxd_%.c $(BUILD)/obj/sbxd/text.o \
                            $(BUILD)/obj/sbxd/events.o $(BUILD)/libsbx.a tests/tap.h
	@mkdir -p $(dir $@) $(BUILD)/obj/tests
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -Itests -Isrc/sbxd $(TEST_DEPS) -o $@ $< \
	  $(BUILD)/obj/sbxd/text.o $(BUILD)/obj/sbxd/events.o $(BUILD)/libsbx.a $(LIB_LIBS) $(LDHARDEN)

$(BUILD)/tests/%: tests/integration/%.c $(BUILD)/libsbx.a tests/tap.h
	@mkdir -p $(dir $@) $(BUILD)/obj/tests
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -Itests $(TEST_DEPS) -o $@ $< $(BUILD)/libsbx.a $(LIB_LIBS) $(LDHARDEN)

tests: all $(UNIT_BIN) $(ITEST_BIN) build/sbx-bench python

# The Python package (python/): build/python/sbx, importable with
# PYTHONPATH=build/python; `pip install ./python` makes the same. Under
# SAN=1 the extension and libsbx are sanitized (build-asan/python; Python
# itself is not, so the tests preload the sanitizers' runtimes).
PY_SRC := $(wildcard python/sbx/*.py python/sbx/*.c) python/setup.py
PY_ENV := SBX_LIBSBX_A=$(ABS_BUILD)/libsbx.a
ifeq ($(SAN),1)
  PY_ENV += CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
            LDFLAGS="-fsanitize=address,undefined"
endif
python: $(BUILD)/python/sbx/.built
$(BUILD)/python/sbx/.built: $(PY_SRC) $(BUILD)/libsbx.a build/sbx-agent include/sbx.h
	cd python && $(PY_ENV) /usr/bin/python3 setup.py -q build --force \
	  --build-base $(ABS_BUILD)/python-build --build-lib $(ABS_BUILD)/python 2>&1 \
	  | { grep -v 'byte-compiling is disabled' || true; }
	@test -f $(BUILD)/python/sbx/_sbx.*.so && touch $@

asan:
	$(MAKE) SAN=1 tests build-asan/sbx-agent

tsan:
	$(MAKE) SAN=thread build-tsan/sbx build-tsan/sbxd build-tsan/sbx-agent build-tsan/tests/it_session

# A sanitized build's programs find the (never sanitized) agent beside them.
build-asan/sbx-agent build-tsan/sbx-agent: build/sbx-agent
	@mkdir -p $(dir $@)
	ln -sfn ../build/sbx-agent $@

setup:
	scripts/setup.sh

# The seed's fibonacci example, in a fresh sandbox, through the C API.
demo: setup
	$(MAKE) all
	$(MAKE) example
	build/examples/fibonacci

example: all
	@mkdir -p build/examples
	$(CC) $(WARN) -O2 -o build/examples/fibonacci examples/fibonacci.c \
	  $$(PKG_CONFIG_PATH=$(abspath build) pkg-config --cflags --libs sbx) -Wl,-rpath,$(abspath build)

check: setup
	$(MAKE) tests
	$(MAKE) asan
	$(MAKE) tsan
	$(MAKE) fuzz-smoke
	$(MAKE) example
	scripts/run-tests.sh

build/sbx-bench: bench/bench.c build/libsbx.a include/sbx.h
	$(CC) $(ALL_CFLAGS) -o $@ bench/bench.c build/libsbx.a $(LIB_LIBS) $(LDHARDEN)

# Side by side with docker-py and the docker CLI; SBX_BENCH_QUICK=1 for a smoke run.
bench: setup
	$(MAKE) build/sbx-bench
	/usr/bin/python3 bench/bench.py

# The installed library finds the installed agent; the installed sbx.pc
# names the installed paths.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(BUILD)/sbx $(DESTDIR)$(PREFIX)/bin/sbx
	install -m 0755 build/sbx-agent $(DESTDIR)$(AGENT_PATH)
	install -m 0755 $(BUILD)/libsbx.so.0 $(DESTDIR)$(PREFIX)/lib/libsbx.so.0
	ln -sf libsbx.so.0 $(DESTDIR)$(PREFIX)/lib/libsbx.so
	install -m 0644 $(BUILD)/libsbx.a $(BUILD)/libsbx-mcp.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 include/sbx.h include/sbx_mcp.h $(DESTDIR)$(PREFIX)/include/
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: sbx\nDescription: Docker sandboxes for AI agents\nVersion: 0.1.0\nRequires.private: jansson\nCflags: -I$${includedir}\nLibs: -L$${libdir} -lsbx\n' \
	  '$(PREFIX)' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sbx.pc

clean:
	rm -rf build build-asan build-tsan

# libFuzzer targets for the parsers (fuzz/fuzz_*.c), built with clang (not
# $(CC)) with ASan and UBSan into build-fuzz/. `make fuzz` runs each for
# FUZZ_SECONDS on a copy of its seed corpus (fuzz/run.sh); `make fuzz-smoke`,
# part of check, for FUZZ_SMOKE_SECONDS. Crashing inputs land in
# build-fuzz/crashes/.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_CFLAGS := $(WARN) -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
  -fno-sanitize-recover=all -D_GNU_SOURCE -Iinclude -Isrc/common -Isrc/mcp -Isrc/sbxd $(LIB_CFLAGS)
FUZZ_OBJ := $(patsubst src/%.c,build-fuzz/obj/%.o,$(LIB_SRC) $(MCP_SRC) src/sbxd/text.c)
# The longest input per target: a few frames, lines or rules; a runtime with
# many packages.
FUZZ_MAX_LEN_proto := 4096
FUZZ_MAX_LEN_jsonrpc := 8192
FUZZ_MAX_LEN_permissions := 4096
FUZZ_MAX_LEN_runtime := 16384
FUZZ_MAX_LEN_base64 := 4096

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-clean
build-fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -fsanitize=fuzzer-no-link -c $< -o $@
-include $(wildcard build-fuzz/obj/*/*.d)

# An archive, so that each target links only the objects it needs.
build-fuzz/libsbx-fuzz.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

build-fuzz/fuzz_%: fuzz/fuzz_%.c build-fuzz/libsbx-fuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -MF build-fuzz/obj/fuzz_$*.d -fsanitize=fuzzer -o $@ $< \
	  build-fuzz/libsbx-fuzz.a $(LIB_LIBS) -lpthread

fuzz-build: $(addprefix build-fuzz/fuzz_,$(FUZZ_TARGETS))

# One run per target (make -j runs them side by side); a crash fails make.
fuzz: $(addprefix fuzz-run-,$(FUZZ_TARGETS))
fuzz-run-%: build-fuzz/fuzz_%
	fuzz/run.sh $* $(FUZZ_SECONDS) $(or $(FUZZ_MAX_LEN_$*),4096)

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

fuzz-clean:
	rm -rf build-fuzz
clean: fuzz-clean
