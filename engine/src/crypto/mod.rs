//! Cryptographic primitives the data plane is built from, one file per primitive. Everything that
//! touches aws-lc directly lives here.

pub mod aes_gcm;
pub mod random;

/// The aws-lc binding this build links: the FIPS module under the `fips` feature.
#[cfg(feature = "fips")]
pub(crate) use aws_lc_fips_sys as sys;
#[cfg(not(feature = "fips"))]
pub(crate) use aws_lc_sys as sys;

/// Whether the engine runs on the FIPS 140-3 validated AWS-LC module (built with `--features
/// fips`) and that module reports FIPS mode.
pub fn fips_mode() -> bool {
    cfg!(feature = "fips") && aws_lc_rs::try_fips_mode().is_ok()
}
