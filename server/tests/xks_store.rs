//! External key stores end to end: an engine with the XKS backend (`keyplane_xks::XksBackend`)
//! against `keyplane xks-proxy`'s server (`XksProxyServer`, in process) over TLS with its
//! self-signed CA as the client's bundle. Create, connect, keys with an XksKeyId, the double
//! encryption round trip, a key deleted in the proxy, wrong credentials, a proxy killed mid-batch
//! (its items fail, other stores' and keyplane keys' items succeed), disconnect and reconnect,
//! engine restart with the store reconnecting.
//!
//! The named attacks (`attack_xks_store_*`) drive the engine against a hostile proxy: a blocking
//! TLS server that answers through `XksProxy::handle` and then alters the answer. Each prints
//! `assurance: attack <name>: tried N, rejected N`. The engine's `security_regression.rs` cannot
//! reach the server crate, so they live here (listed there by name).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use keyplane::custom_key_store::{ConnectionErrorCode, ConnectionState, CustomKeyStoreType};
use keyplane::store::MemoryKeyStore;
use keyplane::{
    CreateCustomKeyStoreRequest, CreateKeyRequest, DecryptRequest, EncryptRequest,
    EncryptionContext, Engine, ErrorKind, GenerateDataKeyRequest, KeyState, Origin, SecretBytes,
    UpdateCustomKeyStoreRequest, XksProxyCredential,
};
use keyplane_server::http::tls::{SELF_SIGNED_CHAIN, SELF_SIGNED_KEY};
use keyplane_server::http::TlsMode;
use keyplane_server::xks::keys::{alias_for, create_external_key};
use keyplane_server::xks::{ProxyRequest, XksProxy, XksProxyConfig, XksProxyServer};
use keyplane_testkit::{new_key, Attack};
use keyplane_xks::{Credential, TrustAnchors, XksBackend, XksBackendConfig};

const ACCESS_KEY_ID: &str = "AKIAI2SFODNN7EXAMPLE";
const SECRET: &str = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE";
const WRONG_SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const URI_PATH: &str = "/kms/xks/v1";
const KEYS: &[&str] = &["ext-1", "ext-2", "ext-3"];
/// Generous for calls that must succeed on a loaded machine.
const RELAXED: Duration = Duration::from_secs(10);

/// `keyplane xks-proxy`'s server over an in-memory engine holding [`KEYS`].
struct Proxy {
    endpoint: String,
    ca: PathBuf,
    /// The proxy's own engine (to delete an external key behind keyplane's back).
    engine: Engine,
    runtime: Option<tokio::runtime::Runtime>,
    dir: tempfile::TempDir,
}

fn proxy_over(engine: &Engine) -> XksProxy {
    XksProxy::new(
        engine.clone(),
        XksProxyConfig {
            uri_path: URI_PATH.into(),
            credentials: vec![Credential::new(ACCESS_KEY_ID, SECRET)],
            log_requests: false,
        },
    )
    .unwrap()
}

impl Proxy {
    fn start() -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let engine = Engine::in_memory().unwrap();
        for id in KEYS {
            create_external_key(&engine, id).unwrap();
        }
        let server = runtime
            .block_on(XksProxyServer::bind(
                "127.0.0.1:0".parse().unwrap(),
                TlsMode::SelfSigned {
                    dir: dir.path().join("tls"),
                },
                proxy_over(&engine),
            ))
            .unwrap();
        let endpoint = server.endpoint();
        let ca = server.tls_info().unwrap().certificate.clone();
        runtime.spawn(server.run());
        Proxy {
            endpoint,
            ca,
            engine,
            runtime: Some(runtime),
            dir,
        }
    }

    /// Kills the proxy: its listener and every connection close.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn backend(ca: &Path, timeout: Duration) -> Arc<XksBackend> {
    Arc::new(XksBackend::new(XksBackendConfig {
        trust: TrustAnchors::CaBundle(ca.to_owned()),
        timeout,
        ..XksBackendConfig::new("us-east-1")
    }))
}

fn engine_on(store: Arc<MemoryKeyStore>, ca: &Path, timeout: Duration) -> Engine {
    Engine::builder()
        .store(store)
        .custom_key_store_backend(CustomKeyStoreType::ExternalKeyStore, backend(ca, timeout))
        .build()
        .unwrap()
}

