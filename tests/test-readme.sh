#!/bin/bash
# test-readme.sh - the README's command lines, as written (issue #17 item
# 13).  Extracts every line of the README's ```sh blocks and runs those
# that can run here, each in a scratch folder holding the files the
# examples name (disk.vhdx, checkpoint.avhdx, base.vhdx, ...): the `vhdx`
# examples with PATH set as the Set-up section says, and the nbdkit
# example with the plugin path it shows (the socket moved from /tmp/sock
# into the test's folder: the machine is shared).  Every line is either run
# (and must exit 0, or 3 where the command reports differences) or named in
# the skip list below with its reason, so a new README line is not missed.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires python3
cd "$T"

README=$top_srcdir/README.md
python3 - "$README" > lines.txt <<'EOF' || fail "cannot read the README's sh blocks"
import re, sys
inblock = False
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("```"):
        inblock = line.strip() == "```sh" if not inblock else False
        continue
    if inblock:
        cmd = re.split(r"\s+#\s", line)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if cmd.strip():
            print(cmd)
EOF
[ "$(wc -l < lines.txt)" -ge 30 ] || fail "too few command lines found in the README: $(cat lines.txt)"

# the Set-up section's PATH line, evaluated in a checkout whose build tree is $top_builddir
grep -qxF 'export PATH="$PWD/build/tools:$PWD/build/fuse:$PATH"   # vhdx and vhdxfs by name, as below' "$README" ||
	fail "the README's Set-up section does not put the build tree in PATH"
export PATH="$top_builddir/tools:$top_builddir/fuse:$PATH"
command -v vhdx > /dev/null || fail "vhdx is not found through the README's PATH"

# the files the examples name
W=$T/world
mkdir "$W"
(
	cd "$W" || exit 1
	vhdx create --size 1088M disk.vhdx > /dev/null && # map --offset 1G --length 64M reads its end
		head -c 3M /dev/urandom | vhdx write --offset 1M disk.vhdx &&
		# an MBR with two partitions, for the lines about partitions (sfdisk: package fdisk)
		truncate -s 1088M table.raw &&
		printf 'label: dos\nstart=2048, size=4096, type=83\nstart=8192, size=65536, type=7\n' |
			sfdisk -q table.raw > /dev/null &&
		head -c 512 table.raw | vhdx write --offset 0 disk.vhdx && rm table.raw &&
		vhdx create --parent disk.vhdx checkpoint.avhdx > /dev/null &&
		head -c 64K /dev/urandom | vhdx write --offset 2M checkpoint.avhdx &&
		vhdx create --size 1088M base.vhdx > /dev/null &&
		vhdx create --size 64M web01.vhdx > /dev/null &&
		vhdx create --parent base.vhdx mid.avhdx > /dev/null &&
		vhdx create --parent mid.avhdx newest.avhdx > /dev/null &&
		head -c 64K /dev/urandom | vhdx write --offset 0 newest.avhdx &&
		vhdx convert -O raw disk.vhdx disk.raw &&
		vhdx hash -o disk.manifest disk.vhdx &&
		printf 'op=read voff=1048576-1114111 err=EIO\n' > rules
) || fail "preparing the files of the examples"

# lines that cannot run here, and why
skip_reason() {
	case "$1" in
	*dirty.vhdx*) echo "needs an image with a dirty log (test-log.sh covers replay)" ;;
	*/srv/vms/web01*) echo "a VM folder that is not here (test-checkpoints.sh covers checkpoints)" ;;
	*/new/place/*) echo "a moved parent that is not here (test-chain.sh covers reparent)" ;;
	"vhdx cycle "*) echo "a long run (test-cycle.sh and test-cycle-checkpoint.sh cover cycle)" ;;
	./quickstart* | ./run-tests* | "export PATH="*) echo "the set-up itself" ;;
	"mkdir -p /mnt/vhd" | vhdxfs* | losetup* | mount* | umount* | ...* | cat\ /mnt/vhd/*)
		echo "mounts on /mnt of a shared machine (test-fuse-*.sh cover vhdxfs)" ;;
	*/tmp/vms.sock*) echo "a VM folder served over NBD (test-nbd-source.sh covers NBD sources)" ;;
	"nbdkit "*" curl url=https://"* | *"socket=/tmp/s'"*)
		echo "an HTTPS server that is not here (test-nbdkit-filter.sh covers the filter over lighttpd)" ;;
	"vhdx mount "* | "vhdx umount "* | "ls /mnt/"* | "cp /mnt/"*)
		echo "mounts on /mnt of a shared machine (test-mount.sh covers vhdx mount)" ;;
	"nbdkit "*"vhdx file=disk.vhdx parent-dir=/vms/base"*) echo "the installed plugin, by name (not installed here)" ;;
	*) return 1 ;;
	esac
}

