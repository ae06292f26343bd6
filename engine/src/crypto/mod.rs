//! Cryptographic primitives the data plane is built from, one file per primitive. Everything that
//! touches aws-lc directly lives here.

pub mod aes_gcm;
pub mod digest;
pub mod ecdh;
pub mod ecdsa_p384;
pub mod hkdf;
pub(crate) mod hkdf_sha256;
pub mod hmac;
pub mod key_import;
pub mod random;
pub mod rsa_oaep;
pub mod rsa_wrap;
pub mod signature;

#[cfg(all(feature = "fips", feature = "non-fips"))]
compile_error!(
    "enable exactly one of the features `fips` and `non-fips` (for FIPS: --no-default-features --features fips)"
);
#[cfg(not(any(feature = "fips", feature = "non-fips")))]
compile_error!("enable one of the features `non-fips` (the default) and `fips`");

/// The aws-lc binding this build links: the FIPS module under the `fips` feature.
#[cfg(feature = "fips")]
pub(crate) use aws_lc_fips_sys as sys;
#[cfg(all(feature = "non-fips", not(feature = "fips")))]
pub(crate) use aws_lc_sys as sys;

/// Initialises aws-lc (its CPU feature detection and, in the FIPS build, the module's
/// self-tests) before the engine's first use of it.
pub(crate) fn init() {
    aws_lc_rs::init();
}

/// Whether the engine runs on the FIPS 140-3 validated AWS-LC module (built with `--features
/// fips`) and that module reports FIPS mode.
pub fn fips_mode() -> bool {
    cfg!(feature = "fips") && aws_lc_rs::try_fips_mode().is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_the_module_it_was_built_with() {
        assert_eq!(super::fips_mode(), cfg!(feature = "fips"));
        if cfg!(feature = "fips") {
            println!("running on the AWS-LC FIPS module");
        }
    }
}
