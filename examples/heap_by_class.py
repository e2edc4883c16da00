"""Sum heap use by size class (kernel/mm/heap.c's counters, through
introspect/helpers/heap.py).  `--json` prints the rows as JSON.

    unik py NAME examples/heap_by_class.py
    unik py --core CORE examples/heap_by_class.py --json
"""
import json
import sys

from introspect.helpers.heap import heap_stats

st = heap_stats(prog)
small = [c for c in st["classes"] if c["size"]]
if "--json" in sys.argv[1:]:
    print(json.dumps(st, indent=2))
else:
    print(f"{'class':>6} {'in use':>7} {'bytes':>9} {'allocs':>8} {'frees':>8}")
    for c in st["classes"]:
        name = f"{c['size']}" if c["size"] else "large"
        print(f"{name:>6} {c['in_use']:>7} {c['bytes_in_use'] if c['size'] else '-':>9} "
              f"{c['allocs']:>8} {c['frees']:>8}")
    in_classes = sum(c["bytes_in_use"] for c in small)
    print(f"small classes: {in_classes} bytes in {sum(c['in_use'] for c in small)} objects")
    print(f"heap: {st['bytes_used']} of {st['bytes_total']} bytes in use "
          f"(the rest of the used bytes are large, page-backed blocks)")
