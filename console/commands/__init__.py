"""One module per `unik` command; each defines COMMAND = registry.Command(...).

Adding a command is adding a file here (e.g. bench.py): console/registry.py
discovers the modules.  Keep module-level imports light (no rich, no
prompt_toolkit, no pyelftools): they are imported whenever `unik` starts.
"""
