//! C ABI for keyplane (in progress).
