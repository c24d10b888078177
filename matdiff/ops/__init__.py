"""The op registry: everything that is particular to one operation.

`registry` loads rules/*.toml into Op objects that every stage looks up
(spellings, shape rule, domain, differential and pullback, printing, code per
backend); `rewrites` is the table of named simplifications, by phase. No
module outside this package names an op (tests/test_registry.py holds that).
"""
