/* Puts every type of the generated isa.h (the probe VM's layouts and
 * enums, from probes/isa.py) into the kernel's DWARF, whether or not code
 * uses it yet: the Makefile builds this file with
 * -fno-eliminate-unused-debug-types.  tests/test_drift.py compares those
 * DWARF types with probes/isa.py, as it does for wire.h. */
#include "isa.h"

/* A translation unit may not be empty (ISO C); this one holds nothing else. */
typedef int isa_dwarf_unit;
