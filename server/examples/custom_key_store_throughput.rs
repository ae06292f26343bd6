//! Encrypt throughput of 4 KiB on three kinds of key, in one run: a keyplane-held key, an
//! HSM-backed key (a SoftHSMv2 token made in a temporary directory, through `keyplane_pkcs11`), and
//! an XKS-backed key (`keyplane xks-proxy`'s server in process, TLS on loopback), each on 1 and 2
//! threads; prints requests per second and each kind's ratio to the keyplane-held key.
//!
//!     cargo run --release -p keyplane-server --example custom_key_store_throughput [-- CALLS]
//!
//! CALLS (default 20000) is per kind and thread count, split among the threads. Needs
//! `softhsm2-util` and libsofthsm2.so (Debian's `softhsm2`). docs/performance.md, "Custom key
//! stores", has the numbers.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyplane::custom_key_store::CustomKeyStoreType;
use keyplane::store::MemoryKeyStore;
use keyplane::{
    CreateCustomKeyStoreRequest, CreateKeyRequest, EncryptRequest, Engine, Origin, SecretBytes,
    XksProxyCredential,
};
use keyplane_server::http::TlsMode;
use keyplane_server::xks::keys::create_external_key;
use keyplane_server::xks::{XksProxy, XksProxyConfig, XksProxyServer};
use keyplane_xks::{Credential, TrustAnchors, XksBackend, XksBackendConfig};

const PIN: &str = "1234567890";
const CLUSTER: &str = "cluster-benchsofthsm";
const ACCESS_KEY_ID: &str = "AKIAI2SFODNN7EXAMPLE";
const SECRET: &str = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE";

/// A SoftHSMv2 token labelled `bench` under `dir`, made by scripts/lib/softhsm.sh (the one
/// definition of a test token); sets SOFTHSM2_CONF for the module and returns the module's path.
fn softhsm_token(dir: &Path) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/softhsm.sh");
    let out = Command::new(script)
        .args(["token", dir.to_str().unwrap(), "bench", PIN])
        .output()
        .expect("scripts/lib/softhsm.sh runs");
    assert!(out.status.success(), "{out:?}");
    let mut module = None;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        match line.split_once('=') {
            Some(("SOFTHSM2_CONF", conf)) => std::env::set_var("SOFTHSM2_CONF", conf),
            Some(("SOFTHSM_MODULE", path)) => module = Some(path.to_owned()),
            _ => {}
        }
    }
    module.expect("the script names the module")
}

/// Requests per second of `calls` Encrypts of 4 KiB under `key`, on `threads` threads.
fn measure(engine: &Engine, key: &str, calls: usize, threads: usize) -> f64 {
    let plaintext = vec![0x5au8; 4096];
    let per_thread = calls.div_ceil(threads);
    // Warm up (sessions, derived keys, TLS code paths).
    for _ in 0..8 {
        engine
            .encrypt(&EncryptRequest::new(key, &plaintext))
            .unwrap();
    }
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..per_thread {
                    engine
                        .encrypt(&EncryptRequest::new(key, &plaintext))
                        .unwrap();
                }
            });
        }
    });
    (per_thread * threads) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let module = softhsm_token(dir.path());

    // keyplane xks-proxy, in process, TLS with its self-signed CA, on loopback.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let proxy_engine = Engine::in_memory().unwrap();
    create_external_key(&proxy_engine, "bench-key").unwrap();
    let proxy = XksProxy::new(
        proxy_engine,
        XksProxyConfig {
            uri_path: "/kms/xks/v1".into(),
            credentials: vec![Credential::new(ACCESS_KEY_ID, SECRET)],
            log_requests: false,
        },
    )
    .unwrap();
    let server = runtime
        .block_on(XksProxyServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            TlsMode::SelfSigned {
                dir: dir.path().join("tls"),
            },
            proxy,
        ))
        .unwrap();
    let endpoint = server.endpoint();
    let ca = server.tls_info().unwrap().certificate.clone();
    runtime.spawn(server.run());

    let engine = Engine::builder()
        .store(Arc::new(MemoryKeyStore::default()))
        .custom_key_store_backend(
            CustomKeyStoreType::AwsCloudhsm,
            Arc::new(keyplane_pkcs11::Pkcs11Backend::new(
                keyplane_pkcs11::Pkcs11Config::default().with_token(CLUSTER, &module, "bench"),
            )),
        )
        .custom_key_store_backend(
            CustomKeyStoreType::ExternalKeyStore,
            Arc::new(XksBackend::new(XksBackendConfig {
                trust: TrustAnchors::CaBundle(ca),
                timeout: Duration::from_secs(5),
                ..XksBackendConfig::new("us-east-1")
            })),
        )
        .build()
        .unwrap();
    let local = engine
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    let hsm_store = engine
        .create_custom_key_store(CreateCustomKeyStoreRequest {
            custom_key_store_name: "bench-hsm".into(),
            cloud_hsm_cluster_id: Some(CLUSTER.into()),
            trust_anchor_certificate: Some(
                "-----BEGIN CERTIFICATE-----\nYmVuY2g=\n-----END CERTIFICATE-----\n".into(),
            ),
            key_store_password: Some(SecretBytes::from_vec(PIN.as_bytes().to_vec())),
            ..Default::default()
        })
        .unwrap();
    engine.connect_custom_key_store(&hsm_store).unwrap();
    let hsm = engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::AwsCloudhsm),
            custom_key_store_id: Some(hsm_store),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    let xks_store = engine
        .create_custom_key_store(CreateCustomKeyStoreRequest {
            custom_key_store_name: "bench-xks".into(),
            custom_key_store_type: Some(CustomKeyStoreType::ExternalKeyStore),
            xks_proxy_uri_endpoint: Some(endpoint),
            xks_proxy_uri_path: Some("/kms/xks/v1".into()),
            xks_proxy_authentication_credential: Some(XksProxyCredential {
                access_key_id: ACCESS_KEY_ID.into(),
                raw_secret_access_key: SecretBytes::from_vec(SECRET.as_bytes().to_vec()),
            }),
            ..Default::default()
        })
        .unwrap();
    engine.connect_custom_key_store(&xks_store).unwrap();
    let xks = engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::ExternalKeyStore),
            custom_key_store_id: Some(xks_store),
            xks_key_id: Some("bench-key".into()),
            ..Default::default()
        })
        .unwrap()
        .key_id;

    println!(
        "Encrypt of 4 KiB, {calls} calls per row ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "{:<22} {:>7} {:>12} {:>14}",
        "key", "threads", "requests/s", "vs keyplane"
    );
    for threads in [1, 2] {
        let base = measure(&engine, &local, calls, threads);
        for (name, key) in [
            ("keyplane-held", &local),
            ("HSM (SoftHSMv2)", &hsm),
            ("XKS (xks-proxy, TLS)", &xks),
        ] {
            let rate = if key == &local {
                base
            } else {
                measure(&engine, key, calls, threads)
            };
            println!(
                "{name:<22} {threads:>7} {rate:>12.0} {:>13.4}x",
                rate / base
            );
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
}
