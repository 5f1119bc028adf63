"""The pure core: facts, merge, policy, caller, NHS numbers, error codes; no I/O, no imports
of the rest of the project."""
