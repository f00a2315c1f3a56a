# Tests and bench of the image library: make -C native -f image/test.mk [test|bench]
# Reuses the main Makefile's rules for libmanaimg.a. Kept apart from it because native/test/*.c
# are checkpoint test applications built without the image library.
include Makefile
.DEFAULT_GOAL := test

# Leave raw.img, zstd.img and fixture.json here instead of a temporary directory (for the
# Node addon test): make -C native -f image/test.mk test IMAGE_TEST_DIR=/tmp/x
IMAGE_TEST_DIR ?=
BENCH_DIR ?= $(OUT)/bench
BENCH_MIB ?= 1024

$(OUT)/test_image: image/test_image.c $(OUT)/lib/libmanaimg.a include/mana_image.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -pthread -Iinclude -o $@ $< \
	  $(OUT)/lib/libmanaimg.a -lzstd

test: $(OUT)/test_image
	$(OUT)/test_image $(IMAGE_TEST_DIR)

# Image write/read throughput against dd to the same directory (design doc B3).
bench: $(OUT)/test_image
	image/bench.sh $(BENCH_DIR) $(BENCH_MIB) 5

bench-once: $(OUT)/test_image
	@mkdir -p $(BENCH_DIR)
	@rm -f $(BENCH_DIR)/dd.out
	dd if=/dev/zero of=$(BENCH_DIR)/dd.out bs=1M count=$(BENCH_MIB) conv=fsync 2>&1 | tail -1
	@rm -f $(BENCH_DIR)/dd.out
	$(OUT)/test_image --bench $(BENCH_DIR) $(BENCH_MIB) 0 random
	$(OUT)/test_image --bench $(BENCH_DIR) $(BENCH_MIB) 1 random
	$(OUT)/test_image --bench $(BENCH_DIR) $(BENCH_MIB) 3 random
	$(OUT)/test_image --bench $(BENCH_DIR) $(BENCH_MIB) 1 mixed
	$(OUT)/test_image --bench $(BENCH_DIR) $(BENCH_MIB) 3 mixed

.PHONY: test bench bench-once
