#!/usr/bin/env bash
# Count instructions (and, with --cache-sim, simulated cache misses) of the
# measured calls of drive.py only: collection is on inside Kernel.step (grid) or
# Kernel.run_batch (troubleshooting), off while Python starts and builds the kernel.
#
#   benchmarks/profile/callgrind.sh OUT grid --shape spread
#   CACHE=1 benchmarks/profile/callgrind.sh OUT troubleshooting --runs 20000
#   DUMP_INSTR=1 benchmarks/profile/callgrind.sh OUT grid   (then asm_counts.py)
#
# Writes OUT.callgrind (open with callgrind_annotate / kcachegrind) and prints
# the totals and the top functions. Needs valgrind (apt-get install valgrind).
set -euo pipefail
out=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
# profile the checkout this script lives in, not whatever swarm_engine is installed
root=$(cd "$here/../.." && pwd)
cache=()
if [[ "${DUMP_INSTR:-0}" == 1 ]]; then
    cache+=(--dump-instr=yes)   # per machine instruction, for asm_counts.py
fi
if [[ "${CACHE:-0}" == 1 ]]; then
    # the development machine: 32 KiB 8-way L1d, 32 MiB 16-way L3 (its LL)
    cache+=(--cache-sim=yes --branch-sim=no --D1=32768,8,64 --LL=33554432,16,64)
fi
# callgrind honours one --toggle-collect: the call each workload measures
case "$1" in
    troubleshooting) call=run_batch ;;
    *) call=step ;;
esac
# pyenv-style shims are scripts: valgrind must start the interpreter itself
py=$(python -c "import sys; print(sys.executable)")
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" OPENBLAS_NUM_THREADS=1 PYTHONMALLOC=malloc valgrind --tool=callgrind "${cache[@]}" \
    --callgrind-out-file="$out.callgrind" --collect-atstart=no \
    --toggle-collect="__pyx_pw_*_6Kernel_*$call" \
    "$py" "$here/drive.py" "$@" 2> "$out.log"
callgrind_annotate --inclusive=no "$out.callgrind" 2>/dev/null | head -40