fn credential(secret: &str) -> XksProxyCredential {
    XksProxyCredential {
        access_key_id: ACCESS_KEY_ID.into(),
        raw_secret_access_key: SecretBytes::from_vec(secret.as_bytes().to_vec()),
    }
}

fn store_request(name: &str, endpoint: &str, secret: &str) -> CreateCustomKeyStoreRequest {
    CreateCustomKeyStoreRequest {
        custom_key_store_name: name.into(),
        custom_key_store_type: Some(CustomKeyStoreType::ExternalKeyStore),
        xks_proxy_uri_endpoint: Some(endpoint.into()),
        xks_proxy_uri_path: Some(URI_PATH.into()),
        xks_proxy_connectivity: Some("PUBLIC_ENDPOINT".into()),
        xks_proxy_authentication_credential: Some(credential(secret)),
        ..Default::default()
    }
}

fn state_of(engine: &Engine, id: &str) -> (ConnectionState, Option<ConnectionErrorCode>) {
    let page = engine
        .describe_custom_key_stores(Some(id), None, None, None)
        .unwrap();
    (
        page.items[0].connection_state,
        page.items[0].connection_error_code,
    )
}

fn connected_store(engine: &Engine, name: &str, endpoint: &str) -> String {
    let id = engine
        .create_custom_key_store(store_request(name, endpoint, SECRET))
        .unwrap();
    engine.connect_custom_key_store(&id).unwrap();
    assert_eq!(state_of(engine, &id), (ConnectionState::Connected, None));
    id
}

fn external_key(engine: &Engine, store: &str, xks_key_id: &str) -> keyplane::Result<String> {
    engine
        .create_key(CreateKeyRequest {
            origin: Some(Origin::ExternalKeyStore),
            custom_key_store_id: Some(store.into()),
            xks_key_id: Some(xks_key_id.into()),
            ..Default::default()
        })
        .map(|m| m.key_id)
}

fn kind<T: std::fmt::Debug>(result: keyplane::Result<T>) -> ErrorKind {
    result.expect_err("the call must fail").kind()
}

fn context() -> EncryptionContext {
    EncryptionContext::from([("purpose".to_owned(), "xks test".to_owned())])
}

fn encrypt(engine: &Engine, key: &str, plaintext: &[u8]) -> keyplane::Result<Vec<u8>> {
    let ctx = context();
    engine
        .encrypt(&EncryptRequest::new(key, plaintext).with_context(&ctx))
        .map(|r| r.ciphertext_blob)
}

fn decrypt(engine: &Engine, blob: &[u8]) -> keyplane::Result<Vec<u8>> {
    let ctx = context();
    engine
        .decrypt(&DecryptRequest::new(blob).with_context(&ctx))
        .map(|r| r.plaintext.expose().to_vec())
}

