//! `keyplane key-store ...`: the six custom key store operations.

use keyplane::{CreateCustomKeyStoreRequest, SecretBytes, UpdateCustomKeyStoreRequest};

use crate::args::{KeyStoreCommand, PasswordArgs};
use crate::context::Context;
use crate::outcome::Failure;
use crate::output::done;
use crate::output::{date, Response, Table};

/// The password from `--password-file` (first line) or `--password-env`; never from argv.
fn password(args: &PasswordArgs) -> Result<Option<SecretBytes>, Failure> {
    match (&args.password_file, &args.password_env) {
        (Some(_), Some(_)) => Err(Failure::usage(
            "give --password-file or --password-env, not both",
        )),
        (Some(path), None) => {
            let bytes = crate::io::read_input(Some(path))?;
            let line = bytes
                .split(|b| *b == b'\n')
                .next()
                .unwrap_or_default()
                .strip_suffix(b"\r")
                .unwrap_or_else(|| bytes.split(|b| *b == b'\n').next().unwrap_or_default());
            Ok(Some(SecretBytes::from_vec(line.to_vec())))
        }
        (None, Some(var)) => {
            let value = std::env::var(var).map_err(|_| {
                Failure::usage(format!("the environment variable {var} is not set"))
            })?;
            Ok(Some(SecretBytes::from_vec(value.into_bytes())))
        }
        (None, None) => Ok(None),
    }
}

/// Prints a new key store's id (`{"CustomKeyStoreId": ...}` with `--json`).
fn print_created(json: bool, id: &str) -> Result<(), Failure> {
    if json {
        return Response::new().field("CustomKeyStoreId", id)?.print_ok();
    }
    println!("{id}");
    Ok(())
}

pub fn run(ctx: &Context, command: KeyStoreCommand) -> Result<(), Failure> {
    let engine = ctx.engine()?;
    let json = ctx.global.json;
    match command {
        KeyStoreCommand::Create(args) if args.xks_proxy_uri_endpoint.is_some() => {
            let config = args
                .xks_proxy_config
                .as_deref()
                .ok_or_else(|| Failure::usage("give the proxy's --xks-proxy-config FILE"))?;
            let (uri_path, credential) = crate::commands::xks::read_proxy_config(config)?;
            let id = engine.create_custom_key_store(CreateCustomKeyStoreRequest {
                custom_key_store_name: args.name,
                custom_key_store_type: Some(keyplane::CustomKeyStoreType::ExternalKeyStore),
                xks_proxy_uri_endpoint: args.xks_proxy_uri_endpoint,
                xks_proxy_uri_path: Some(uri_path),
                xks_proxy_connectivity: Some("PUBLIC_ENDPOINT".into()),
                xks_proxy_authentication_credential: Some(credential),
                ..Default::default()
            })?;
            print_created(json, &id)
        }
        KeyStoreCommand::Create(args) => {
            let anchor_file = args.trust_anchor_certificate.as_deref().ok_or_else(|| {
                Failure::usage("give the HSM's --trust-anchor-certificate FILE (PEM)")
            })?;
            let anchor = String::from_utf8(crate::io::read_input(Some(anchor_file))?.to_vec())
                .map_err(|_| Failure::usage("the trust anchor certificate is not UTF-8 (PEM)"))?;
            let key_store_password = password(&args.password)?;
            if key_store_password.is_none() {
                return Err(Failure::usage(
                    "give the token's user PIN with --password-file FILE or --password-env VAR",
                ));
            }
            let id = engine.create_custom_key_store(CreateCustomKeyStoreRequest {
                custom_key_store_name: args.name,
                cloud_hsm_cluster_id: args.cloud_hsm_cluster_id,
                trust_anchor_certificate: Some(anchor),
                key_store_password,
                ..Default::default()
            })?;
            print_created(json, &id)
        }
        KeyStoreCommand::Connect { id } => {
            engine.connect_custom_key_store(&id)?;
            if json {
                return done(true, "");
            }
            let page = engine.describe_custom_key_stores(Some(&id), None, None, None)?;
            let state =
                page.items
                    .first()
                    .map_or_else(String::new, |s| match s.connection_error_code {
                        Some(code) => format!("{} ({code})", s.connection_state),
                        None => s.connection_state.to_string(),
                    });
            done(false, &format!("{id}: {state}"))
        }
        KeyStoreCommand::Disconnect { id } => {
            engine.disconnect_custom_key_store(&id)?;
            done(json, &format!("Disconnected {id}"))
        }
        KeyStoreCommand::Delete { id } => {
            engine.delete_custom_key_store(&id)?;
            done(json, &format!("Deleted {id}"))
        }
        KeyStoreCommand::Update(args) => {
            let (xks_proxy_uri_path, xks_proxy_authentication_credential) =
                match args.xks_proxy_config.as_deref() {
                    Some(path) => {
                        let (path, credential) = crate::commands::xks::read_proxy_config(path)?;
                        (Some(path), Some(credential))
                    }
                    None => (None, None),
                };
            engine.update_custom_key_store(UpdateCustomKeyStoreRequest {
                custom_key_store_id: args.id.clone(),
                new_custom_key_store_name: args.new_name,
                key_store_password: password(&args.password)?,
                cloud_hsm_cluster_id: args.cloud_hsm_cluster_id,
                xks_proxy_uri_endpoint: args.xks_proxy_uri_endpoint,
                xks_proxy_uri_path,
                xks_proxy_authentication_credential,
                ..Default::default()
            })?;
            done(json, &format!("Updated {}", args.id))
        }
        KeyStoreCommand::List { id, name, page } => {
            let stores = engine.describe_custom_key_stores(
                id.as_deref(),
                name.as_deref(),
                page.limit,
                page.marker.as_deref(),
            )?;
            if json {
                return Response::print_page("CustomKeyStores", &stores);
            }
            let mut table = Table::new(&["ID", "NAME", "TYPE", "CLUSTER", "STATE", "CREATED"]);
            for s in &stores.items {
                table.row(vec![
                    s.custom_key_store_id.clone(),
                    s.custom_key_store_name.clone(),
                    s.custom_key_store_type.to_string(),
                    s.cloud_hsm_cluster_id.clone().unwrap_or_else(|| "-".into()),
                    match s.connection_error_code {
                        Some(code) => format!("{} ({code})", s.connection_state),
                        None => s.connection_state.to_string(),
                    },
                    date(s.creation_date.0),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}
