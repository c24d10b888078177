"""Data: the differential rules (ops.toml) and the element-wise table (elementwise.toml)."""
