# lh_track.so: the lower half's memory and thread tracker (see include/lh_track.h), and its
# tests.  Meant to be included from mpi-shim/Makefile; also works alone:
#   make -C mpi-shim -f lower/track.mk track          # build
#   make -C mpi-shim -f lower/track.mk track-test     # build and run test/run_track_test.sh
# Paths are taken from this file's location so that the including Makefile's cwd and
# variables do not matter; every name defined here starts with TRACK_ or track.
TRACK_ROOT   := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
# Relative ("out/...") when make runs in mpi-shim/, so that the including Makefile's
# $(OUT)/lib/lh_track.so and ours name the same target.
TRACK_OUT    := $(if $(filter $(CURDIR),$(TRACK_ROOT)),out,$(TRACK_ROOT)/out)
TRACK_CC     ?= $(or $(CC),cc)
TRACK_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -fPIC \
                -fno-omit-frame-pointer -I$(TRACK_ROOT)/include
TRACK_LIB    := $(TRACK_OUT)/lib/lh_track.so
TRACK_TESTS  := $(TRACK_OUT)/test/test_track $(TRACK_OUT)/test/bench_track \
                $(TRACK_OUT)/test/track_holes.so
TRACK_HDR    := $(TRACK_ROOT)/include/lh_track.h

.PHONY: track track-test track-clean
track: $(TRACK_LIB) $(TRACK_TESTS)

# -fvisibility=hidden: only the interposers and the lh_track_* API are exported, and calls
# between our own helpers never go through the PLT.  -z now: no lazy binding inside the
# tracker, whose first call can come from deep inside the allocator.
$(TRACK_LIB): $(TRACK_ROOT)/lower/lh_track.c $(TRACK_HDR)
	@mkdir -p $(dir $@)
	$(TRACK_CC) $(TRACK_CFLAGS) -fvisibility=hidden -shared -Wl,-soname,lh_track.so \
	  -Wl,-z,defs -Wl,-z,now -o $@ $< -ldl -lpthread

# The test links lh_track.so for its API (DT_NEEDED lh_track.so is satisfied by the preloaded
# copy); the benchmark does not, so it can run with and without the tracker.
$(TRACK_OUT)/test/test_track: $(TRACK_ROOT)/test/test_track.c $(TRACK_HDR) $(TRACK_LIB)
	@mkdir -p $(dir $@)
	$(TRACK_CC) $(TRACK_CFLAGS) -o $@ $< $(TRACK_LIB) -Wl,-rpath,'$$ORIGIN/../lib' -ldl -lpthread

# A library whose 2 MiB-aligned segments leave PROT_NONE gaps, for check (e).
$(TRACK_OUT)/test/track_holes.so: $(TRACK_ROOT)/test/test_track.c
	@mkdir -p $(dir $@)
	$(TRACK_CC) $(TRACK_CFLAGS) -DTRACK_HOLES_LIB -shared -Wl,-z,max-page-size=0x200000 \
	  -Wl,-z,separate-code -o $@ $<

$(TRACK_OUT)/test/bench_track: $(TRACK_ROOT)/test/bench_track.c
	@mkdir -p $(dir $@)
	$(TRACK_CC) $(TRACK_CFLAGS) -o $@ $< -lpthread

track-test: track
	bash $(TRACK_ROOT)/test/run_track_test.sh

track-clean:
	rm -f $(TRACK_LIB) $(TRACK_TESTS)
