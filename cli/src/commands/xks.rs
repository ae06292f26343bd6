//! `keyplane xks-proxy`: the external key store (XKS) proxy API over keyplane keys in the store
//! (see docs/xks.md). A thin adapter: the store opened as every command opens it; the proxy itself
//! is `keyplane_server::xks`. With `--json`, one JSON line per startup event on stdout (`tls`,
//! `key`, `listening`, `ready`, then `stopped`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use keyplane::{Engine, ErrorKind};
use keyplane_server::http::ServeError;
use keyplane_server::xks::keys::{alias_for, create_external_key};
use keyplane_server::xks::{XksProxy, XksProxyConfig, XksProxyServer};
use keyplane_xks::api::uri_path_for_prefix;
use keyplane_xks::Credential;

use crate::args::XksProxyArgs;
use crate::commands::serve::{internal, server_runtime, startup_event, stop_server, tls_event};
use crate::context::store_address;
use crate::context::Context;
use crate::outcome::Failure;

/// The name startup lines give.
const PROGRAM: &str = "keyplane xks-proxy";

/// The service console's XKS proxy configuration file (spec section "XKS proxy configuration in
/// AWS KMS console").
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigFile {
    xks_proxy_uri_path: String,
    xks_proxy_authentication_credential: CredentialFile,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialFile {
    access_key_id: String,
    raw_secret_access_key: String,
}

impl Drop for CredentialFile {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.raw_secret_access_key);
    }
}

pub fn run(ctx: &Context, args: XksProxyArgs) -> Result<(), Failure> {
    let json = ctx.global.json;
    let uri_path = uri_path_for_prefix(&args.uri_path_prefix);
    if !keyplane_xks::api::valid_uri_path(&uri_path) {
        return Err(Failure::usage(format!(
            "--uri-path-prefix: {uri_path} must be at most 128 characters of a-z A-Z 0-9 / - _"
        )));
    }
    let mut credentials = Vec::new();
    for path in &args.credentials {
        if !path.exists() && args.generate_credentials {
            write_new_credentials(path, &uri_path)?;
        }
        credentials.push(read_credentials(path, &uri_path)?);
    }
    let tls = args.tls.mode(ctx, args.listen)?;

    let opened = ctx.open_existing(&store_address(ctx)?, None)?;
    let builder = Engine::builder()
        .region(&ctx.global.region)
        .account_id(&ctx.global.account_id)
        .lock_policy(ctx.lock_policy());
    let builder = ctx.with_region_stores(builder)?;
    let (engine, audit_lock) = opened.engine(builder)?.into_parts();
    drop(opened);

    for id in &args.create_keys {
        match create_external_key(&engine, id) {
            Ok(metadata) => event(
                json,
                &[
                    ("event", "key"),
                    ("external_key_id", id),
                    ("key_id", &metadata.key_id),
                ],
                &format!(
                    "external key {id} created: keyplane key {}",
                    metadata.key_id
                ),
            ),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let existing = engine.describe_key(&alias_for(id))?;
                event(
                    json,
                    &[
                        ("event", "key"),
                        ("external_key_id", id),
                        ("key_id", &existing.key_id),
                    ],
                    &format!("external key {id} exists: keyplane key {}", existing.key_id),
                );
            }
            Err(e) => return Err(e.into()),
        }
    }

    let proxy = XksProxy::new(
        engine,
        XksProxyConfig {
            uri_path: uri_path.clone(),
            credentials,
            log_requests: args.log_requests,
        },
    )
    .map_err(|e| Failure::usage(e.to_string()))?;
    let runtime = server_runtime("keyplane-xks-proxy")?;
    let served = runtime.block_on(async {
        let server = XksProxyServer::bind(args.listen, tls, proxy)
            .await
            .map_err(|e| match e {
                ServeError::Bind(..) => internal(e.to_string()),
                _ => Failure::usage(e.to_string()),
            })?;
        if let Some(tls) = server.tls_info() {
            tls_event(PROGRAM, json, tls);
        }
        let endpoint = server.endpoint();
        event(
            json,
            &[
                ("event", "listening"),
                ("endpoint", &endpoint),
                ("uri_path", &uri_path),
            ],
            &format!("XKS proxy API on {endpoint}{uri_path}"),
        );
        let stop = server.shutdown_handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            stop.shutdown();
        });
        event(json, &[("event", "ready")], "ready");
        server.run().await;
        Ok::<(), Failure>(())
    });
    stop_server(PROGRAM, json, runtime, audit_lock, served)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// An XKS proxy configuration file's URI path and credential, for `key-store create/update`.
