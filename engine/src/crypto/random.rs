//! Randomness from AWS-LC's generator (a per-thread DRBG seeded from the operating system,
//! reseeded after fork).

use crate::error::{Error, Result};

/// Fills `out` with cryptographically secure random bytes.
pub fn fill(out: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(out)
        .map_err(|_| Error::Internal("the system random generator failed".into()))
}
