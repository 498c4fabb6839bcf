# shellcheck shell=bash
# Shared by guests/build-kit.sh and tests/rig/build-rig.sh: Debian packages
# fetched with apt-get download and unpacked with dpkg-deb (never
# installed), the kernel-module closure that an initramfs needs, and the
# uncompressed kernel unpacked from a bzImage.
# The caller defines die, log and CACHE before sourcing this file.

# Install the Debian package providing a command, only when the command is
# missing, so that a fresh Debian 12 machine (or CI) can run this script.
# The stamps' view of files: each one's content hash and base name, not
# its path, so that two checkouts of the same sources (a developer's tree
# and CI's clone) share one cache instead of rebuilding it in turn.
hash_files() {
	local f
	for f in "$@"; do
		printf '%s %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "${f##*/}"
	done
}

need() {
	local cmd=$1 pkg=$2
	command -v "$cmd" >/dev/null 2>&1 && return 0
	[[ $EUID -eq 0 ]] || die "'$cmd' is missing; install package '$pkg' (needs root)"
	log "installing $pkg (for $cmd)"
	apt-get install -y -q "$pkg" >&2 || die "apt-get install $pkg failed"
	command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' still missing after installing $pkg"
}

# Print "PACKAGE VERSION" of the versioned kernel package that a metapackage
# depends on, e.g. linux-image-cloud-amd64 -> "linux-image-6.1.0-56-cloud-amd64
# 6.1.192-2".  One apt-cache call (each costs about a second).
resolve_kernel_pkg() {
	local meta=$1 deps
	deps=$(apt-cache show --no-all-versions "$meta" 2>/dev/null | sed -n 's/^Depends: //p' | head -n1) || true
	if [[ -z $deps ]]; then
		log "apt-cache knows no $meta; running apt-get update once"
		apt-get update -q >&2 || die "apt-get update failed"
		deps=$(apt-cache show --no-all-versions "$meta" | sed -n 's/^Depends: //p' | head -n1)
	fi
	# Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
	local pv
	pv=$(tr ',' '\n' <<<"$deps" | sed -n 's/^ *\(linux-image-[0-9][^ ]*\) *(= *\([^)]*\)).*/\1 \2/p' | head -n1)
	[[ -n $pv ]] || die "cannot find a versioned 'linux-image-N (= V)' in $meta's Depends: $deps"
	echo "$pv"
}

# The cached .deb of PKG at VERSION, if any (file names escape ':' as %3a).
find_deb() {
	find "$CACHE/debs" -maxdepth 1 -name "${1}_${2//:/%3a}_*.deb" | head -n1
}

# Download (via apt-get download, i.e. Debian's mirror) and unpack a package
# into $CACHE/pkgs/NAME_VERSION; print that directory.  Cached across runs.
fetch_unpack() {
	local pkg=$1 ver=$2 dir deb
	dir="$CACHE/pkgs/${pkg}_${ver}"
	if [[ ! -e $dir/.unpacked ]]; then
		mkdir -p "$CACHE/debs"
		deb=$(find_deb "$pkg" "$ver")
		if [[ -z $deb ]]; then
			log "downloading $pkg $ver"
			# APT::Sandbox::User=root: _apt cannot write into a root-owned cache.
			(cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
				die "apt-get download $pkg=$ver failed"
			deb=$(find_deb "$pkg" "$ver")
		fi
		[[ -n $deb && -f $deb ]] || die "downloaded .deb for $pkg not found in $CACHE/debs"
		log "unpacking $(basename "$deb")"
		rm -rf "$dir" && mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir" || die "dpkg-deb -x $deb failed"
		touch "$dir/.unpacked"
	fi
	echo "$dir"
}

# Print the module files (relative to lib/modules/KVER) for the named modules
# and everything modules.dep says they need.  Built-in modules are skipped.
module_closure() {
	local moddir=$1; shift
	local want name optional line
	for want in "$@"; do
		optional=0
		[[ $want == *'?' ]] && { optional=1; want=${want%'?'}; }
		name=${want//-/_}
		# modules.dep: "kernel/a/b/name.ko: dep1.ko dep2.ko"; file names may use - or _.
		line=$(awk -v n="$name" -F: '{ f=$1; sub(/.*\//, "", f); sub(/\.ko(\.[a-z]+)?$/, "", f); gsub(/-/, "_", f); if (f == n) { print; exit } }' "$moddir/modules.dep")
		if [[ -z $line ]]; then
			if grep -qE "/${name//_/[-_]}\.ko$" "$moddir/modules.builtin" 2>/dev/null; then
				continue
			fi
			((optional)) && continue
			die "module '$want' is neither in modules.dep nor built in ($moddir)"
		fi
		tr ' ' '\n' <<<"${line/:/ }" | sed '/^$/d'
	done | sort -u
}

# The bzImage's payload is the compressed ELF vmlinux (xz for the generic
# kernel, lz4 for the cloud one).  The setup header says where it is
# (payload_offset/payload_length at 0x248/0x24c, from the protected-mode code
# at (setup_sects+1)*512); its last 4 bytes are the unpacked size, which
# checks the result.
u8() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
extract_vmlinux() {
	local bz=$1 dst=$2 sects start len size magic tool
	sects=$(u8 "$bz" $((0x1f1)))
	((sects == 0)) && sects=4
	start=$(((sects + 1) * 512 + $(u32 "$bz" $((0x248)))))
	len=$(u32 "$bz" $((0x24c))) || true
	[[ $len -gt 4 ]] || die "$bz: no payload in the setup header (not a bzImage?)"
	size=$(u32 "$bz" $((start + len - 4)))
	magic=$(od -An -tx1 -j "$start" -N4 "$bz" | tr -d ' ')
	case "$magic" in
	fd377a58) tool=xz ;;
	02214c18) tool=lz4 ;;
	1f8b*) tool=gzip ;;
	28b52ffd) tool=zstd ;;
	*) die "$bz: unknown payload compression (magic $magic)" ;;
	esac
	need "$tool" "${tool/xz/xz-utils}"
	# The exact payload, without the size trailer; the status is not checked
	# (lz4 complains about the missing end mark), the size and ELF magic are.
	tail -c +"$((start + 1))" "$bz" | head -c "$((len - 4))" | "$tool" -dc >"$dst" 2>/dev/null || true
	[[ $(stat -c %s "$dst") == "$size" ]] ||
		die "unpacking vmlinux from $bz ($tool) gave $(stat -c %s "$dst") bytes, expected $size"
	[[ $(head -c4 "$dst") == $'\x7fELF' ]] || die "the unpacked payload of $bz is not an ELF file"
}