#[test]
fn create_connect_and_describe_an_external_key_store() {
    let proxy = Proxy::start();
    let engine = engine_on(Arc::new(MemoryKeyStore::default()), &proxy.ca, RELAXED);
    let id = engine
        .create_custom_key_store(store_request("xks", &proxy.endpoint, SECRET))
        .unwrap();
    assert_eq!(
        state_of(&engine, &id),
        (ConnectionState::Disconnected, None)
    );
    let page = engine
        .describe_custom_key_stores(Some(&id), None, None, None)
        .unwrap();
    let entry = &page.items[0];
    assert_eq!(
        entry.custom_key_store_type,
        CustomKeyStoreType::ExternalKeyStore
    );
    let config = entry.xks_proxy_configuration.as_ref().unwrap();
    assert_eq!(config.uri_endpoint, proxy.endpoint);
    assert_eq!(config.uri_path, URI_PATH);
    assert_eq!(config.access_key_id, ACCESS_KEY_ID);
    assert_eq!(config.connectivity, "PUBLIC_ENDPOINT");
    // The secret is never shown, in any form.
    let shown = serde_json::to_string(entry).unwrap();
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!format!("{entry:?}").contains(SECRET));

    // The service's uniqueness rule: one store per endpoint and path.
    assert_eq!(
        kind(engine.create_custom_key_store(store_request("other", &proxy.endpoint, SECRET))),
        ErrorKind::XksProxyUriInUse
    );
    // Nor by an update: another store's proxy settings may not become this one's.
    let mut second = store_request("second", &proxy.endpoint, SECRET);
    second.xks_proxy_uri_path = Some("/second/kms/xks/v1".into());
    let second = engine.create_custom_key_store(second).unwrap();
    assert_eq!(
        kind(engine.update_custom_key_store(UpdateCustomKeyStoreRequest {
            custom_key_store_id: second.clone(),
            xks_proxy_uri_path: Some(URI_PATH.into()),
            ..Default::default()
        })),
        ErrorKind::XksProxyUriInUse
    );
    engine.delete_custom_key_store(&second).unwrap();
    // VPC endpoint services are refused clearly; members of the other kind too.
    let mut vpc = store_request("vpc", "https://xks.example.com", SECRET);
    vpc.xks_proxy_connectivity = Some("VPC_ENDPOINT_SERVICE".into());
    vpc.xks_proxy_vpc_endpoint_service_name =
        Some("com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0".into());
    assert_eq!(
        kind(engine.create_custom_key_store(vpc)),
        ErrorKind::UnsupportedOperation
    );
    let mut mixed = store_request("mixed", "https://xks.example.com", SECRET);
    mixed.cloud_hsm_cluster_id = Some("cluster-abcdefghijk".into());
    assert_eq!(
        kind(engine.create_custom_key_store(mixed)),
        ErrorKind::Validation
    );
    // The model's constraints on the credential and the endpoint.
    assert_eq!(
        kind(engine.create_custom_key_store(store_request("short", &proxy.endpoint, "short"))),
        ErrorKind::Validation
    );
    assert_eq!(
        kind(engine.create_custom_key_store(store_request(
            "http",
            "http://xks.example.com",
            SECRET
        ))),
        ErrorKind::Validation
    );
    let mut no_credential = store_request("none", "https://xks.example.com", SECRET);
    no_credential.xks_proxy_authentication_credential = None;
    assert_eq!(
        kind(engine.create_custom_key_store(no_credential)),
        ErrorKind::Validation
    );

    engine.connect_custom_key_store(&id).unwrap();
    assert_eq!(state_of(&engine, &id), (ConnectionState::Connected, None));
    // Proxy settings change only while DISCONNECTED; a name at any time.
    assert_eq!(
        kind(engine.update_custom_key_store(UpdateCustomKeyStoreRequest {
            custom_key_store_id: id.clone(),
            xks_proxy_uri_path: Some("/other/kms/xks/v1".into()),
            ..Default::default()
        })),
        ErrorKind::CustomKeyStoreInvalidState
    );
    engine
        .update_custom_key_store(UpdateCustomKeyStoreRequest {
            custom_key_store_id: id.clone(),
            new_custom_key_store_name: Some("renamed".into()),
            ..Default::default()
        })
        .unwrap();
    // GenerateRandom does not take an external key store, as the service's.
    assert_eq!(
        kind(engine.generate_random_from_custom_key_store(&id, 16)),
        ErrorKind::UnsupportedOperation
    );
}

#[test]
fn wrong_credentials_fail_the_connection_and_an_update_fixes_them() {
    let proxy = Proxy::start();
    let engine = engine_on(Arc::new(MemoryKeyStore::default()), &proxy.ca, RELAXED);
    let id = engine
        .create_custom_key_store(store_request("wrong", &proxy.endpoint, WRONG_SECRET))
        .unwrap();
    engine.connect_custom_key_store(&id).unwrap();
    assert_eq!(
        state_of(&engine, &id),
        (
            ConnectionState::Failed,
            Some(ConnectionErrorCode::InvalidCredentials)
        )
    );
    engine.disconnect_custom_key_store(&id).unwrap();
    engine
        .update_custom_key_store(UpdateCustomKeyStoreRequest {
            custom_key_store_id: id.clone(),
            xks_proxy_authentication_credential: Some(credential(SECRET)),
            ..Default::default()
        })
        .unwrap();
    engine.connect_custom_key_store(&id).unwrap();
    assert_eq!(state_of(&engine, &id), (ConnectionState::Connected, None));

    // A proxy that is not there: NOT_REACHABLE; a wrong URI path: INVALID_CONFIGURATION.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = engine
        .create_custom_key_store(store_request(
            "gone",
            &format!("https://127.0.0.1:{port}"),
            SECRET,
        ))
        .unwrap();
    engine.connect_custom_key_store(&gone).unwrap();
    assert_eq!(
        state_of(&engine, &gone),
        (
            ConnectionState::Failed,
            Some(ConnectionErrorCode::XksProxyNotReachable)
        )
    );
    let mut wrong_path = store_request("path", &proxy.endpoint, SECRET);
    wrong_path.xks_proxy_uri_path = Some("/tenant-b/kms/xks/v1".into());
    let wrong_path = engine.create_custom_key_store(wrong_path).unwrap();
    engine.connect_custom_key_store(&wrong_path).unwrap();
    assert_eq!(
        state_of(&engine, &wrong_path),
        (
            ConnectionState::Failed,
            Some(ConnectionErrorCode::XksProxyInvalidConfiguration)
        )
    );
}

