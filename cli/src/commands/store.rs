//! `keyplane store ...`: create, verify, back up, restore and re-key the store.

use std::sync::Arc;

use keyplane_sqlite::root_key::RootKeyProvider;
use keyplane_sqlite::{SqliteKeyStore, VerifyReport};

use crate::args::{RotateRootKeyArgs, StoreCommand};
use crate::context::{Context, RootKeySource};
use crate::outcome::Failure;
use crate::output::{date, print_fields, print_json, service_value, Table};

pub fn run(ctx: &Context, command: StoreCommand) -> Result<(), Failure> {
    let json = ctx.global.json;
    match command {
        StoreCommand::Init {
            cost,
            store: Some(url),
        } => super::store_postgres::init(ctx, &url, &cost),
        StoreCommand::Verify {
            no_repair,
            store: Some(url),
        } => super::store_postgres::verify(ctx, &url, no_repair),
        StoreCommand::Backup {
            file,
            store: Some(url),
        } => super::store_postgres::backup(ctx, &url, &file),
        StoreCommand::Migrate { from, to } => super::store_postgres::migrate(ctx, &from, &to),
        StoreCommand::Init { cost, store: None } => {
            let provider = ctx.provider(ctx.root_key_source()?, &cost)?;
            let store =
                SqliteKeyStore::init(ctx.data_dir(), provider.clone(), ctx.store_options())?;
            let store_id = store.store_id()?;
            let audit = if ctx.global.no_audit {
                None
            } else {
                Some(keyplane_store_address::audit::init(ctx.data_dir(), &store)?)
            };
            if json {
                let mut body = serde_json::json!({
                    "DataDir": ctx.data_dir().display().to_string(),
                    "StoreId": store_id,
                    "RootKey": provider.describe(),
                });
                if let Some(audit) = &audit {
                    body["AuditPublicKey"] = audit.public_key.display().to_string().into();
                    body["AuditKeyFingerprint"] = audit.fingerprint.clone().into();
                }
                print_json(&body);
            } else {
                println!(
                    "Created a keyplane store in {} (store id {store_id})",
                    ctx.data_dir().display()
                );
                println!("Root key: {}", provider.describe());
                if let Some(audit) = &audit {
                    if let Some(archived) = &audit.archived {
                        println!(
                            "An audit log of an earlier store was in the way: moved to {}",
                            archived.display()
                        );
                    }
                    println!(
                        "Audit signing key: created, kept wrapped under the root key; public key \
                         in {} (fingerprint {})",
                        audit.public_key.display(),
                        audit.fingerprint
                    );
                }
                if let RootKeySource::KeyFile(path) = ctx.root_key_source()? {
                    println!(
                        "Keep a copy of {} somewhere safe and apart from the data: without it \
                         the store and its backups cannot be opened.",
                        path.display()
                    );
                }
            }
            Ok(())
        }
        StoreCommand::Verify {
            no_repair,
            store: None,
        } => {
            let store = ctx.open_store()?;
            let report = store.verify(!no_repair)?;
            if json {
                print_json(&service_value(&report)?);
            } else {
                print_verify(&report);
            }
            if report.is_healthy() {
                Ok(())
            } else {
                Err(Failure::refused(
                    "StoreDamaged",
                    "the store has damage that could not be repaired (see above); restore it from \
                     a backup with `keyplane store restore FILE`",
                ))
            }
        }
        StoreCommand::Backup { file, store: None } => {
            let report = ctx.open_store()?.backup(&file)?;
            if json {
                print_json(&service_value(&report)?);
            } else {
                println!(
                    "Backed up {} keys (generation {}) to {} ({} bytes). It is wrapped under the \
                     current root key: keep that key with it.",
                    report.keys, report.generation, report.path, report.bytes
                );
            }
            Ok(())
        }
        StoreCommand::Restore { file, force, adopt } => {
            let provider = ctx.current_provider()?;
            let report = match file {
                Some(file) if !adopt => SqliteKeyStore::restore(
                    ctx.data_dir(),
                    &file,
                    provider,
                    ctx.store_options(),
                    force,
                )?,
                _ => SqliteKeyStore::adopt(ctx.data_dir(), provider, ctx.store_options())?,
            };
            if json {
                print_json(&service_value(&report)?);
            } else {
                println!(
                    "Restored {} keys from {} (taken at generation {}); {} generations of later \
                     changes were undone. The store is now at generation {}; the restore is \
                     recorded in its event log.",
                    report.keys,
                    report.from,
                    report.backup_generation,
                    report.generations_rolled_back,
                    report.generation
                );
            }
            Ok(())
        }
        StoreCommand::RotateRootKey(args) => rotate_root_key(ctx, args),
        StoreCommand::Events { limit } => {
            let events = ctx.open_store()?.events(limit)?;
            if json {
                print_json(&serde_json::json!({ "Events": service_value(&events)? }));
                return Ok(());
            }
            let mut table = Table::new(&["WHEN", "EVENT", "KEY", "DETAIL"]);
            for e in &events {
                table.row(vec![
                    date(e.at_ms),
                    e.kind.clone(),
                    e.key_id
                        .as_ref()
                        .map(|k| format!("{k} v{}", e.version.unwrap_or(0)))
                        .unwrap_or_default(),
                    e.detail.clone(),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

fn print_verify(r: &VerifyReport) {
    print_fields(&[
        ("store", r.store.clone()),
        ("store id", r.store_id.clone()),
        ("schema version", r.schema_version.to_string()),
        ("generation", r.generation.to_string()),
        (
            "witness generation",
            r.witness_generation
                .map(|g| g.to_string())
                .unwrap_or_default(),
        ),
        (
            "root key",
            format!("{} (epoch {})", r.root_key_kind, r.root_key_epoch),
        ),
        ("SQLite integrity", r.integrity_check.join("; ")),
        ("keys", r.keys.to_string()),
        ("aliases", r.aliases.to_string()),
        ("key versions", r.versions.to_string()),
        ("copies checked", r.copies_checked.to_string()),
        ("copies good", r.copies_good.to_string()),
        ("copies damaged", r.damaged_copies.len().to_string()),
        ("copies repaired now", r.repaired.to_string()),
        ("versions lost", r.lost_versions.len().to_string()),
        ("damaged records", r.damaged_records.len().to_string()),
        ("repairs recorded", r.repairs_recorded.to_string()),
        ("store secrets", r.secrets.to_string()),
        (
            "secret copies good",
            format!("{} of {}", r.secret_copies_good, r.secret_copies_checked),
        ),
    ]);
    for c in &r.damaged_copies {
        println!(
            "  damaged: key {} version {} copy {}: {}{}",
            c.key_id,
            c.version,
            c.copy,
            c.damage,
            if c.repaired { " (repaired)" } else { "" }
        );
    }
    for l in &r.lost_versions {
        println!(
            "  LOST: key {} version {}: no good copy; the key is Unavailable",
            l.key_id, l.version
        );
    }
    for c in &r.damaged_secret_copies {
        println!(
            "  damaged: store secret '{}' copy {}: {}{}",
            c.name,
            c.copy,
            c.damage,
            if c.repaired { " (repaired)" } else { "" }
        );
    }
    for name in &r.lost_secrets {
        println!("  LOST: store secret '{name}': no good copy");
    }
    for d in r.damaged_records.iter().chain(&r.dangling_aliases) {
        println!("  damaged: {d}");
    }
    println!(
        "{}",
        if r.is_pristine() {
            "OK: every copy of every key version is good, and of every store secret"
        } else if r.is_healthy() {
            "OK after repair"
        } else {
            "DAMAGED"
        }
    );
}

fn rotate_root_key(ctx: &Context, args: RotateRootKeyArgs) -> Result<(), Failure> {
    let store = ctx.open_store()?;
    let current = ctx.root_key_source()?;
    let given: Vec<RootKeySource> = [
        args.new_root_key_file.map(RootKeySource::KeyFile),
        args.new_root_key_env.map(RootKeySource::EnvVar),
        args.new_passphrase_file.map(RootKeySource::PassphraseFile),
        args.new_passphrase_env.map(RootKeySource::PassphraseEnv),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() > 1 {
        return Err(Failure::usage("give at most one new root key source"));
    }
    let new: Arc<dyn RootKeyProvider> = match given.into_iter().next() {
        Some(source) => ctx.provider(source, &args.argon2)?,
        None => match current {
            RootKeySource::EnvVar(var) => {
                return Err(Failure::usage(format!(
                    "the root key comes from environment variable {var}: give the new key's \
                     variable with --new-root-key-env (or another --new-... source)"
                )))
            }
            // A key file or a passphrase: the new key goes where the current one is.
            current => ctx.provider(current, &args.argon2)?,
        },
    };
    let report = store.rotate_root_key(new)?;
    if ctx.global.json {
        print_json(&service_value(&report)?);
    } else {
        println!(
            "Rotated the root key from {} to {} (epoch {}): {} key versions and {} store secrets \
             (the audit signing key) rewrapped ({} copies), {} records re-sealed, in one \
             transaction. The old root key is retired; backups taken before now still need it.",
            report.from,
            report.to,
            report.root_key_epoch,
            report.versions_rewrapped,
            report.secrets_rewrapped,
            report.copies_written,
            report.records_resealed
        );
        if report.versions_lost > 0 {
            println!(
                "{} key versions had no good copy and stay unreadable (see `keyplane store verify`)",
                report.versions_lost
            );
        }
    }
    Ok(())
}
