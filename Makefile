# Thin wrapper around Meson.  The quick start is `make run` and `make check`,
# both as root on Debian 12; each installs what is missing first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30

.PHONY: all deps build build-asan run check check-unit fuzz bench clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debug -Dfuzz=true -Db_lundef=false

# Every test, in the sanitizer build, then every fuzz target briefly; the last
# line is the "N passed, N failed" summary that CI reads.  The set-up also
# builds the guest image the capture-image-build test uses (debootstrap from
# the host's own Debian mirror, like install-deps; reused while unchanged).
check: deps build build-asan $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	bash tests/sandbox/test-capture-image-build.sh --prepare src/sandbox/capture-image \
		$(ASAN_BUILD) $(ASAN_BUILD)/tests/sandbox
	scripts/run-tests $(ASAN_BUILD) $(FUZZ_BUILD) $(FUZZ_SECONDS)

check-unit: build-asan
	meson test -C $(ASAN_BUILD) --suite unit --print-errorlogs

run: deps build
	scripts/run-demo $(BUILD)

bench: deps build
	scripts/run-bench $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
