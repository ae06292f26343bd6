//! An HSM-backed key made and used with SoftHSMv2 (README, "Keys in an HSM"):
//!
//! ```sh
//! export SOFTHSM2_CONF=$PWD/softhsm2.conf   # directories.tokendir = <a directory>
//! softhsm2-util --init-token --free --label keyplane --pin 1234567890 --so-pin 0987654321
//! cargo run -p keyplane-pkcs11 --example softhsm -- /usr/lib/softhsm/libsofthsm2.so keyplane 1234567890
//! ```
//!
//! Creates an AWS_CLOUDHSM custom key store on the token, connects it, creates a key in it (an
//! AES-256 key generated in the token, sensitive and not extractable), encrypts and decrypts, and
//! draws random bytes from the token; then measures a batch of Encrypt under the HSM key and
//! under a keyplane-held key.

use std::sync::Arc;

use keyplane::custom_key_store::CustomKeyStoreType;
use keyplane::{
    CreateCustomKeyStoreRequest, CreateKeyRequest, DecryptRequest, EncryptRequest, Engine, Origin,
    SecretBytes,
};
use keyplane_pkcs11::{Pkcs11Backend, Pkcs11Config};

const CLUSTER: &str = "cluster-softhsmtoken";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module, label, pin] = args.as_slice() else {
        return Err("usage: softhsm MODULE TOKEN_LABEL USER_PIN".into());
    };
    let backend = Pkcs11Backend::new(Pkcs11Config::default().with_token(CLUSTER, module, label));
    let engine = Engine::builder()
        .lock_policy(keyplane::LockPolicy::Warn)
        .custom_key_store_backend(CustomKeyStoreType::AwsCloudhsm, Arc::new(backend))
        .build()?;
    let store = engine.create_custom_key_store(CreateCustomKeyStoreRequest {
        custom_key_store_name: "softhsm".into(),
        cloud_hsm_cluster_id: Some(CLUSTER.into()),
        trust_anchor_certificate: Some(
            "-----BEGIN CERTIFICATE-----\nc29mdGhzbQ==\n-----END CERTIFICATE-----\n".into(),
        ),
        key_store_password: Some(SecretBytes::from_vec(pin.as_bytes().to_vec())),
        ..Default::default()
    })?;
    engine.connect_custom_key_store(&store)?;
    let entry = engine
        .describe_custom_key_stores(Some(&store), None, None, None)?
        .items
        .remove(0);
    println!(
        "custom key store {store}: {}{}",
        entry.connection_state,
        entry
            .connection_error_code
            .map(|c| format!(" ({c})"))
            .unwrap_or_default()
    );
    let key = engine.create_key(CreateKeyRequest {
        origin: Some(Origin::AwsCloudhsm),
        custom_key_store_id: Some(store.clone()),
        description: Some("held by the token".into()),
        ..Default::default()
    })?;
    println!(
        "key {} (origin {}, custom key store {}, cluster {})",
        key.key_id,
        key.origin,
        key.custom_key_store_id.as_deref().unwrap_or("-"),
        key.cloud_hsm_cluster_id.as_deref().unwrap_or("-")
    );
    let sealed = engine.encrypt(&EncryptRequest::new(&key.key_id, b"hello from the HSM"))?;
    println!("ciphertext: {} bytes", sealed.ciphertext_blob.len());
    let opened = engine.decrypt(&DecryptRequest::new(&sealed.ciphertext_blob))?;
    println!(
        "decrypted: {}",
        String::from_utf8_lossy(opened.plaintext.expose())
    );
    let random = engine.generate_random_from_custom_key_store(&store, 16)?;
    println!(
        "16 random bytes from the token: {}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    // Throughput in one run: the same batch of Encrypt under the HSM key and a keyplane key.
    let local = engine.create_key(CreateKeyRequest::default())?.key_id;
    let plaintext = [0x5au8; 256];
    for (name, key_id) in [
        ("HSM-backed", key.key_id.as_str()),
        ("keyplane-held", &local),
    ] {
        let requests: Vec<EncryptRequest<'_>> = (0..50_000)
            .map(|_| EncryptRequest::new(key_id, &plaintext))
            .collect();
        let start = std::time::Instant::now();
        let results = engine.encrypt_batch(&requests);
        let elapsed = start.elapsed();
        let failed = results.iter().filter(|r| r.is_err()).count();
        println!(
            "{name} Encrypt, 256 B, batch of 50,000: {:.0}/s ({failed} failed)",
            50_000.0 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}
