#!/bin/bash
# test-fuse-crash.sh - kill -9 of vhdxfs during a write workload: every write
# that fsync() acknowledged must be in the image afterwards.
#
# A writer (python3, below) writes records through MNT/disk of a rw mount.
# Record N has a deterministic place, length (512 B to 4 KiB, often not
# 4 KiB aligned) and contents (magic, N, length, pseudo-random bytes from N,
# sha256 of all that), in a slot of its own, so no record overwrites
# another.  Records go out in batches of 1 to 4 followed by one fsync; the
# writer logs "W N" before writing record N and "S N" for every record of a
# batch only AFTER its fsync returned.  vhdxfs is killed with SIGKILL after
# a delay, the dead mount is cleared with `fusermount3 -u -z`, and then:
#   - `vhdx convert` (a read-only open: a dirty log is replayed in memory,
#     the file is not touched) reads a disk in which every "S" record is
#     intact and every byte outside the "W" records is zero;
#   - `vhdx replay` on a copy replays the log into the file, after which the
#     headers hold no LogGuid, `qemu-img check` is clean and the copy reads
#     the same bytes, also through a read-only vhdxfs mount.
# Three rounds with different kill delays; two more kill the mount of a
# chain leaf, whose base must stay unchanged.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_fuse
requires python3 qemu-img
MiB=1048576
MNT="$T/mnt"
mkdir -p "$MNT"

cat > "$T/records.py" <<'EOF'
# records.py write DISK LOG | check RAW LOG: see test-fuse-crash.sh
import hashlib, os, random, struct, sys

SLOT = 8192
MAGIC = b"VHDXREC1"

def place(n, nslots):
    # 4099 is prime: n -> n * 4099 mod nslots visits every slot once.
    slot = (n * 4099) % nslots
    length = 512 * (1 + n % 8)
    return slot * SLOT + 512 * (n % 7) + (n % 5) * 3, length

def record(n, length):
    head = MAGIC + struct.pack("<QQ", n, length)
    body = random.Random(n).randbytes(length - len(head) - 32)
    return head + body + hashlib.sha256(head + body).digest()

def write(disk, logpath):
    fd = os.open(disk, os.O_RDWR)
    nslots = os.fstat(fd).st_size // SLOT
    log = open(logpath, "w")
    n = 0
    try:
        while n < nslots:
            batch = range(n, min(n + 1 + n % 4, nslots))
            for i in batch:
                log.write("W %d\n" % i)
                log.flush()
                off, length = place(i, nslots)
                if os.pwrite(fd, record(i, length), off) != length:
                    raise OSError("short write of record %d" % i)
            os.fsync(fd)
            # Only now are the batch's records durable.
            log.write("".join("S %d\n" % i for i in batch))
            log.flush()
            n = batch[-1] + 1
        print("wrote all %d records before the kill" % n)
    except OSError as e:
        print("writer stopped after %d records: %s" % (n, e))

def check(raw, logpath):
    size = os.path.getsize(raw)
    nslots = size // SLOT
    written, synced = set(), set()
    for line in open(logpath):
        kind, n = line.split()
        (written if kind == "W" else synced).add(int(n))
    data = open(raw, "rb").read()
    bad = []
    for n in sorted(synced):
        off, length = place(n, nslots)
        got = data[off:off + length]
        if got != record(n, length):
            why = "checksum ok, wrong record" if hashlib.sha256(got[:-32]).digest() == got[-32:] else "bad checksum"
            bad.append("record %d at %d (%d bytes): %s" % (n, off, length, why))
    # Everything outside the written records must still be zero.
    rest = bytearray(data)
    for n in written:
        off, length = place(n, nslots)
        rest[off:off + length] = bytes(length)
    if rest != bytes(size):
        first = next(i for i in range(size) if rest[i])
        bad.append("non-zero byte at %d outside every written record" % first)
    for b in bad[:10]:
        print("BAD:", b)
    print("%d records fsync'd, %d written, %d bad" % (len(synced), len(written), len(bad)))
    sys.exit(1 if bad else 0)

{"write": write, "check": check}[sys.argv[1]](sys.argv[2], sys.argv[3])
EOF

