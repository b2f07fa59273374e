#!/usr/bin/env bash
# Memory does not grow with the data set: fit on a 20 million row HDF5 file (880 MB) keeps its peak
# resident memory under 1 GB (summary.json's peak_rss_mb, from getrusage).
source "$(dirname "$0")/e2e_lib.sh"
"$DPTRAIN" synth --rows 20000000 --features 10 --targets 1 -o big.h5 >/dev/null 2>&1 || { fail "synth"; finish; }
cat >mem.cfg <<'CFG'
name = "mem20m";
data = { file = "big.h5"; validation_split = 0.01; normalize = "standard"; };
model = ( { type = "dense"; units = 16; activation = "relu"; }, { type = "dense"; units = 1; } );
fit = { epochs = 1; batch_size = 8192; loss = "mse"; metrics = ["mae"]; optimizer = { name = "adam"; }; };
CFG
"$DPTRAIN" fit mem.cfg --run-dir run >fit.log 2>&1 || { fail "fit: $(tail -3 fit.log)"; finish; }
rss=$(sed -n 's/.*"peak_rss_mb": \([0-9.]*\).*/\1/p' run/summary.json)
echo "peak RSS: $rss MB for $(du -m big.h5 | cut -f1) MB of data"
holds "$rss" 'v > 0 && v < 1024' && pass "peak memory $rss MB < 1024 MB" || fail "peak memory $rss MB"
finish
