#!/bin/sh
# Print what the guest sees of its machine; /init powers off afterwards.
echo "nproc=$(nproc)"
echo "memtotal_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo "kernel=$(uname -r)"
