//! `keyplane._keyplane`: the native half of the `keyplane` Python package.
//!
//! One pyclass, [`engine::Engine`], wraps a `keyplane::Engine` handle; its methods are spread over
//! one file per area: control-plane operations ([`control`]), single data-plane calls ([`data`])
//! and batch calls ([`batch`]). Responses are dictionaries in the service's shapes (the keys and
//! value types boto3 returns); `keyplane.client` adds `ResponseMetadata`. Engine errors become the
//! exception classes of `keyplane.exceptions` through one mapping ([`errors`]).
//!
//! Inputs: `bytes` are read in place; `bytearray` and `memoryview` are copied once into memory
//! that is zeroed after the call ([`convert::Input`]). Batch calls, control-plane calls and calls on
//! large or asymmetric work release the GIL. Envelope encryption in the AWS Encryption SDK's message
//! format ([`envelope`]): keyrings, one-shot calls and streams over Python file objects.
#![deny(unsafe_code)]
// Native methods take the service's request parameters as keyword arguments, one Rust argument each.
#![allow(clippy::too_many_arguments)]

mod backends;
mod batch;
mod batch_into;
mod batch_items;
mod control;
mod convert;
mod custom_key_stores;
mod data;
mod engine;
mod envelope;
mod errors;
mod kept;
mod secret;
mod store;

use pyo3::prelude::*;

/// Whether the engine runs on AWS-LC's FIPS-validated module.
#[pyfunction]
fn fips_mode() -> bool {
    keyplane::fips_mode()
}

#[pymodule]
fn _keyplane(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<secret::SecretBytes>()?;
    m.add_class::<envelope::KmsKeyring>()?;
    m.add_class::<envelope::RawAesKeyring>()?;
    m.add_class::<envelope::RawRsaKeyring>()?;
    m.add_class::<envelope::EnvelopeWriter>()?;
    m.add_class::<envelope::EnvelopeReader>()?;
    m.add_function(wrap_pyfunction!(envelope::encrypt_message, m)?)?;
    m.add_function(wrap_pyfunction!(envelope::decrypt_message, m)?)?;
    m.add_function(wrap_pyfunction!(fips_mode, m)?)?;
    m.add_function(wrap_pyfunction!(store::resolve_store, m)?)?;
    m.add_function(wrap_pyfunction!(secret::_secrets_zeroed, m)?)?;
    m.add_function(wrap_pyfunction!(errors::_error_codes, m)?)?;
    Ok(())
}
