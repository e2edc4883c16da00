"""Program helpers, one module per kernel subsystem (threads, log, heap)
plus the disassembler; each reads the kernel's own data structures through
a Program, so they work the same on a core and live."""