#[test]
fn keys_with_an_xks_key_id_double_encrypt_and_need_the_proxy_to_decrypt() {
    let proxy = Proxy::start();
    let engine = engine_on(Arc::new(MemoryKeyStore::default()), &proxy.ca, RELAXED);
    let store = connected_store(&engine, "xks", &proxy.endpoint);
    // GetKeyMetadata checks the external key.
    assert_eq!(
        kind(external_key(&engine, &store, "no-such-key")),
        ErrorKind::XksKeyNotFound
    );
    let key = external_key(&engine, &store, "ext-1").unwrap();
    assert_eq!(
        kind(external_key(&engine, &store, "ext-1")),
        ErrorKind::XksKeyAlreadyInUse
    );
    // An external key that is disabled in its manager cannot back a key.
    let ext3 = proxy
        .engine
        .describe_key(&alias_for("ext-3"))
        .unwrap()
        .key_id;
    proxy.engine.disable_key(&ext3).unwrap();
    assert_eq!(
        kind(external_key(&engine, &store, "ext-3")),
        ErrorKind::XksKeyInvalidConfiguration
    );
    let described = engine.describe_key(&key).unwrap();
    assert_eq!(described.origin, Origin::ExternalKeyStore);
    assert_eq!(
        described.custom_key_store_id.as_deref(),
        Some(store.as_str())
    );
    assert_eq!(described.xks_key_configuration.unwrap().id, "ext-1");
    assert_eq!(described.key_state, KeyState::Enabled);

    for plaintext in [&b"x"[..], b"a secret of some length", &[7u8; 4096][..]] {
        let blob = encrypt(&engine, &key, plaintext).unwrap();
        // keyplane's header, algorithm 2 (double encryption), the wrapped secret carried along.
        assert_eq!((blob[0], blob[1]), (1, 2));
        assert!(blob.len() > plaintext.len() + 82 + 32);
        assert_eq!(decrypt(&engine, &blob).unwrap(), plaintext);
        // The encryption context is bound: another one does not decrypt.
        let other = EncryptionContext::from([("purpose".to_owned(), "other".to_owned())]);
        assert!(engine
            .decrypt(&DecryptRequest::new(&blob).with_context(&other))
            .is_err());
        assert_eq!(
            engine
                .decrypt(&DecryptRequest::new(&blob))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidState,
            "a wrong context is refused by the proxy (KMSInvalidStateException, as the service)"
        );
    }
    // GenerateDataKey and ReEncrypt go through the same construction.
    let ctx = context();
    let data_key = engine
        .generate_data_key(&GenerateDataKeyRequest {
            encryption_context: Some(&ctx),
            ..GenerateDataKeyRequest::new(&key, keyplane::DataKeySpec::Aes256)
        })
        .unwrap();
    assert_eq!(
        decrypt(&engine, &data_key.ciphertext_blob).unwrap(),
        data_key.plaintext.expose()
    );
    let local = new_key(&engine);
    let blob = encrypt(&engine, &key, b"moved").unwrap();
    let moved = engine
        .re_encrypt(&keyplane::ReEncryptRequest {
            source_encryption_context: Some(&ctx),
            destination_encryption_context: Some(&ctx),
            ..keyplane::ReEncryptRequest::new(&blob, &local)
        })
        .unwrap();
    assert_eq!(decrypt(&engine, &moved.ciphertext_blob).unwrap(), b"moved");

    // Disconnected: the key is Unavailable and its calls fail; reconnected, the old blob opens.
    engine.disconnect_custom_key_store(&store).unwrap();
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::Unavailable
    );
    let refused = decrypt(&engine, &blob).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::KeyUnavailable, "{refused}");
    assert_eq!(
        encrypt(&engine, &key, b"x").unwrap_err().kind(),
        ErrorKind::KeyUnavailable
    );
    engine.connect_custom_key_store(&store).unwrap();
    assert_eq!(decrypt(&engine, &blob).unwrap(), b"moved");

    // The proxy no longer holds the external key: nothing decrypts (KMSInvalidStateException
    // with the service's words), and the local key's ciphertexts are untouched.
    proxy.engine.delete_alias(&alias_for("ext-1")).unwrap();
    let gone = decrypt(&engine, &blob).unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::InvalidState, "{gone}");
    assert!(gone.message().contains("was not found"), "{gone}");
    assert_eq!(decrypt(&engine, &moved.ciphertext_blob).unwrap(), b"moved");
}

