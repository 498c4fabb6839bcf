#!/bin/sh
# Write known data at known offsets of a raw disk (no file system), so the
# host can build the same bytes and compare whole images (qemu-img compare).
# Kernel parameters:
#   pat_dev=vdX            the disk (default vdb)
#   pat_seed=S             a word that makes this run's data differ from
#                          another run's (default 1)
#   pat_regions=R[,R...]   each R is OFF+LEN (bytes, OFF a multiple of 512),
#                          written through the page cache and fsync'ed; or
#                          OFF+LEN+d (LEN a multiple of 512 too), written with
#                          O_DIRECT in 512-byte requests, so the disk sees
#                          single-sector writes
# Region I's bytes: the lines "S-I-%08d\n" for 0, 1, 2, ..., cut to LEN
# bytes (the host makes them the same way: tests/integration/qcow2_*.sh).  After writing,
# the page cache is dropped and every region read back.  Prints:
#   pattern:vdX:OFF=SHA256     for each region, as written
#   pattern:vdX=ok|mismatch    the read-back
param() {
	read -r cmdline </proc/cmdline
	for a in $cmdline; do
		case "$a" in "$1="*) echo "${a#*=}"; return ;; esac
	done
	echo "$2"
}
# pat_gen SEED INDEX LEN: region INDEX's bytes on stdout.
pat_gen() {
	awk -v s="$1" -v r="$2" -v n="$3" 'BEGIN {
		for (i = 0; t < n; i++) {
			l = sprintf("%s-%d-%08d\n", s, r, i)
			if (t + length(l) > n)
				l = substr(l, 1, n - t)
			printf "%s", l
			t += length(l)
		}
	}'
}

dev=$(param pat_dev vdb)
seed=$(param pat_seed 1)
regions=$(param pat_regions "" | tr ',' ' ')
[ -b "/dev/$dev" ] || { echo "pattern:error=no /dev/$dev"; exit 1; }
[ -n "$regions" ] || { echo "pattern:error=no pat_regions"; exit 1; }

i=0
for r in $regions; do
	off=${r%%+*} rest=${r#*+}
	len=${rest%%+*}
	pat_gen "$seed" "$i" "$len" >/tmp/region
	case "$rest" in
	*+d) dd if=/tmp/region of="/dev/$dev" bs=512 seek=$((off / 512)) \
		oflag=direct conv=notrunc 2>/dev/null || exit 1 ;;
	*) dd if=/tmp/region of="/dev/$dev" bs=64k oflag=seek_bytes seek="$off" \
		conv=notrunc,fsync 2>/dev/null || exit 1 ;;
	esac
	echo "pattern:$dev:$off=$(sha256sum </tmp/region | cut -d' ' -f1)"
	i=$((i + 1))
done
sync
echo 3 >/proc/sys/vm/drop_caches

status=ok i=0
for r in $regions; do
	off=${r%%+*} rest=${r#*+}
	len=${rest%%+*}
	want=$(pat_gen "$seed" "$i" "$len" | sha256sum | cut -d' ' -f1)
	got=$(dd if="/dev/$dev" bs=64k iflag=skip_bytes,count_bytes skip="$off" count="$len" \
		2>/dev/null | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || { status=mismatch; echo "pattern:$dev:$off differs on read-back"; }
	i=$((i + 1))
done
echo "pattern:$dev=$status"
[ "$status" = ok ]
