//! `keyplane store init|verify|backup --store postgres://...` and `keyplane store migrate`: the
//! store commands against a PostgreSQL fleet store. The data directory is the node's: it keeps
//! the root key file (unless another root key source is given) and this node's rollback
//! witness.

use std::path::Path;
use std::sync::Arc;

use keyplane::store::KeyStore;
use keyplane_postgres::{copy_store, PgOptions, PostgresKeyStore};
use keyplane_sqlite::SqliteKeyStore;
use keyplane_store_address::{open, AuditOptions, OpenOptions, StoreAddress};

use crate::args::Argon2Args;
use crate::context::Context;
use crate::outcome::Failure;
use crate::output::{print_json, service_value};

fn pg_address(url: &str) -> Result<String, Failure> {
    match StoreAddress::parse(url)? {
        StoreAddress::Postgres(url) => Ok(url),
        other => Err(Failure::usage(format!(
            "--store takes a PostgreSQL address (postgres://USER@HOST:PORT/DATABASE), not {other}"
        ))),
    }
}

fn node_options(ctx: &Context) -> Result<PgOptions, Failure> {
    let dir = ctx.data_dir();
    if !dir.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    }
    Ok(PgOptions {
        lock_policy: ctx.lock_policy(),
        witness_dir: Some(dir.to_path_buf()),
        ..PgOptions::default()
    })
}

fn open_pg(ctx: &Context, url: &str) -> Result<PostgresKeyStore, Failure> {
    let url = pg_address(url)?;
    Ok(PostgresKeyStore::open(
        &url,
        ctx.current_provider()?,
        node_options(ctx)?,
    )?)
}

pub fn init(ctx: &Context, url: &str, cost: &Argon2Args) -> Result<(), Failure> {
    let url = pg_address(url)?;
    let provider = ctx.provider(ctx.root_key_source()?, cost)?;
    let store = PostgresKeyStore::init(&url, provider.clone(), node_options(ctx)?)?;
    if ctx.global.json {
        print_json(&serde_json::json!({
            "Store": store.describe(),
            "RootKey": provider.describe(),
            "NodeDir": ctx.data_dir().display().to_string(),
        }));
    } else {
        println!("Created a keyplane store in {}", store.describe());
        println!("Root key: {}", provider.describe());
        println!(
            "Every node opening it needs the same root key; keep a copy of it somewhere safe and \
             apart from the database."
        );
    }
    Ok(())
}

pub fn verify(ctx: &Context, url: &str, no_repair: bool) -> Result<(), Failure> {
    let store = open_pg(ctx, url)?;
    let report = store.verify(!no_repair)?;
    if ctx.global.json {
        print_json(&serde_json::json!({
            "Store": store.describe(),
            "Generation": report.generation,
            "Keys": report.keys,
            "Aliases": report.aliases,
            "Versions": report.versions,
            "DamagedCopies": report.damaged_copies,
            "RepairedCopies": report.repaired_copies,
            "LostVersions": report.lost_versions,
            "Problems": report.problems,
        }));
    } else {
        println!(
            "{}: generation {}, {} keys, {} key versions, {} aliases",
            store.describe(),
            report.generation,
            report.keys,
            report.versions,
            report.aliases
        );
        println!(
            "Copies: {} damaged, {} repaired; {} versions lost",
            report.damaged_copies, report.repaired_copies, report.lost_versions
        );
        for problem in &report.problems {
            println!("  problem: {problem}");
        }
    }
    let repaired_all = report.damaged_copies == report.repaired_copies;
    let only_repaired = report
        .problems
        .iter()
        .all(|p| p.starts_with("copy ") && repaired_all);
    if report.is_pristine() || (only_repaired && report.lost_versions == 0) {
        Ok(())
    } else {
        Err(Failure::refused(
            "StoreDamaged",
            "the store has damage or was edited outside keyplane (see above); restore the \
             database from a backup",
        ))
    }
}

/// A PostgreSQL store's backup: a new SQLite store in `dir` under the same root key, restored
/// with `keyplane store migrate --from sqlite:DIR --to postgres://...`.
pub fn backup(ctx: &Context, url: &str, dir: &Path) -> Result<(), Failure> {
    let store = open_pg(ctx, url)?;
    let backup = SqliteKeyStore::init(dir, ctx.current_provider()?, ctx.store_options())?;
    let report = copy_store(&store, &backup)?;
    if ctx.global.json {
        print_json(&service_value(&report)?);
    } else {
        println!(
            "Backed up {} keys ({} key versions, {} aliases) of {} to the SQLite store {}. It is \
             wrapped under the same root key: keep that key with it. Restore it with `keyplane \
             store migrate --from sqlite:{} --to postgres://...`.",
            report.keys,
            report.versions,
            report.aliases,
            store.describe(),
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Whether the global options name a root key source.
fn explicit_root_key(ctx: &Context) -> bool {
    let g = &ctx.global;
    g.root_key_file.is_some()
        || g.root_key_env.is_some()
        || g.passphrase_file.is_some()
        || g.passphrase_env.is_some()
}

fn open_address(ctx: &Context, text: &str, create: bool) -> Result<Arc<dyn KeyStore>, Failure> {
    let address = StoreAddress::parse(text)?;
    let options = OpenOptions {
        // The root key options apply to both stores; without them the source opens with its
        // own data directory's key (`KEYPLANE_ROOT_KEY`, else its key file) and the target is
        // made under the data directory's.
        root_key: if create || explicit_root_key(ctx) {
            Some(ctx.root_key_source()?)
        } else {
            None
        },
        open_only: !create,
        store: ctx.store_options(),
        audit: AuditOptions::off(),
        node_dir: Some(ctx.data_dir().to_path_buf()),
        ..OpenOptions::default()
    };
    let opened = open(&address, options)?;
    if let Some(store) = opened.store() {
        return Ok(Arc::clone(store) as Arc<dyn KeyStore>);
    }
    if let Some(store) = opened.postgres() {
        return Ok(Arc::clone(store) as Arc<dyn KeyStore>);
    }
    Err(Failure::usage(format!(
        "{address} is not a durable store: migrate between sqlite:DIR and postgres://..."
    )))
}

pub fn migrate(ctx: &Context, from: &str, to: &str) -> Result<(), Failure> {
    let source = open_address(ctx, from, false)?;
    let target = open_address(ctx, to, true)?;
    let report = copy_store(source.as_ref(), target.as_ref())?;
    if ctx.global.json {
        print_json(&service_value(&report)?);
    } else {
        println!(
            "Migrated {} keys ({} key versions), {} aliases and {} custom key stores from {} to \
             {}; the copy loads back the same (generation {}).",
            report.keys,
            report.versions,
            report.aliases,
            report.custom_key_stores,
            source.describe(),
            target.describe(),
            report.generation
        );
    }
    Ok(())
}
