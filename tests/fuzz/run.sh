#!/usr/bin/env bash
# Runs one libFuzzer harness under ASan+UBSan for SECONDS (default 20):
#   virtq  the split virtqueue (tests/fuzz/fuzz_virtq.c), the default
#   qcow2  opening and reading qcow2 images (tests/fuzz/fuzz_qcow2.c)
#   vnet   the virtio-net device (tests/fuzz/fuzz_vnet.c)
# Builds with clang on its own, outside the CMake build, so gcc builds are
# unaffected. The build, the corpus (kept between runs) and any crash
# artifacts live in $MINIVM_BUILD/fuzz-HARNESS, or build-fuzz/HARNESS in
# the source tree. Exits 0 if no crash, 1 on a crash or a build error, 77
# without clang and its libFuzzer runtime (libclang-rt-dev).
#
#   tests/fuzz/run.sh [HARNESS] [SECONDS]     (run.sh SECONDS: virtq, as before)
#   build-fuzz/qcow2/fuzz_qcow2 build-fuzz/qcow2/artifacts/crash-...   # replay a crash
set -euo pipefail

HARNESS=virtq
if [ "$#" -gt 0 ] && ! [[ $1 =~ ^[0-9]+$ ]]; then
	HARNESS=$1
	shift
fi
SECONDS_TO_RUN=${1:-20}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${MINIVM_BUILD:-}" ]; then
	OUT=$MINIVM_BUILD/fuzz-$HARNESS
else
	OUT=$SRC/build-fuzz/$HARNESS
fi
CC=${FUZZ_CC:-clang}

# Per harness: the sources it links, and how large an input may grow.
case $HARNESS in
virtq)
	SOURCES=("$SRC/virtio/virtqueue.c" "$SRC/vmm/memory.c" "$SRC/vmm/log.c")
	LIBS=()
	# Header, 255 operations and all of guest RAM.
	MAX_LEN=$((16 + 1020 + 65536))
	;;
qcow2)
	# The disk/ files of minivm_core, as CMakeLists.txt lists them, so a
	# new file there needs no change here (minivm-img's own are not in it).
	# (No vmm/log.c: the harness has its own, silent pr_err() and friends.)
	SOURCES=()
	for f in $(awk '/^add_library\(minivm_core/ { on = 1 } on && /^\)/ { on = 0 }
			on && $1 ~ /^disk\/.*\.c$/ { print $1 }' "$SRC/CMakeLists.txt"); do
		SOURCES+=("$SRC/$f")
	done
	SOURCES+=("$SRC/vmm/opts.c") # -drive's option splitter, shared with -netdev
	LIBS=(-lz -lpthread)
	# Enough for the seeds (512-byte and 4 KiB clusters) and their growth.
	MAX_LEN=65536
	;;
vnet)
	SOURCES=("$SRC/virtio/net.c" "$SRC/virtio/virtqueue.c" "$SRC/vmm/memory.c"
		 "$SRC/vmm/evloop.c" "$SRC/vmm/log.c")
	LIBS=(-lpthread)
	# Header, script and 64 KiB of guest RAM.
	MAX_LEN=$((44 + 65536))
	;;
*)
	echo "fuzz: unknown harness '$HARNESS' (have: virtq qcow2 vnet)" >&2
	exit 1
	;;
esac

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

# Unused functions of the sources (the blockdev side, say) are dropped at
# link time, so they need not pull in the rest of minivm.
"$CC" "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -ffunction-sections -fdata-sections \
	-Wl,--gc-sections -o "$OUT/fuzz_$HARNESS" "$SRC/tests/fuzz/fuzz_$HARNESS.c" \
	"${SOURCES[@]}" "${LIBS[@]}"

# Seeds: well-formed inputs, so the fuzzer starts from real structures.
case $HARNESS in
virtq)
	"$CC" "${CFLAGS[@]}" -o "$OUT/gen_virtq_seeds" "$SRC/tests/fuzz/gen_virtq_seeds.c"
	"$OUT/gen_virtq_seeds" "$OUT/seeds"
	;;
qcow2)
	bash "$SRC/tests/fuzz/gen_qcow2_seeds.sh" "$OUT/seeds"
	;;
esac

# -timeout: one input taking over 10 s is a hang (an endless walk).
# libFuzzer's own exit code for a crash is 77, which CTest would take for
# "skipped": make every finding exit 1. New inputs go to the first directory.
# ASan keeps freed memory in a quarantine and does not give it back to the
# system by default: a qcow2 chain 64 images deep (a backing-file cycle)
# reserves some 300 MiB of caches, and a few of those in a row passed
# -rss_limit_mb without any one input being at fault.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_release_to_os_interval_ms=100:quarantine_size_mb=32}
cd "$OUT"
exec "./fuzz_$HARNESS" -max_total_time="$SECONDS_TO_RUN" -timeout=10 \
	-error_exitcode=1 -timeout_exitcode=1 -max_len="$MAX_LEN" \
	-rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$OUT/artifacts/" \
	"$OUT/corpus" "$OUT/seeds"