# A sanitizer build's plugin needs the ASan runtime loaded first into nbdkit
# (as in test-nbdkit.sh); the README's line itself is run as written.
NBD_PRELOAD=
if grep -Eq '^SAN_CFLAGS = .*sanitize' "$top_builddir/Makefile" 2>/dev/null; then
	cc=$(sed -n 's/^CC = //p' "$top_builddir/Makefile")
	NBD_PRELOAD=$($cc -print-file-name=libasan.so 2>/dev/null)
	[ -f "$NBD_PRELOAD" ] || skip "sanitizer build: cannot find libasan.so of '$cc' to preload into nbdkit"
fi

# each line in a fresh copy of the world; nbdkit servers on a private socket, stopped after the block
ran=0 skipped=0 nbd_pid=
stop_nbd() {
	[ -n "$nbd_pid" ] && kill "$nbd_pid" 2> /dev/null
	for ((i = 0; i < 50; i++)); do [ -n "$nbd_pid" ] && kill -0 "$nbd_pid" 2> /dev/null || break; sleep 0.1; done
	nbd_pid=
}
cleanup_fn stop_nbd
R=$T/run
while IFS= read -r line; do
	if why=$(skip_reason "$line"); then
		echo "skipped: $line   ($why)"
		skipped=$((skipped + 1))
		continue
	fi
	case "$line" in
	nbdkit\ *)
		# the first nbdkit line: a fresh world, the server kept for the nbdcopy line after it
		command -v nbdkit > /dev/null || { echo "skipped: $line (nbdkit is not installed)"; continue; }
		[ -f "$top_builddir/nbdkit/.libs/nbdkit-vhdx-plugin.so" ] ||
			skip "the nbdkit plugin was not built (Debian: nbdkit-plugin-dev); the other README lines passed"
		rm -rf "$R"; cp -a "$W" "$R"; ln -s "$top_builddir" "$R/build"
		cmd=${line//\/tmp\/sock/$T/sock}
		cmd=${cmd/nbdkit /nbdkit -P $T/nbd.pid }
		if [ -n "$NBD_PRELOAD" ]; then
			(cd "$R" && LD_PRELOAD=$NBD_PRELOAD ASAN_OPTIONS=detect_leaks=0 eval "$cmd") > out 2>&1
		else
			(cd "$R" && eval "$cmd") > out 2>&1
		fi || fail "README line failed: $line: $(cat out)"
		for ((i = 0; i < 50; i++)); do [ -S "$T/sock" ] && break; sleep 0.1; done
		nbd_pid=$(cat "$T/nbd.pid" 2> /dev/null)
		[ -S "$T/sock" ] && [ -n "$nbd_pid" ] || fail "README line: no server: $line: $(cat out)"
		;;
	nbdcopy\ *)
		command -v nbdcopy > /dev/null || { echo "skipped: $line (nbdcopy is not installed)"; stop_nbd; continue; }
		[ -n "$nbd_pid" ] || fail "README: nbdcopy without the server of the line before"
		rm -f "$R/disk.raw"
		cmd=${line//\/tmp\/sock/$T/sock}
		(cd "$R" && eval "$cmd") > out 2>&1 || fail "README line failed: $line: $(cat out)"
		stop_nbd
		vhdx convert -O raw "$R/checkpoint.avhdx" want.raw || fail "convert"
		cmp -s "$R/disk.raw" want.raw || fail "the README's nbdkit + nbdcopy lines did not copy the chain's bytes"
		nbd_ok=1
		;;
	*)
		rm -rf "$R"; cp -a "$W" "$R"
		# an example that creates FILE (create, convert DST) starts without it
		set -- $line
		case "$2" in
		create | convert) last=${*: -1}; [ "$last" != - ] && [ "$last" != /dev/null ] && rm -f "$R/$last" ;;
		esac
		(cd "$R" && eval "$line") > out 2>&1
		rc=$?
		case "$line" in
		"vhdx verify"* | "vhdx diff"* | "vhdx checkpoints"*) [ $rc -eq 0 ] || [ $rc -eq 3 ] ;;
		# the fault-injection example fails the read its rule names, as it should
		"vhdx --faults rules"*) [ $rc -eq 1 ] && grep -q "injected EIO" out ;;
		*) [ $rc -eq 0 ] ;;
		esac || fail "README line failed (exit $rc): $line: $(cat out)"
		;;
	esac
	ran=$((ran + 1))
done < lines.txt
stop_nbd
[ "${nbd_ok:-0}" = 1 ] || { command -v nbdkit > /dev/null && command -v nbdcopy > /dev/null && fail "the nbdkit example did not run"; }
[ "$ran" -ge 25 ] || fail "only $ran README lines ran"
pass "the README's command lines: $ran run as written (the nbdkit example included), $skipped skipped with their reason"
