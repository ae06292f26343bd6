//! The encryption algorithm a symmetric key accepts, checked where a caller names one (Encrypt,
//! and Decrypt or ReEncrypt of a keyplane blob).

use crate::error::{Error, Result};
use crate::key::EncryptionAlgorithm;

pub(crate) fn check_symmetric_algorithm(algorithm: EncryptionAlgorithm) -> Result<()> {
    if algorithm != EncryptionAlgorithm::SymmetricDefault {
        return Err(Error::InvalidKeyUsage(format!(
            "encryption algorithm {algorithm} is not valid for a symmetric key; use SYMMETRIC_DEFAULT"
        )));
    }
    Ok(())
}
