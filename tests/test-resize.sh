#!/bin/bash
# test-resize.sh - vhdx resize on real files.  VHDX: grow inside the BAT
# region and past it (the BAT moves), shrink; the new size is exact (`vhdx
# info --json` and `qemu-img info`), the old content intact, the new area
# zeros, writes past the old end work (read back by us and by qemu-io),
# qemu-img check is clean.  VHD: fixed and dynamic grow.  Refusals carry
# exact messages.  A power cut during a grow leaves the old or the new size
# with the old content.
. "${top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires qemu-img qemu-io sha256sum python3 cmp
cd "$T"

MiB=1048576
head -c 8M /dev/urandom > rnd
put() { head -c "$3" rnd | "$VHDX" write --offset "$2" "$1" || fail "write $1 at $2"; }
vsize() { "$VHDX" info --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual_size"])'; }
qsize() { qemu-img info --output=json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }
raw() { "$VHDX" convert -O raw "$1" "$2" || fail "convert $1"; }
# same_prefix A B N: the first N bytes of A and B are equal
same_prefix() { cmp -s -n "$3" "$1" "$2"; }
# zero_from FILE OFF: FILE holds only zeros from byte OFF on
zero_from() { [ "$(tail -c +$(($2 + 1)) "$1" | tr -d '\0' | wc -c)" = 0 ]; }

# ---- VHDX grow within the BAT region
"$VHDX" create --size 40M --block-size 1M g.vhdx > /dev/null || fail "create"
put g.vhdx 0 3M
put g.vhdx $((39 * MiB + 512)) 4096
raw g.vhdx old.raw
"$VHDX" resize --size 100M --json g.vhdx > r.json || fail "resize to 100M"
expect_eq "vhdx info size" "$(vsize g.vhdx)" 104857600
expect_eq "qemu-img size" "$(qsize g.vhdx)" 104857600
expect_eq "bat relocated" "$(python3 -c 'import json; print(json.load(open("r.json"))["bat_relocated"])')" False
raw g.vhdx new.raw
expect_eq "raw size" "$(stat -c %s new.raw)" 104857600
same_prefix old.raw new.raw $((40 * MiB)) || fail "old content changed by the grow"
zero_from new.raw $((40 * MiB)) || fail "the new area is not zero"
check_clean g.vhdx "after grow"
qemu-img check g.vhdx > q.out 2>&1 || fail "qemu-img check after grow: $(cat q.out)"
printf 'Z%.0s' $(seq 512) | "$VHDX" write --offset $((90 * MiB)) g.vhdx || fail "write past the old end"
qemu-io -f vhdx -c "read -P 0x5a $((90 * MiB)) 512" g.vhdx | grep -q "read 512/512" || fail "qemu-io reads the write past the old end"
qemu-img check g.vhdx > /dev/null 2>&1 || fail "qemu-img check after writing past the old end"
pass "VHDX grows 40M -> 100M: exact size, old content, zeros, writes past the old end (qemu agrees)"

# ---- VHDX grow past what the BAT region holds: the BAT moves
cp old.raw keep.raw
"$VHDX" create --size 40M --block-size 1M b.vhdx > /dev/null || fail "create b"
put b.vhdx 0 3M
fsize=$(stat -c %s b.vhdx)
"$VHDX" resize --size 200G --json b.vhdx > rb.json || fail "resize to 200G"
expect_eq "bat relocated (200G)" "$(python3 -c 'import json; print(json.load(open("rb.json"))["bat_relocated"])')" True
expect_eq "vhdx info size (200G)" "$(vsize b.vhdx)" 214748364800
expect_eq "qemu-img size (200G)" "$(qsize b.vhdx)" 214748364800
# 204800 payload + 49 bitmap entries: 2 MiB of BAT at the old end of the file
expect_eq "file size after the BAT moved" "$(stat -c %s b.vhdx)" $((fsize + 2 * MiB))
check_clean b.vhdx "after BAT relocation"
qemu-img check b.vhdx > q.out 2>&1 || fail "qemu-img check after BAT relocation: $(cat q.out)"
printf 'Z%.0s' $(seq 512) | "$VHDX" write --offset $((150 * 1024 * MiB)) b.vhdx || fail "write at 150G"
qemu-io -f vhdx -c "read -P 0x5a $((150 * 1024 * MiB)) 512" b.vhdx | grep -q "read 512/512" || fail "qemu-io at 150G"
"$VHDX" convert -O raw --length 40M b.vhdx b.raw 2> /dev/null || "$VHDX" convert -O raw b.vhdx - | head -c 40M > b.raw
head -c 3M rnd | cmp -s - <(head -c 3M b.raw) || fail "old content after BAT relocation"
qemu-img check b.vhdx > /dev/null 2>&1 || fail "qemu-img check after a write at 150G"
pass "VHDX grows 40M -> 200G: the BAT moves (2 MiB at the end), qemu-img agrees, writes at 150G work"

# ---- VHDX shrink: refused past data, done otherwise
expect_fail_msg "^vhdx resize: cannot shrink b.vhdx to 104857600 bytes: block 153600 \(virtual offset 161061273600\) past the new end is allocated \(file offset 0x[0-9a-f]+\); 'vhdx compact' frees it if it holds only zeros$" \
	"$VHDX" resize --size 100M b.vhdx
"$VHDX" create --size 64M --block-size 1M s.vhdx > /dev/null || fail "create s"
put s.vhdx 0 5M
raw s.vhdx s-old.raw
"$VHDX" resize --size 10M s.vhdx > /dev/null || fail "shrink to 10M"
expect_eq "size after shrink" "$(vsize s.vhdx)" 10485760
expect_eq "qemu size after shrink" "$(qsize s.vhdx)" 10485760
raw s.vhdx s-new.raw
same_prefix s-old.raw s-new.raw $((10 * MiB)) || fail "content after shrink"
check_clean s.vhdx "after shrink"
qemu-img check s.vhdx > /dev/null 2>&1 || fail "qemu-img check after shrink"
"$VHDX" resize --size 20M s.vhdx > /dev/null || fail "grow after shrink"
raw s.vhdx s-re.raw
zero_from s-re.raw $((10 * MiB)) || fail "area past a shrink then grow is not zero"
pass "VHDX shrinks when nothing is allocated past the new end, refuses otherwise (naming the block)"

# ---- a power cut during a grow: old or new size, old content
for n in 1 2 3 4 6; do
	rm -f c.vhdx
	"$VHDX" create --size 40M --block-size 1M c.vhdx > /dev/null
	put c.vhdx 0 3M
	echo "op=write nth=$n crash" > rules
	"$VHDX" --faults rules resize --size 300G c.vhdx > /dev/null 2>&1 && fail "resize survived a crash at write $n"
	s=$(vsize c.vhdx)
	[ "$s" = 41943040 ] || [ "$s" = 322122547200 ] || fail "size after a crash at write $n: $s"
	"$VHDX" convert -O raw c.vhdx - | head -c 3M | cmp -s - <(head -c 3M rnd) || fail "content after a crash at write $n"
	"$VHDX" resize --size 300G c.vhdx > /dev/null || fail "resize again after crash $n"
	expect_eq "size after resizing again ($n)" "$(vsize c.vhdx)" 322122547200
	check_clean c.vhdx "after crash $n"
	qemu-img check c.vhdx > /dev/null 2>&1 || fail "qemu-img check after crash $n"
done
pass "power cuts at writes 1-6 of a grow with BAT relocation: old or new size, content intact"

# ---- VHD
"$VHDX" create --type fixed --size 10M f.vhd > /dev/null || fail "create fixed vhd"
put f.vhd 0 10M
raw f.vhd f-old.raw
"$VHDX" resize --size 25M f.vhd > /dev/null || fail "grow fixed VHD"
expect_eq "fixed VHD size" "$(vsize f.vhd)" 26214400
expect_eq "fixed VHD file size" "$(stat -c %s f.vhd)" $((25 * MiB + 512))
raw f.vhd f-new.raw
same_prefix f-old.raw f-new.raw $((10 * MiB)) || fail "fixed VHD content"
zero_from f-new.raw $((10 * MiB)) || fail "fixed VHD new area"
"$VHDX" create --size 10M --block-size 2M d.vhd > /dev/null || fail "create dynamic vhd"
put d.vhd $((9 * MiB)) 1M
raw d.vhd d-old.raw
"$VHDX" resize --size 100M d.vhd > /dev/null || fail "grow dynamic VHD"
expect_eq "dynamic VHD size" "$(vsize d.vhd)" 104857600
raw d.vhd d-new.raw
same_prefix d-old.raw d-new.raw $((10 * MiB)) || fail "dynamic VHD content"
zero_from d-new.raw $((10 * MiB)) || fail "dynamic VHD new area"
put d.vhd $((70 * MiB)) 4096
raw d.vhd d-w.raw
head -c 4096 rnd | cmp -s - <(tail -c +$((70 * MiB + 1)) d-w.raw | head -c 4096) || fail "write past the old end of a VHD"
qemu-img convert -f vpc -O raw d.vhd dq.raw || fail "qemu-img convert of the grown VHD"
# qemu takes the size of a VHD of this creator from the CHS geometry (a little under 100M): compare that much
[ "$(stat -c %s dq.raw)" -gt $((99 * MiB)) ] || fail "qemu-img sees a grown VHD of only $(stat -c %s dq.raw) bytes"
same_prefix d-w.raw dq.raw "$(stat -c %s dq.raw)" || fail "qemu-img reads the grown dynamic VHD differently"
pass "VHD: fixed 10M -> 25M and dynamic 10M -> 100M grow, content and zeros right, qemu-img agrees"
expect_fail_msg "^vhdx resize: cannot grow d.vhd to 1073741824 bytes: its BAT at 0x[0-9a-f]+ has 50 entries \(max table entries\) and needs 512, but the space after it ends at 0x[0-9a-f]+ \(the first block or other data\); convert the image instead$" \
	"$VHDX" resize --size 1G d.vhd
expect_fail_msg "^vhdx resize: cannot shrink f.vhd from 26214400 to 10485760 bytes: shrinking a VHD is not supported$" \
	"$VHDX" resize --size 10M f.vhd

# ---- refusals
"$VHDX" create --parent g.vhdx ch.avhdx > /dev/null || fail "create child"
expect_fail_msg "^vhdx resize: ch.avhdx is a differencing image: its virtual size must stay its parent's \(104857600 bytes\)$" \
	"$VHDX" resize --size 200M ch.avhdx
expect_fail_msg "^vhdx resize: new size 1000 is not a positive multiple of the logical sector size \(512 bytes\)$" \
	"$VHDX" resize --size 1000 g.vhdx
expect_fail_msg "^vhdx resize: new size 71468255805440 is larger than the VHDX limit of 64 TiB$" \
	"$VHDX" resize --size 65T g.vhdx
"$VHDX" resize g.vhdx > /dev/null 2>&1; expect_eq "resize without --size" $? 2
"$VHDX" resize --size 0 g.vhdx > /dev/null 2>&1; expect_eq "resize --size 0" $? 2
pass "refusals: differencing, unaligned, too large, no size"
