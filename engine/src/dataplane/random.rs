//! GenerateRandom.

use super::plane::DataPlane;
use crate::access::Caller;
use crate::crypto::random;
use crate::error::{validation, Error, Result};

/// Most bytes one GenerateRandom call returns (the service's limit).
pub const MAX_RANDOM_BYTES: usize = 1024;

fn check_size(number_of_bytes: usize) -> Result<()> {
    if !(1..=MAX_RANDOM_BYTES).contains(&number_of_bytes) {
        return Err(validation!(
            "NumberOfBytes must be 1 to {MAX_RANDOM_BYTES}, not {number_of_bytes}"
        ));
    }
    Ok(())
}

/// GenerateRandom needs no key: callers of the engine's account may call it.
fn check_account(plane: &DataPlane, caller: &Caller) -> Result<()> {
    if caller.account() == plane.scope.account {
        return Ok(());
    }
    Err(Error::AccessDenied(format!(
        "{} is not authorized to perform kms:GenerateRandom in account {}",
        caller.principal(),
        plane.scope.account
    )))
}

impl DataPlane {
    pub(crate) fn generate_random(
        &self,
        caller: &Caller,
        number_of_bytes: usize,
    ) -> Result<Vec<u8>> {
        check_account(self, caller)?;
        check_size(number_of_bytes)?;
        let mut out = vec![0u8; number_of_bytes];
        random::fill(&mut out)?;
        Ok(out)
    }

    /// `number_of_bytes` bytes drawn by `fill` (a custom key store's generator).
    pub(crate) fn generate_random_with(
        &self,
        caller: &Caller,
        number_of_bytes: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<()>,
    ) -> Result<Vec<u8>> {
        check_account(self, caller)?;
        check_size(number_of_bytes)?;
        let mut out = vec![0u8; number_of_bytes];
        fill(&mut out)?;
        Ok(out)
    }

    /// One result per requested size; the bytes for the whole batch come from one generator call.
    pub(crate) fn generate_random_batch(
        &self,
        caller: &Caller,
        sizes: &[usize],
    ) -> Vec<Result<Vec<u8>>> {
        if let Err(denied) = check_account(self, caller) {
            return sizes.iter().map(|_| Err(denied.clone())).collect();
        }
        let total: usize = sizes.iter().filter(|&&n| check_size(n).is_ok()).sum();
        let mut pool = zeroize::Zeroizing::new(vec![0u8; total]);
        if let Err(e) = random::fill(&mut pool) {
            return sizes.iter().map(|_| Err(e.clone())).collect();
        }
        let mut rest: &[u8] = &pool;
        sizes
            .iter()
            .map(|&n| {
                check_size(n)?;
                let (mine, others) = rest.split_at(n);
                rest = others;
                Ok(mine.to_vec())
            })
            .collect()
    }
}