#[test]
fn a_proxy_killed_mid_batch_fails_only_its_stores_items() {
    let mut dying = Proxy::start();
    let living = Proxy::start();
    // One CA bundle holding both proxies' CAs.
    let bundle = living.dir.path().join("both.pem");
    let mut pem = std::fs::read(&dying.ca).unwrap();
    pem.extend(std::fs::read(&living.ca).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let engine = engine_on(
        Arc::new(MemoryKeyStore::default()),
        &bundle,
        Duration::from_secs(2),
    );
    let a = connected_store(&engine, "dying", &dying.endpoint);
    let b = connected_store(&engine, "living", &living.endpoint);
    let key_a = external_key(&engine, &a, "ext-1").unwrap();
    let key_b = external_key(&engine, &b, "ext-1").unwrap();
    let local = new_key(&engine);
    let keys = [&key_a, &key_b, &local, &key_a, &key_b, &local];
    let requests: Vec<EncryptRequest<'_>> = keys
        .iter()
        .map(|k| EncryptRequest::new(k, b"batch item"))
        .collect();
    assert!(engine.encrypt_batch(&requests).iter().all(|r| r.is_ok()));
    let blob_a = engine.encrypt(&EncryptRequest::new(&key_a, b"a")).unwrap();

    dying.kill();
    let started = Instant::now();
    let results = engine.encrypt_batch(&requests);
    for (key, result) in keys.iter().zip(&results) {
        if **key == key_a {
            let error = result.as_ref().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidState, "{error}");
        } else {
            assert!(result.is_ok(), "{key}: {result:?}");
        }
    }
    // Within the client's deadline per call, never hanging.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(engine
        .decrypt(&DecryptRequest::new(&blob_a.ciphertext_blob))
        .is_err());
    // DescribeCustomKeyStores notices: FAILED, NOT_REACHABLE; the living store is untouched.
    assert_eq!(
        state_of(&engine, &a),
        (
            ConnectionState::Failed,
            Some(ConnectionErrorCode::XksProxyNotReachable)
        )
    );
    assert_eq!(state_of(&engine, &b), (ConnectionState::Connected, None));
}

#[test]
fn an_engine_restart_reconnects_its_external_key_store() {
    let proxy = Proxy::start();
    let store = Arc::new(MemoryKeyStore::default());
    let (key, blob) = {
        let engine = engine_on(Arc::clone(&store), &proxy.ca, RELAXED);
        let id = connected_store(&engine, "restart", &proxy.endpoint);
        let key = external_key(&engine, &id, "ext-2").unwrap();
        let blob = encrypt(&engine, &key, b"across restarts").unwrap();
        (key, blob)
    };
    let engine = engine_on(Arc::clone(&store), &proxy.ca, RELAXED);
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::Enabled
    );
    assert_eq!(decrypt(&engine, &blob).unwrap(), b"across restarts");
    drop(engine);
    // A restart while the proxy is down: the store is FAILED, its key Unavailable, never wrong.
    let mut proxy = proxy;
    proxy.kill();
    let engine = engine_on(store, &proxy.ca, RELAXED);
    assert_eq!(
        engine.describe_key(&key).unwrap().key_state,
        KeyState::Unavailable
    );
    assert_eq!(
        decrypt(&engine, &blob).unwrap_err().kind(),
        ErrorKind::KeyUnavailable
    );
    let id = engine
        .describe_key(&key)
        .unwrap()
        .custom_key_store_id
        .unwrap();
    assert_eq!(
        state_of(&engine, &id),
        (
            ConnectionState::Failed,
            Some(ConnectionErrorCode::XksProxyNotReachable)
        )
    );
    // Without the XKS backend the store's keys stay Unavailable, never wrong.
    let bare = Engine::builder()
        .store(Arc::new(MemoryKeyStore::default()))
        .build()
        .unwrap();
    assert!(bare.decrypt(&DecryptRequest::new(&blob)).is_err());
}

