//! GenerateRandom.

use super::DataPlane;
use crate::crypto::random;
use crate::error::{validation, Result};

/// Most bytes one GenerateRandom call returns (the service's limit).
pub const MAX_RANDOM_BYTES: usize = 1024;

impl DataPlane {
    pub(crate) fn generate_random(&self, number_of_bytes: usize) -> Result<Vec<u8>> {
        if !(1..=MAX_RANDOM_BYTES).contains(&number_of_bytes) {
            return Err(validation!(
                "NumberOfBytes must be 1 to {MAX_RANDOM_BYTES}, not {number_of_bytes}"
            ));
        }
        let mut out = vec![0u8; number_of_bytes];
        random::fill(&mut out)?;
        Ok(out)
    }
}