# crash_round LABEL IMAGE DELAY [VHDXFS-OPTIONS...]: mounts IMAGE rw, runs
# the writer, kills vhdxfs after DELAY seconds, checks the image.
crash_round() {
	local label=$1 img=$2 delay=$3 wpid i
	shift 3
	fuse_mount "$MNT" "$img" -o rw "$@"
	rm -f "$T/log"
	python3 "$T/records.py" write "$MNT/disk" "$T/log" > "$T/writer.out" 2>&1 &
	wpid=$!
	# The delay counts from the first fsync'd record (python may be slow to start on a busy machine).
	for ((i = 0; i < 200; i++)); do
		grep -q "^S " "$T/log" 2>/dev/null && break
		kill -0 "$wpid" 2>/dev/null || break
		sleep 0.05
	done
	grep -q "^S " "$T/log" 2>/dev/null || fail "$label: the writer fsync'd no record in 10 s: $(cat "$T/writer.out")"
	# Kill after DELAY, or earlier when 3/4 of the 8192 slots are used (a fast machine).
	local until_us=$((${EPOCHREALTIME/./} + 10#${delay/./} * 100000)) # DELAY has one decimal
	while ((${EPOCHREALTIME/./} < until_us)) && (($(grep -c "^S " "$T/log") < 6144)); do sleep 0.05; done
	kill -0 "$wpid" 2>/dev/null || fail "$label: the writer ended before the kill: $(cat "$T/writer.out")"
	kill -9 "$FUSE_PID"
	local ms=$(((${EPOCHREALTIME/./} - until_us) / 1000 + 10#${delay/./} * 100))
	wait "$FUSE_PID" 2>/dev/null
	FUSE_PID=
	fusermount3 -u -z "$MNT" 2> "$T/err" || fail "$label: fusermount3 -u -z: $(cat "$T/err")"
	wait "$wpid" || fail "$label: writer: $(cat "$T/writer.out")"
	grep -q "^writer stopped" "$T/writer.out" || fail "$label: $(cat "$T/writer.out")"
	fuse_is_mounted "$MNT" && fail "$label: still mounted after fusermount3 -u -z"

	# The read-only open replays the log in memory and must not touch the file.
	local sha
	sha=$(sha256_stdin < "$img")
	"$VHDX" convert -O raw "$img" "$T/crash.raw" 2> "$T/err" || fail "$label: vhdx convert: $(cat "$T/err")"
	expect_eq "$label: image sha256 after a read-only open" "$(sha256_stdin < "$img")" "$sha"
	python3 "$T/records.py" check "$T/crash.raw" "$T/log" > "$T/check.out" ||
		fail "$label: $(cat "$T/check.out")"
	local counts
	counts=$(tail -n 1 "$T/check.out")
	if [ "$label" = "$FIRST_ROUND" ]; then
		# The check must be able to fail: a byte of record 0 (always fsync'd
		# first), then the disk's last byte (never inside a record), changed.
		cp "$T/crash.raw" "$T/bad.raw"
		printf '\377' | dd of="$T/bad.raw" bs=1 seek=100 conv=notrunc status=none
		python3 "$T/records.py" check "$T/bad.raw" "$T/log" > "$T/bad.out" && fail "the check missed a damaged record"
		grep -q "BAD: record 0 at 0 (512 bytes): bad checksum" "$T/bad.out" || fail "damaged record: $(cat "$T/bad.out")"
		cp "$T/crash.raw" "$T/bad.raw"
		printf '\001' | dd of="$T/bad.raw" bs=1 seek=$((64 * MiB - 1)) conv=notrunc status=none
		python3 "$T/records.py" check "$T/bad.raw" "$T/log" > "$T/bad.out" && fail "the check missed a stray byte"
		grep -q "BAD: non-zero byte at $((64 * MiB - 1)) outside" "$T/bad.out" || fail "stray byte: $(cat "$T/bad.out")"
		rm -f "$T/bad.raw"
		pass "the record check finds a damaged record and a stray byte"
	fi

	cp "$img" "$T/copy.vhdx"
	"$VHDX" replay "$T/copy.vhdx" > "$T/replay.out" 2>&1 || fail "$label: vhdx replay: $(cat "$T/replay.out")"
	expect_eq "$label: LogGuids after vhdx replay" \
		"$("$VHDX" info --no-parent "$T/copy.vhdx" | sed -n 's/^ *log_guid: //p' | sort -u)" \
		00000000-0000-0000-0000-000000000000
	if [ -z "$*" ]; then
		qemu-img check -f vhdx "$T/copy.vhdx" > "$T/qcheck" 2>&1 || fail "$label: qemu-img check after replay: $(cat "$T/qcheck")"
	fi
	# The replayed copy beside the original, so that a chain leaf finds its parent.
	mv "$T/copy.vhdx" "$img.replayed"
	fuse_mount "$MNT" "$img.replayed" "$@"
	expect_eq "$label: sha256 of the replayed copy mounted read-only" "$(sha256_stdin < "$MNT/disk")" "$(sha256_stdin < "$T/crash.raw")"
	fuse_unmount "$MNT"
	rm -f "$img.replayed" "$T/crash.raw"
	local replayed
	replayed=$(sed -n 's/.*: \(replayed [0-9]* entr[a-z]*\) .*/\1/p; s/.*: \(log is clean\).*/\1/p' "$T/replay.out")
	pass "$label: killed after $ms ms: $counts; vhdx replay: ${replayed:-?}; $( [ -z "$*" ] && echo "qemu-img check clean, " )read-only remount agrees"
}

start=$SECONDS
FIRST_ROUND="dynamic VHDX, round 1"
round=0
for delay in 0.5 1.0 2.0; do
	round=$((round + 1))
	img="$T/crash$round.vhdx"
	"$VHDX" create --size 64M --block-size 1M "$img" > /dev/null || fail "vhdx create"
	crash_round "dynamic VHDX, round $round" "$img" "$delay"
	rm -f "$img"
done

# A chain leaf: the killed mount must not have touched the base.
"$VHDX" create --size 64M --block-size 4M "$T/base.vhdx" > /dev/null || fail "vhdx create base"
base_sha=$(sha256 "$T/base.vhdx")
for delay in 0.7 1.3; do
	round=$((round + 1))
	(cd "$T" && "$VHDX" create --force --parent base.vhdx leaf.avhdx > /dev/null) || fail "vhdx create --parent"
	crash_round "chain leaf, round $round" "$T/leaf.avhdx" "$delay" -o "parent-dir=$T"
	expect_eq "base sha256 after the killed rw mount of its child" "$(sha256 "$T/base.vhdx")" "$base_sha"
done
echo "# $round rounds in $((SECONDS - start)) s"
