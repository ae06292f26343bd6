//! `keyplane serve`: the service's wire protocol over the store, for AWS SDKs and the aws CLI.
//!
//! A thin adapter: the store, root key and audit log as every command opens them; the server
//! itself is `keyplane_server::http`. With `--json`, one JSON line per startup event on stdout
//! (`tls`, `credential` for a `memory:` store, `listening`, `console`, `admin`, `ready`, then
//! `stopped`).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use keyplane::Engine;
use keyplane_server::auth::{Authenticator, CredentialStore};
use keyplane_server::coalesce::CoalesceConfig;
use keyplane_server::console::{AuditPaths, ConsoleConfig};
use keyplane_server::http::{Limits, ServeError, Server, ServerConfig, TlsMode};
use keyplane_server::protocol::Service;
use keyplane_server::Metrics;
use keyplane_store_address::DEFAULT_SCHEDULER_INTERVAL;

use crate::args::{ServeArgs, TlsArgs};
use crate::context::store_address;
use crate::context::Context;
use crate::outcome::{Failure, INTERNAL};

/// The staleness bound `--max-staleness` gives, and how often the store is then followed: 4 times
/// within the bound, at most the default interval.
fn staleness(ms: Option<u64>) -> Result<(Option<Duration>, Option<Duration>), Failure> {
    let Some(ms) = ms else {
        return Ok((None, None));
    };
    if ms < 4 {
        return Err(Failure::usage(
            "--max-staleness must be at least 4 milliseconds (the store is followed 4 times \
             within it)",
        ));
    }
    let bound = Duration::from_millis(ms);
    Ok((
        Some(bound),
        Some((bound / 4).min(DEFAULT_SCHEDULER_INTERVAL)),
    ))
}

pub fn run(ctx: &Context, args: ServeArgs) -> Result<(), Failure> {
    let json = ctx.global.json;
    let tls = args.tls.mode(ctx, args.listen)?;
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_connections: args.max_connections,
        idle_timeout: Duration::from_millis(args.idle_timeout_ms),
        header_timeout: Duration::from_millis(args.header_timeout_ms),
        drain_timeout: Duration::from_millis(args.drain_timeout_ms),
        ..Limits::default()
    };
    let coalesce = CoalesceConfig {
        enabled: !args.no_coalesce,
        window: Duration::from_micros(args.coalesce_window_us),
        max_items: args.coalesce_max_items.max(1),
        run_when_idle: true,
    };
    let config = ServerConfig {
        listen: args.listen,
        admin_listen: args.admin_listen,
        tls,
        limits,
    };

    let address = store_address(ctx)?;
    let (max_staleness, follow_every) = staleness(args.max_staleness)?;
    // Follow other processes' changes (the default interval, or 4 times within the staleness
    // bound).
    let opened = ctx.open_existing(&address, follow_every)?;
    let mut builder = Engine::builder()
        .region(&ctx.global.region)
        .account_id(&ctx.global.account_id)
        .lock_policy(ctx.lock_policy());
    if let (Some(bound), Some(every)) = (max_staleness, follow_every) {
        builder = builder.max_staleness(bound).scheduler_interval(every);
    }
    let builder = ctx.with_region_stores(builder)?;
    let builder = ctx.with_xks(ctx.with_pkcs11_tokens(builder)?);
    let (engine, audit_lock) = opened.engine(builder)?.into_parts();
    let (credentials, mut bootstrap) = match opened.store() {
        Some(store) => (CredentialStore::sqlite(Arc::clone(store)), None),
        None => {
            // Nothing else can create a credential for a store in this process's memory.
            let credentials = CredentialStore::in_memory();
            let root = format!("arn:aws:iam::{}:root", ctx.global.account_id);
            let created = credentials.create(&root)?;
            (credentials, Some(created))
        }
    };
    drop(opened);

    let runtime = server_runtime("keyplane-serve")?;
    let metrics = Arc::new(Metrics::default());
    let service = Service::new(engine, coalesce, Arc::clone(&metrics));
    let authenticator = Authenticator::new(credentials, &ctx.global.region);
    let max_connections = config.limits.max_connections;
    let console = args.console_listen.map(|listen| {
        let mut console = ConsoleConfig::new(listen);
        if !ctx.global.no_audit {
            let paths = ctx.audit_paths();
            console.audit = Some(AuditPaths {
                dir: paths.dir,
                public_key: paths.public_key,
            });
        }
        console
    });
    let served = runtime.block_on(async {
        let bind_failure = |e: ServeError| match e {
            // The port taken, or no permission to bind it: the environment, not the options.
            ServeError::Bind(..) => internal(e.to_string()),
            _ => Failure::usage(e.to_string()),
        };
        let mut server = Server::bind(config, service, authenticator, metrics)
            .await
            .map_err(bind_failure)?;
        if let Some(console) = console {
            server = server.with_console(console).map_err(bind_failure)?;
        }
        match server.fd_limit() {
            Some(limit) if limit < max_connections as u64 + 64 => eprintln!(
                "keyplane serve: warning: the open-files limit is {limit} (raised to the hard \
                 limit), below --max-connections {max_connections}: connections past it wait to \
                 be accepted"
            ),
            Some(limit) => eprintln!(
                "keyplane serve: open-files limit {limit} (raised to the hard limit), at most \
                 {max_connections} connections"
            ),
            None => {}
        }
        if let Some(admin) = server.admin_addr().filter(|a| !a.ip().is_loopback()) {
            eprintln!(
                "keyplane serve: warning: the admin listener {admin} (plain HTTP, no \
                 authentication) is not on a loopback address"
            );
        }
        // Signals are handled before `ready` is printed: a SIGTERM right after it drains.
        server
            .shutdown_on_signals()
            .map_err(|e| internal(format!("cannot listen for signals: {e}")))?;
        // The bootstrap secret is shown once, then zeroed.
        let shown = bootstrap.take();
        announce(json, &server, shown.as_ref());
        drop(shown);
        server.run().await;
        Ok::<(), Failure>(())
    });
    stop_server("keyplane serve", json, runtime, audit_lock, served)
}

