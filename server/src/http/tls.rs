//! TLS: rustls on AWS-LC (its FIPS module in the `fips` build), TLS 1.2 and 1.3, ALPN `h2` and
//! `http/1.1`; a certificate chain and key from PEM files, or a self-signed one made (and kept)
//! under the data directory.
//!
//! The self-signed setup is a small local CA and a server certificate it signs, so the file
//! clients are told to trust (`tls/self-signed.pem`, the CA) works as a CA bundle in every TLS
//! stack, including OpenSSL's strict X.509 checks (Python 3.13) and webpki, which refuse a leaf
//! used as its own trust anchor in some shapes. The CA's private key is never written: it signs
//! once and is dropped.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ServerConfig;
use rustls::sign::CertifiedKey;

use super::serve_error::ServeError;

/// Where the server's certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsMode {
    /// A PEM certificate chain (leaf first) and its PEM private key.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed setup kept in this directory (`<data dir>/tls`), made on first use.
    SelfSigned { dir: PathBuf },
    /// No TLS (loopback listen addresses only).
    Plain,
}

/// What clients need to trust the server: printed at start (`{"event":"tls",...}`).
#[derive(Clone, Debug)]
pub struct TlsInfo {
    /// A PEM certificate usable as the clients' CA bundle (the local CA when self-signed; the
    /// given chain otherwise).
    pub certificate: PathBuf,
    /// SHA-256 of that certificate's DER, lowercase hex.
    pub fingerprint_sha256: String,
}

/// The files of the self-signed setup, under `<data dir>/tls/`.
pub const SELF_SIGNED_CA: &str = "self-signed.pem";
/// The server's chain (leaf, then the local CA).
pub const SELF_SIGNED_CHAIN: &str = "server.pem";
/// The server's private key (mode 0600).
pub const SELF_SIGNED_KEY: &str = "server.key";

/// The names the self-signed certificate is valid for.
const SELF_SIGNED_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

pub(crate) fn provider() -> Arc<CryptoProvider> {
    // In the `fips` build rustls's aws-lc-rs provider is the FIPS module's.
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The rustls configuration for `mode` (not `Plain`) and what clients trust.
pub(crate) fn server_config(mode: &TlsMode) -> Result<(Arc<ServerConfig>, TlsInfo), ServeError> {
    let provider = provider();
    let (chain, key, info) = match mode {
        TlsMode::Plain => {
            return Err(ServeError::Tls(
                "plain HTTP has no TLS configuration".into(),
            ))
        }
        TlsMode::Files { cert, key } => {
            let chain = read_chain(cert)?;
            let key = read_key(key)?;
            let info = TlsInfo {
                certificate: cert.clone(),
                fingerprint_sha256: fingerprint(&chain[0]),
            };
            (chain, key, info)
        }
        TlsMode::SelfSigned { dir } => self_signed(dir, &provider)?,
    };
    let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            ServeError::Tls(format!(
                "the certificate chain and private key cannot serve TLS (do they go together?): {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), info))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        ServeError::Tls(format!(
            "cannot read the certificate chain {}: {e}",
            path.display()
        ))
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    if chain.is_empty() {
        return Err(unreadable(&"no CERTIFICATE block in it"));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServeError> {
    // The error never quotes the file: it holds a private key.
    PrivateKeyDer::from_pem_file(path).map_err(|_| {
        ServeError::Tls(format!(
            "cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1) from {}",
            path.display()
        ))
    })
}

/// SHA-256 of `der`, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

type Material = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    TlsInfo,
);

/// The self-signed setup in `dir`: reused when present and valid now for every name, else made
/// anew.
fn self_signed(dir: &Path, provider: &Arc<CryptoProvider>) -> Result<Material, ServeError> {
    let ca_path = dir.join(SELF_SIGNED_CA);
    if let Some(material) = reuse(dir, provider) {
        return Ok(material);
    }
    fs::create_dir_all(dir)
        .map_err(|e| ServeError::Tls(format!("cannot create {}: {e}", dir.display())))?;
    let (ca_pem, chain_pem, key_pem) = generate()?;
    write_file(&dir.join(SELF_SIGNED_KEY), key_pem.as_bytes(), 0o600)?;
    write_file(&dir.join(SELF_SIGNED_CHAIN), chain_pem.as_bytes(), 0o644)?;
    write_file(&ca_path, ca_pem.as_bytes(), 0o644)?;
    reuse(dir, provider).ok_or_else(|| {
        ServeError::Tls(format!(
            "the self-signed certificate just written to {} does not verify",
            dir.display()
        ))
    })
}

/// The setup in `dir` if it loads, its key matches, and the leaf verifies under the CA for every
/// name now.
fn reuse(dir: &Path, provider: &Arc<CryptoProvider>) -> Option<Material> {
    let ca = read_chain(&dir.join(SELF_SIGNED_CA))
        .ok()?
        .into_iter()
        .next()?;
    let chain = read_chain(&dir.join(SELF_SIGNED_CHAIN)).ok()?;
    let key = read_key(&dir.join(SELF_SIGNED_KEY)).ok()?;
    CertifiedKey::from_der(chain.clone(), key.clone_key(), provider).ok()?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).ok()?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(provider),
    )
    .build()
    .ok()?;
    let now = UnixTime::now();
    for name in SELF_SIGNED_NAMES {
        let name = ServerName::try_from(name).ok()?;
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], now)
            .ok()?;
    }
    let info = TlsInfo {
        certificate: dir.join(SELF_SIGNED_CA),
        fingerprint_sha256: fingerprint(&ca),
    };
    Some((chain, key, info))
}

/// A new local CA and a server certificate for [`SELF_SIGNED_NAMES`]: (CA PEM, chain PEM, key PEM).
fn generate() -> Result<(String, String, zeroize::Zeroizing<String>), ServeError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let failed =
        |e: rcgen::Error| ServeError::Tls(format!("cannot make a self-signed certificate: {e}"));
    let now = SystemTime::now();
    let not_before = time::OffsetDateTime::from(now - Duration::from_secs(24 * 3600));
    let not_after = time::OffsetDateTime::from(now + Duration::from_secs(397 * 24 * 3600));

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.distinguished_name
        .push(DnType::CommonName, "keyplane self-signed CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_key = KeyPair::generate().map_err(failed)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;

    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
    let mut leaf = CertificateParams::new(names).map_err(failed)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_key = KeyPair::generate().map_err(failed)?;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .map_err(failed)?;

    let chain = format!("{}{}", leaf_cert.pem(), ca_cert.pem());
    Ok((
        ca_cert.pem(),
        chain,
        zeroize::Zeroizing::new(leaf_key.serialize_pem()),
    ))
}

/// Writes `path` whole (a temporary file renamed over it) with `mode`.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), ServeError> {
    let failed =
        |e: std::io::Error| ServeError::Tls(format!("cannot write {}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(failed)?;
    file.write_all(contents).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    fs::rename(&tmp, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(feature = "fips")]
    fn the_fips_build_serves_tls_from_the_fips_module() {
        assert!(super::provider().fips());
    }

    #[test]
    fn the_self_signed_setup_verifies_for_every_name() {
        let dir = tempfile::tempdir().unwrap();
        let (chain, _, info) = super::self_signed(dir.path(), &super::provider()).unwrap();
        assert_eq!(chain.len(), 2, "leaf and local CA");
        assert!(info.certificate.ends_with(super::SELF_SIGNED_CA));
    }
}
