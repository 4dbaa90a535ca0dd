"""The rules of the primitives, one module per family (mytorch.functional gathers them)."""
