#!/usr/bin/env bash
# The folders of src/ are layers; a file may include headers of its own folder and of the folders
# below it, never above or beside:
#   base < net < cuda < data < job < dist, keras < train, slurm < cmd
# (cuda/ implements net's backend interface; dist picks the backend and binds devices; keras/
# turns jobs and models into Keras' files and back.)
# Prints every include that points up or sideways, and exits 1 if any. The headers of cuda/ are
# included by name alone (its folder is on the include path of what links it): only dist/ does.
#   tools/check-layers.sh
cd "$(dirname "$0")/.." || exit 2
declare -A level=([base]=1 [net]=2 [cuda]=3 [data]=4 [job]=5 [dist]=6 [keras]=6 [train]=7 [slurm]=7 [cmd]=8)
bad=0
while IFS=: read -r file _ line; do
  from=${file#src/}; from=${from#cuda/}
  case $file in cuda/*) from=cuda ;; *) from=${from%%/*} ;; esac
  to=$(sed -n 's/.*#include "\([a-z]*\)\/.*/\1/p' <<<"$line")
  [ -n "$to" ] && [ -n "${level[$to]:-}" ] || continue
  if [ "$to" != "$from" ] && [ "${level[$to]}" -ge "${level[$from]}" ]; then
    echo "$file: $line  ($from may not include $to)"
    bad=1
  fi
done < <(grep -n '#include "[a-z]*/' src/*/*.[ch] cuda/*.cu cuda/*.h cuda/*.c 2>/dev/null)
# cuda/'s headers by name: from dist/ (and cuda/ itself) only
for h in $(cd cuda && ls *.h); do
  while IFS=: read -r file _; do
    case $file in src/dist/*) ;; *) echo "$file: includes cuda/$h (only dist may)"; bad=1 ;; esac
  done < <(grep -ln "#include \"$h\"" src/*/*.[ch] 2>/dev/null | sed 's/$/:/')
done
exit $bad