// ---- Named attacks against a hostile proxy -------------------------------------------------

/// How the hostile proxy alters an answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tamper {
    Honest,
    /// Encrypt answers carry a wrong ciphertextDataIntegrityValue.
    WrongCdiv,
    /// Decrypt answers are the first plaintext the proxy ever decrypted (another ciphertext's).
    ReplayPlaintext,
}

/// A blocking TLS server (the CA of `tls_dir`) answering through `XksProxy::handle`, then
/// altering the answer as `tamper` (switchable) says.
struct HostileProxy {
    endpoint: String,
    tamper: Arc<Mutex<Tamper>>,
}

/// A request's path, headers (names lowercased) and body.
type Received = (String, Vec<(String, String)>, Vec<u8>);

fn read_request(stream: &mut impl Read) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")?
        .1
        .parse()
        .ok()?;
    while buffer.len() < head_end + 4 + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some((
        path,
        headers,
        buffer[head_end + 4..head_end + 4 + length].to_vec(),
    ))
}

impl HostileProxy {
    fn start(engine: &Engine, tls_dir: &Path) -> HostileProxy {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(tls_dir.join(SELF_SIGNED_CHAIN))
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
        let key = PrivateKeyDer::from_pem_file(tls_dir.join(SELF_SIGNED_KEY)).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("https://{}", listener.local_addr().unwrap());
        let tamper = Arc::new(Mutex::new(Tamper::Honest));
        let proxy = Arc::new(proxy_over(engine));
        let mode = Arc::clone(&tamper);
        std::thread::spawn(move || {
            let first_plaintext: Mutex<Option<String>> = Mutex::new(None);
            for stream in listener.incoming() {
                let Ok(socket) = stream else { continue };
                let _ = serve_one(&config, socket, &proxy, &mode, &first_plaintext);
            }
        });
        HostileProxy { endpoint, tamper }
    }

    fn set(&self, tamper: Tamper) {
        *self.tamper.lock().unwrap() = tamper;
    }
}

fn serve_one(
    config: &Arc<rustls::ServerConfig>,
    socket: TcpStream,
    proxy: &XksProxy,
    mode: &Mutex<Tamper>,
    first_plaintext: &Mutex<Option<String>>,
) -> Option<()> {
    let connection = rustls::ServerConnection::new(Arc::clone(config)).ok()?;
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let (path, headers, body) = read_request(&mut tls)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    let answer = proxy.handle(&ProxyRequest {
        method: "POST",
        path: &path,
        headers: &headers,
        body: &body,
        now,
    });
    let mut body = answer.body;
    if answer.status == 200 {
        let mut value: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let tamper = *mode.lock().ok()?;
        if tamper == Tamper::WrongCdiv && path.ends_with("/encrypt") {
            let cdiv = value["ciphertextDataIntegrityValue"].as_str()?;
            let mut bytes = STANDARD.decode(cdiv).ok()?;
            bytes[0] ^= 1;
            value["ciphertextDataIntegrityValue"] = STANDARD.encode(bytes).into();
        }
        if path.ends_with("/decrypt") {
            let mut first = first_plaintext.lock().ok()?;
            let plaintext = value["plaintext"].as_str()?.to_owned();
            let replay = first.get_or_insert(plaintext).clone();
            if tamper == Tamper::ReplayPlaintext {
                value["plaintext"] = replay.into();
            }
        }
        body = value.to_string().into_bytes();
    }
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: \
         close\r\n\r\n",
        answer.status,
        body.len()
    );
    tls.write_all(head.as_bytes()).ok()?;
    tls.write_all(&body).ok()?;
    tls.flush().ok()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Some(())
}