/// A server command's runtime: multi-threaded, its threads named `name`.
pub(crate) fn server_runtime(name: &str) -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(name)
        .build()
        .map_err(|e| internal(format!("cannot start the {name} runtime: {e}")))
}

/// Ends a server command (`program`) whose server returned `served`: connections still open past
/// the drain timeout are cut (the engine's last handle goes with them, and its audit log writes
/// its final digest), the audit log's lock is released, and the `stopped` event is said.
pub(crate) fn stop_server<L>(
    program: &str,
    json: bool,
    runtime: tokio::runtime::Runtime,
    audit_lock: L,
    served: Result<(), Failure>,
) -> Result<(), Failure> {
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(audit_lock);
    served?;
    startup_event(program, json, &[("event", "stopped")], "stopped");
    Ok(())
}

impl TlsArgs {
    /// The TLS choice of a listener on `listen` (`keyplane serve`, `keyplane xks-proxy`):
    /// exactly one of certificate files, a self-signed certificate, or plain HTTP on loopback.
    pub(crate) fn mode(&self, ctx: &Context, listen: SocketAddr) -> Result<TlsMode, Failure> {
        let choice = (
            self.tls_cert.as_ref(),
            self.tls_key.as_ref(),
            self.tls_self_signed,
            self.plain_http,
        );
        match choice {
            (Some(cert), Some(key), false, false) => Ok(TlsMode::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None, true, false) => Ok(TlsMode::SelfSigned {
                dir: ctx.data_dir().join("tls"),
            }),
            (None, None, false, true) if !listen.ip().is_loopback() => {
                Err(Failure::usage(format!(
                    "--plain-http is allowed only on a loopback listen address (127.0.0.1, ::1), \
                     not {listen}: use --tls-cert FILE --tls-key FILE or --tls-self-signed"
                )))
            }
            (None, None, false, true) => Ok(TlsMode::Plain),
            _ => Err(Failure::usage(
                "choose how to serve: --tls-cert FILE --tls-key FILE (your certificate), \
                 --tls-self-signed (a certificate made and kept in <data dir>/tls/), or \
                 --plain-http (no TLS; loopback addresses only)",
            )),
        }
    }
}

