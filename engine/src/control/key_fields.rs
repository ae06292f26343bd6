//! Fields of a key record that the families making or changing keys share: a new key material
//! id, and the limit on a key's description.

use crate::crypto::random;
use crate::error::{validation, Result};

/// Longest description a key may have.
pub const MAX_DESCRIPTION: usize = 8192;

/// A new KeyMaterialId: 64 random hex characters.
pub(crate) fn new_material_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    random::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(validation!(
            "a description is at most {MAX_DESCRIPTION} characters"
        ));
    }
    Ok(())
}
