#!/usr/bin/env bash
# Memory does not grow with the data set. The data in memory is the shuffle window, at most
# data.shuffle_buffer_mb; everything else (the epoch order included) is O(1) in the row count:
#  1. fit on a 20-million-row file (880 MB) with the default buffer stays under 1 GB;
#  2. at 2 M and 20 M rows, both larger than the buffer, peak memory is the same within 16 MB
#     (shuffled and normalized, and in file order);
#  3. a file declaring 10^12 rows (sparse: HDF5 never wrote its chunks) makes 3 steps in 10 s.
# Peak memory is summary.json's peak_rss_mb (getrusage).
source "$(dirname "$0")/e2e_lib.sh"

peak_rss() { sed -n 's/.*"peak_rss_mb": \([0-9.]*\).*/\1/p' "$1/summary.json"; }

"$DPTRAIN" synth --rows 20000000 --features 10 --targets 1 -o big.h5 >/dev/null 2>&1 || { fail "synth 20M"; finish; }
"$DPTRAIN" synth --rows 2000000 --features 10 --targets 1 -o small.h5 >/dev/null 2>&1 || { fail "synth 2M"; finish; }

cat >mem.cfg <<'CFG'
name = "mem20m";
data = { file = "big.h5"; validation_split = 0.01; normalize = "standard"; };
model = ( { type = "dense"; units = 16; activation = "relu"; }, { type = "dense"; units = 1; } );
fit = { epochs = 1; batch_size = 8192; loss = "mse"; metrics = ["mae"]; optimizer = { name = "adam"; }; };
CFG
if "$DPTRAIN" fit mem.cfg --run-dir run >fit.log 2>&1; then
  rss=$(peak_rss run)
  echo "peak RSS: $rss MB for $(du -m big.h5 | cut -f1) MB of data"
  holds "$rss" 'v > 0 && v < 1024' && pass "20 M rows, default buffer: peak memory $rss MB < 1024 MB" ||
    fail "20 M rows: peak memory $rss MB"
else
  fail "fit on 20 M rows: $(tail -3 fit.log)"
fi

# The probe's job: Dense 64 > 1, 300 steps of 256. 2 M rows of 44 stored bytes are 88 MB, more than
# the 32 MB buffer, so both sizes stream through windows of the same size.
cat >steps.cfg <<'CFG'
name = "steps";
data = { file = "small.h5"; shuffle_buffer_mb = 32; };
model = ( { type = "dense"; units = 64; activation = "relu"; }, { type = "dense"; units = 1; } );
fit = { epochs = 1; batch_size = 256; steps_per_epoch = 300; loss = "mse"; threads = 1; };
CFG
for mode in "shuffled,normalized:data.shuffle=true data.normalize=\"standard\"" "file order:data.shuffle=false"; do
  label=${mode%%:*}
  sets=()
  for s in ${mode#*:}; do sets+=(--set "$s"); done
  declare -A seen=()
  for file in small big; do
    dir="run-${file}-${label%%,*}"
    if "$DPTRAIN" fit steps.cfg --set "data.file=\"$file.h5\"" "${sets[@]}" --run-dir "$dir" >"$dir.log" 2>&1; then
      seen[$file]=$(peak_rss "$dir")
    else
      fail "$label, $file.h5: $(tail -3 "$dir.log")"
    fi
  done
  echo "$label: peak RSS ${seen[small]:-?} MB at 2 M rows, ${seen[big]:-?} MB at 20 M rows"
  if is_number "${seen[small]:-}" && holds "${seen[big]:-}" "v - ${seen[small]} < 16 && ${seen[small]} - v < 16"; then
    pass "$label: peak memory at 2 M and 20 M rows within 16 MB (${seen[small]}, ${seen[big]} MB)"
  else
    fail "$label: peak memory at 2 M rows ${seen[small]:-?} MB, at 20 M rows ${seen[big]:-?} MB"
  fi
  unset seen
done

if have_h5py; then
  /usr/bin/python3 - <<'PY' || fail "writing the sparse file"
import h5py
with h5py.File("huge.h5", "w") as f:
    f.create_dataset("train/x", shape=(10**12, 10), chunks=(4096, 10), dtype="f4")
    f.create_dataset("train/y", shape=(10**12, 1), chunks=(4096, 1), dtype="f4")
PY
  start=$(date +%s.%N)
  if timeout 120 "$DPTRAIN" fit steps.cfg --set 'data.file="huge.h5"' --set fit.steps_per_epoch=3 \
       --set data.shuffle_buffer_mb=256 --run-dir run-huge >huge.log 2>&1; then
    took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    rss=$(peak_rss run-huge)
    echo "10^12 rows: 3 steps in $took s, peak RSS $rss MB"
    grep -q "1000000000000 rows for training" huge.log && pass "10^12 rows declared and opened" ||
      fail "10^12 rows: $(grep -m1 Data: huge.log)"
    holds "$took" 'v < 10' && pass "10^12 rows: 3 steps in $took s" || fail "10^12 rows: 3 steps took $took s"
    holds "$rss" 'v < 1024' && pass "10^12 rows: peak memory $rss MB" || fail "10^12 rows: peak memory $rss MB"
  else
    fail "fit on 10^12 declared rows: $(tail -3 huge.log)"
  fi
else
  skip_part "the 10^12-row file is written with python3-h5py"
fi
finish
