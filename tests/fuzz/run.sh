#!/usr/bin/env bash
# Fuzzes the split virtqueue (tests/fuzz/fuzz_virtq.c) with libFuzzer under
# ASan+UBSan for SECONDS (default 20). Builds with clang on its own, outside
# the CMake build, so gcc builds are unaffected. The build, the corpus
# (kept between runs) and any crash artifacts live in
# $MINIVM_BUILD/fuzz-virtq, or build-fuzz/ in the source tree.
# Exits 0 if no crash, 1 on a crash or a build error, 77 without clang
# and its libFuzzer runtime (libclang-rt-dev).
#
#   tests/fuzz/run.sh [SECONDS]
#   build-fuzz/fuzz_virtq build-fuzz/artifacts/crash-...   # replay a crash
set -euo pipefail

SECONDS_TO_RUN=${1:-20}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${MINIVM_BUILD:-}" ]; then
	OUT=$MINIVM_BUILD/fuzz-virtq
else
	OUT=$SRC/build-fuzz
fi
CC=${FUZZ_CC:-clang}

mkdir -p "$OUT/corpus" "$OUT/seeds" "$OUT/artifacts"
probe='int LLVMFuzzerTestOneInput(const char *d, long n) { return d[0] + n; }'
if ! command -v "$CC" >/dev/null ||
   ! echo "$probe" | "$CC" -fsanitize=fuzzer,address,undefined -x c - \
	-o "$OUT/probe" 2>/dev/null; then
	echo "fuzz: $CC with libFuzzer and sanitizers not available, skipping" >&2
	exit 77
fi
CFLAGS=(-std=gnu11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror
	-fno-omit-frame-pointer -I"$SRC")
SOURCES=("$SRC/virtio/virtqueue.c" "$SRC/vmm/memory.c" "$SRC/vmm/log.c")

"$CC" "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined \
	-o "$OUT/fuzz_virtq" "$SRC/tests/fuzz/fuzz_virtq.c" "${SOURCES[@]}"
"$CC" "${CFLAGS[@]}" -o "$OUT/gen_virtq_seeds" "$SRC/tests/fuzz/gen_virtq_seeds.c"
"$OUT/gen_virtq_seeds" "$OUT/seeds"

# -timeout: one input taking over 10 s is a hang (an endless chain walk).
# libFuzzer's own exit code for a crash is 77, which CTest would take for
# "skipped": make every finding exit 1. -max_len: header, 255 operations and
# all of guest RAM. New inputs go to the first directory.
cd "$OUT"
exec ./fuzz_virtq -max_total_time="$SECONDS_TO_RUN" -timeout=10 \
	-error_exitcode=1 -timeout_exitcode=1 -max_len=$((16 + 1020 + 65536)) \
	-rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$OUT/artifacts/" \
	"$OUT/corpus" "$OUT/seeds"
