"""Primitive rules by family: each module defines primitives with `mytorch.functional.primitive`."""