pub fn read_proxy_config(path: &Path) -> Result<(String, keyplane::XksProxyCredential), Failure> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the XKS proxy configuration file {}: {e}",
            path.display()
        ))
    })?);
    // The error never quotes the file: it holds a secret.
    let file: ConfigFile = serde_json::from_str(&text).map_err(|_| {
        Failure::usage(format!(
            "{} is not an XKS proxy configuration file",
            path.display()
        ))
    })?;
    let credential = keyplane::XksProxyCredential {
        access_key_id: file
            .xks_proxy_authentication_credential
            .access_key_id
            .clone(),
        raw_secret_access_key: keyplane::SecretBytes::from_vec(
            file.xks_proxy_authentication_credential
                .raw_secret_access_key
                .as_bytes()
                .to_vec(),
        ),
    };
    Ok((file.xks_proxy_uri_path.clone(), credential))
}

fn read_credentials(path: &Path, uri_path: &str) -> Result<Credential, Failure> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the credentials file {}: {e}",
            path.display()
        ))
    })?);
    // The error never quotes the file: it holds a secret.
    let file: ConfigFile = serde_json::from_str(&text).map_err(|_| {
        Failure::usage(format!(
            "{} is not an XKS proxy configuration file ({{\"XksProxyUriPath\": ..., \
             \"XksProxyAuthenticationCredential\": {{\"AccessKeyId\": ..., \
             \"RawSecretAccessKey\": ...}}}})",
            path.display()
        ))
    })?;
    if file.xks_proxy_uri_path != uri_path {
        return Err(Failure::usage(format!(
            "{} is for the URI path {}, and this proxy serves {uri_path} (--uri-path-prefix)",
            path.display(),
            file.xks_proxy_uri_path
        )));
    }
    let credential = Credential::new(
        file.xks_proxy_authentication_credential
            .access_key_id
            .as_str(),
        file.xks_proxy_authentication_credential
            .raw_secret_access_key
            .as_str(),
    );
    credential
        .check_spec_format()
        .map_err(|why| Failure::usage(format!("{}: {why}", path.display())))?;
    Ok(credential)
}

/// A new credential of the spec's shapes: an access key id of 26 characters of A-Z 2-7 (130
/// random bits), a secret of 32 random bytes in Base64.
fn write_new_credentials(path: &Path, uri_path: &str) -> Result<(), Failure> {
    let mut random = Zeroizing::new([0u8; 48]);
    aws_lc_rs::rand::fill(&mut random[..])
        .map_err(|_| internal("the random generator failed".into()))?;
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let access_key_id: String = random[..26]
        .iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect();
    let secret = base64::engine::general_purpose::STANDARD.encode(&random[16..48]);
    let file = ConfigFile {
        xks_proxy_uri_path: uri_path.to_owned(),
        xks_proxy_authentication_credential: CredentialFile {
            access_key_id,
            raw_secret_access_key: secret,
        },
    };
    let text =
        Zeroizing::new(serde_json::to_string_pretty(&file).map_err(|e| internal(e.to_string()))?);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", path.display())))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

fn event(json: bool, members: &[(&str, &str)], text: &str) {
    startup_event(PROGRAM, json, members, text);
}
