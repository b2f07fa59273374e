#!/usr/bin/env bash
# Out of space while writing: a checkpoint, a data set or predictions that cannot be written end
# the run with one error line and exit 1 (not a crash); what was on disk before stays as it was,
# no temporary file is left behind, and --resume auto continues once there is room, ending
# bit-identical to a run that never failed. A file-size limit (ulimit -f, with SIGXFSZ ignored so
# writes fail with EFBIG) stands in for a full disk anywhere; where tmpfs can be mounted (root),
# a really full file system (ENOSPC) is tried too.
source "$(dirname "$0")/e2e_lib.sh"

cat >df.cfg <<'CFG'
name = "disk_full";
data = { source = "synthetic"; synthetic = { rows = 4096; features = 10; targets = 1; }; };
model = ( { type = "dense"; units = 200; activation = "relu"; },
          { type = "dense"; units = 200; activation = "relu"; },
          { type = "dense"; units = 1; } );
fit = { seed = 1; epochs = 6; batch_size = 256; loss = "mse"; optimizer = "adam";
        checkpoint = { monitor = "loss"; mode = "min"; }; };
CFG
layers=(dense dense_1 dense_2) # for same_weights
# limited KB CMD...: CMD may write files of at most KB kilobytes (its checkpoints are 513 KB)
limited() { (trap '' XFSZ; ulimit -f "$1"; shift; "$@"); }
# no_temporaries DIR: no *.tmp* file left in DIR
no_temporaries() {
  local left
  left=$(find "$1" -name '*.tmp*' | head -3)
  [ -z "$left" ] && pass "$2: no temporary file left" || fail "$2: temporary files left: $left"
}

"$DPTRAIN" fit df.cfg --run-dir straight >straight.log 2>&1 || fail "uninterrupted run: $(tail -2 straight.log)"

# 1. A checkpoint that does not fit: the earlier ones stay, and the run resumes from them.
"$DPTRAIN" fit df.cfg --run-dir r --set fit.epochs=2 >r1.log 2>&1 || fail "2-epoch run: $(tail -2 r1.log)"
before=$(cksum r/last.h5 r/best.h5)
expect_error 1 "(disk full?)" limited 300 "$DPTRAIN" fit df.cfg --run-dir r --resume auto
[ "$(cksum r/last.h5 r/best.h5)" = "$before" ] && pass "checkpoint: last.h5 and best.h5 untouched" ||
  fail "checkpoint: last.h5 or best.h5 changed by the failed write"
no_temporaries r checkpoint
"$DPTRAIN" fit df.cfg --run-dir r --resume auto >r3.log 2>&1 || fail "resume with room again: $(tail -2 r3.log)"
same_weights straight/last.h5 r/last.h5 && pass "checkpoint: resumed with room, bit-identical to the uninterrupted run" ||
  fail "checkpoint: the resumed run's weights differ from the uninterrupted run's"

# 2. Data sets (synth, import, shard share the writer) and predictions: nothing half-written.
expect_error 1 "disk full?" limited 1000 "$DPTRAIN" synth --rows 1000000 --features 10 -o big.h5
[ ! -e big.h5 ] && pass "synth: no big.h5" || fail "synth: a partial big.h5 is left"
"$DPTRAIN" synth --rows 50000 --features 10 --seed 4 -o rows.h5 >/dev/null || fail "synth rows.h5"
for out in pred.csv pred.h5; do
  echo old >"$out"
  expect_error 1 "disk full?" limited 100 "$DPTRAIN" predict df.cfg --weights straight/best.h5 --data rows.h5 -o "$out"
  [ "$(cat "$out")" = old ] && pass "predict: the earlier $out untouched" || fail "predict: $out was changed"
done
no_temporaries . "data sets and predictions"

# 3. A real full file system, where one can be mounted.
mkdir small
if mount -t tmpfs -o size=1300k tmpfs small 2>/dev/null; then
  # room for last.h5 and best.h5 of epoch 1 (513 KB each), not for another temporary
  expect_error 1 "not written: HDF5 failed to flush it (disk full?)" "$DPTRAIN" fit df.cfg --run-dir small/r
  "$DPTRAIN" inspect small/r/last.h5 >/dev/null 2>&1 && pass "tmpfs: last.h5 still loads" || fail "tmpfs: last.h5 damaged"
  no_temporaries small tmpfs
  umount small
else
  echo "note: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN): the ENOSPC case is left out"
fi
finish
