"""Instructions executed per machine instruction of one function.

callgrind_annotate attributes an optimised -O3 build's costs to C lines only
roughly; this joins a callgrind file recorded with ``--dump-instr=yes``
(``DUMP_INSTR=1 callgrind.sh ...``) with ``objdump -d`` of the extension, so
register spills, hoisted loads and per-call prologues show up as what they
are. Self cost only (the cost of calls is left out).

    python benchmarks/profile/asm_counts.py OUT.callgrind \\
        swarm_engine/_native/_kernel.cpython-311-x86_64-linux-gnu.so _kernel__plan --min 100000
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess


def self_counts(callgrind: str, func: str) -> collections.Counter:
    """Ir per instruction address of the functions whose name ends with ``func``."""
    counts: collections.Counter = collections.Counter()
    names: dict[str, str] = {}
    in_fn = skip_call_cost = False
    last = 0
    with open(callgrind, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", line)
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                if line.startswith("fn="):
                    in_fn = names.get(m.group(1), "").endswith(func)
                continue
            if line.startswith("calls="):
                skip_call_cost = True        # the next cost line is the call's inclusive cost
                continue
            if not line or line[0] not in "0123456789+-*":
                continue
            pos = line.split()
            # positions: "instr line"; absolute addresses are hex, relative ones decimal
            a = pos[0]
            if a.startswith("0x"):
                last = int(a, 16)
            elif a[0] == "+":
                last += int(a[1:])
            elif a[0] == "-":
                last -= int(a[1:])
            if skip_call_cost:
                skip_call_cost = False
                continue
            if in_fn and len(pos) >= 3:
                counts[last] += int(pos[2])
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("callgrind")
    p.add_argument("shared_object")
    p.add_argument("function", help="the end of the symbol, e.g. _kernel__plan")
    p.add_argument("--min", type=int, default=1, help="hide instructions executed fewer times")
    args = p.parse_args()
    counts = self_counts(args.callgrind, args.function)
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", args.shared_object],
                         capture_output=True, text=True, check=True).stdout
    start = re.search(rf"^[0-9a-f]+ <[^>]*{re.escape(args.function)}>:$", dis, re.M)
    if start is None:
        raise SystemExit(f"no symbol ending in {args.function}")
    print(f"{sum(counts.values()):,} instructions executed in {args.function} (self)")
    for line in dis[start.end():].splitlines()[1:]:
        if not line.strip():
            break
        m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
        if m and counts.get(int(m.group(1), 16), 0) >= args.min:
            print(f"{counts[int(m.group(1), 16)]:>14,}  {m.group(1)}:  {m.group(2)}")


if __name__ == "__main__":
    main()