pub(crate) fn internal(message: String) -> Failure {
    Failure {
        code: "KMSInternalException".into(),
        message,
        exit: INTERNAL,
    }
}

/// The startup lines: `tls`, `credential` (memory: only), `listening`, `admin`, `ready`.
fn announce(
    json: bool,
    server: &Server,
    bootstrap: Option<&keyplane_server::auth::credentials::NewCredential>,
) {
    if let Some(tls) = server.tls_info() {
        tls_event("keyplane serve", json, tls);
    }
    if let Some(created) = bootstrap {
        // The only time this secret is shown: a memory: store's credentials die with the process.
        // The line is built in a buffer zeroed when dropped.
        let secret = created.secret_access_key.as_str();
        let line = if json {
            let mut escaped = Zeroizing::new(String::with_capacity(secret.len() * 2));
            for c in secret.chars() {
                match c {
                    '"' | '\\' => {
                        escaped.push('\\');
                        escaped.push(c);
                    }
                    c if c.is_control() => escaped.push_str(&format!("\\u{:04x}", c as u32)),
                    c => escaped.push(c),
                }
            }
            Zeroizing::new(format!(
                r#"{{"event":"credential","access_key_id":{},"secret_access_key":"{}","principal":{}}}"#,
                serde_json::Value::from(created.access_key_id.as_str()),
                escaped.as_str(),
                serde_json::Value::from(created.principal.as_str()),
            ))
        } else {
            Zeroizing::new(format!(
                "keyplane serve: credential for {}: AccessKeyId {} SecretAccessKey {secret}",
                created.principal, created.access_key_id
            ))
        };
        write_line(&line);
    }
    let address = server.local_addr().to_string();
    let url = server.url();
    event(
        json,
        &[("event", "listening"), ("address", &address), ("url", &url)],
        &format!("listening on {url}"),
    );
    if let (Some(console), Some(url)) = (server.console_addr(), server.console_url()) {
        event(
            json,
            &[
                ("event", "console"),
                ("address", &console.to_string()),
                ("url", &url),
            ],
            &format!("console for key administrators on {url}"),
        );
    }
    if let Some(admin) = server.admin_addr() {
        let url = format!("http://{admin}");
        event(
            json,
            &[
                ("event", "admin"),
                ("address", &admin.to_string()),
                ("url", &url),
            ],
            &format!("admin (metrics, health) on {url}"),
        );
    }
    event(json, &[("event", "ready")], "ready");
}

/// One line on stdout, flushed at once: with `--json`, an object whose members keep the given
/// order (`event` first).
fn event(json: bool, members: &[(&str, &str)], text: &str) {
    startup_event("keyplane serve", json, members, text);
}

/// One startup line of a server command (`program`): with `--json` a JSON object of `members`,
/// otherwise `program: text`.
pub(crate) fn startup_event(program: &str, json: bool, members: &[(&str, &str)], text: &str) {
    if json {
        let members: Vec<String> = members
            .iter()
            .map(|(name, value)| format!("\"{name}\":{}", serde_json::Value::from(*value)))
            .collect();
        write_line(&format!("{{{}}}", members.join(",")));
    } else {
        write_line(&format!("{program}: {text}"));
    }
}

/// The `tls` startup line: the certificate a server presents and its SHA-256 fingerprint.
pub(crate) fn tls_event(program: &str, json: bool, tls: &keyplane_server::http::TlsInfo) {
    let certificate = tls.certificate.display().to_string();
    startup_event(
        program,
        json,
        &[
            ("event", "tls"),
            ("certificate", &certificate),
            ("fingerprint_sha256", &tls.fingerprint_sha256),
        ],
        &format!(
            "TLS certificate {certificate} (SHA-256 {})",
            tls.fingerprint_sha256
        ),
    );
}

fn write_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