/// A connected engine with two keys on different external keys of one hostile proxy.
fn hostile_fixture() -> (Proxy, HostileProxy, Engine, String, String) {
    let honest = Proxy::start();
    let hostile = HostileProxy::start(&honest.engine, &honest.dir.path().join("tls"));
    let engine = engine_on(Arc::new(MemoryKeyStore::default()), &honest.ca, RELAXED);
    let store = connected_store(&engine, "hostile", &hostile.endpoint);
    let one = external_key(&engine, &store, "ext-1").unwrap();
    let two = external_key(&engine, &store, "ext-2").unwrap();
    (honest, hostile, engine, one, two)
}

/// The wrapped-secret section of a double-encrypted blob: `blob[66]` bytes after byte 67.
fn wrapped(blob: &[u8]) -> std::ops::Range<usize> {
    67..67 + usize::from(blob[66])
}

#[test]
fn attack_xks_store_outer_layer_swapped_to_another_external_key() {
    let mut attack = Attack::new("xks_store_outer_layer_swapped_to_another_external_key");
    let (_honest, _hostile, engine, one, two) = hostile_fixture();
    let blob_one = encrypt(&engine, &one, b"secret one").unwrap();
    let blob_two = encrypt(&engine, &two, b"secret two").unwrap();
    // Key two's wrapping put into key one's blob (same length: same construction).
    let mut swapped = blob_one.clone();
    let (w1, w2) = (wrapped(&blob_one), wrapped(&blob_two));
    assert_eq!(w1.len(), w2.len());
    swapped[w1.clone()].copy_from_slice(&blob_two[w2.clone()]);
    attack.refused_any(
        decrypt(&engine, &swapped),
        "key two's wrapping in key one's blob",
    );
    // Key one's blob relabelled as key two's (its outer layer then goes to ext-2).
    let mut relabelled = blob_one.clone();
    relabelled[2..18].copy_from_slice(&blob_two[2..18]);
    attack.refused_any(
        decrypt(&engine, &relabelled),
        "key one's blob named as key two's",
    );
    // Key one's blob downgraded to the single-layer construction.
    let mut single = blob_one.clone();
    single[1] = 1;
    attack.refused_any(
        decrypt(&engine, &single),
        "the double layer declared single",
    );
    // Every byte of the wrapping flipped in turn.
    for i in w1 {
        let mut flipped = blob_one.clone();
        flipped[i] ^= 0x80;
        attack.refused_any(decrypt(&engine, &flipped), "a flipped wrapping byte");
    }
    assert_eq!(decrypt(&engine, &blob_one).unwrap(), b"secret one");
}

#[test]
fn attack_xks_store_proxy_answers_with_a_wrong_cdiv() {
    let mut attack = Attack::new("xks_store_proxy_answers_with_a_wrong_cdiv");
    let (_honest, hostile, engine, one, _two) = hostile_fixture();
    hostile.set(Tamper::WrongCdiv);
    for plaintext in [&b"a"[..], b"some data", &[1u8; 4096][..]] {
        let result = encrypt(&engine, &one, plaintext);
        if let Err(e) = &result {
            assert_eq!(e.kind(), ErrorKind::InvalidState, "{e}");
        }
        attack.refused_any(result, "an Encrypt answer whose CDIV does not match");
    }
    hostile.set(Tamper::Honest);
    let blob = encrypt(&engine, &one, b"fine").unwrap();
    assert_eq!(decrypt(&engine, &blob).unwrap(), b"fine");
}

#[test]
fn attack_xks_store_proxy_answers_another_keys_ciphertext() {
    let mut attack = Attack::new("xks_store_proxy_answers_another_keys_ciphertext");
    let (_honest, hostile, engine, one, two) = hostile_fixture();
    let blob_one = encrypt(&engine, &one, b"secret one").unwrap();
    let blob_two = encrypt(&engine, &two, b"secret two").unwrap();
    let other_one = encrypt(&engine, &one, b"another of one").unwrap();
    // The proxy's first Decrypt is of blob one; from then on it answers that plaintext.
    assert_eq!(decrypt(&engine, &blob_one).unwrap(), b"secret one");
    hostile.set(Tamper::ReplayPlaintext);
    for blob in [&blob_two, &other_one] {
        let result = decrypt(&engine, blob);
        if let Err(e) = &result {
            assert_eq!(e.kind(), ErrorKind::InvalidCiphertext, "{e}");
        }
        attack.refused_any(result, "the secret of another ciphertext");
    }
}
