//! The change log: one row per key, key's material, alias or store secret a commit touched, with
//! the generation the commit produced. Each row is sealed with its generation, what it names,
//! whether that was deleted, and how many rows its generation has; every generation has at least
//! one row (`n` for a commit that changed nothing). A reader asking what changed after generation
//! G checks that every generation from G+1 to the store's has exactly its rows, so a dropped or
//! added log row is detected, and then checks each changed row against the log's latest entry
//! for it, so a row put back from an earlier generation is detected too.

use std::collections::{BTreeMap, BTreeSet};

use keyplane::{Error, Result};
use keyplane_sqlite::sealing::{Purpose, StoreKeys};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::GenericClient;

use crate::errors;
use crate::meta::{to_i64, to_u64};

/// What a log row names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// A key record (put or deleted).
    Key,
    /// A key's material (a version stored or removed).
    Material,
    /// An alias.
    Alias,
    /// A store secret (custom key stores included).
    Secret,
    /// Nothing (a commit of no changes).
    Nothing,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Key => "k",
            Kind::Material => "m",
            Kind::Alias => "a",
            Kind::Secret => "s",
            Kind::Nothing => "n",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "k" => Kind::Key,
            "m" => Kind::Material,
            "a" => Kind::Alias,
            "s" => Kind::Secret,
            "n" => Kind::Nothing,
            _ => return None,
        })
    }
}

/// The changes of one commit: what it touched, and whether it ends deleted.
#[derive(Debug, Default)]
pub(crate) struct Touched(pub BTreeMap<(Kind, String), bool>);

impl Touched {
    pub fn note(&mut self, kind: Kind, name: impl Into<String>, deleted: bool) {
        self.0.insert((kind, name.into()), deleted);
    }
}

/// What a log row's seal covers.
struct RowFacts<'a> {
    generation: u64,
    kind: Kind,
    name: &'a str,
    deleted: bool,
    count: u32,
}

impl<'a> RowFacts<'a> {
    fn of(generation: u64, kind: Kind, name: &'a str, deleted: bool, count: u32) -> Self {
        RowFacts {
            generation,
            kind,
            name,
            deleted,
            count,
        }
    }

    fn parts(&self) -> [Vec<u8>; 5] {
        [
            self.generation.to_be_bytes().to_vec(),
            self.kind.code().as_bytes().to_vec(),
            self.name.as_bytes().to_vec(),
            vec![u8::from(self.deleted)],
            self.count.to_be_bytes().to_vec(),
        ]
    }

    /// The row's seal under the store's keys.
    fn seal(&self, keys: &StoreKeys) -> Result<Vec<u8>> {
        let p = self.parts();
        keys.seal(Purpose::PgChangeRow, &[&p[0], &p[1], &p[2], &p[3], &p[4]])
    }

    /// Whether `seal` is the row's seal under the store's keys.
    fn sealed_by(&self, keys: &StoreKeys, seal: &[u8]) -> bool {
        let p = self.parts();
        keys.check(
            Purpose::PgChangeRow,
            &[&p[0], &p[1], &p[2], &p[3], &p[4]],
            seal,
        )
    }
}

/// Writes the log rows of the commit that produces `generation`.
pub(crate) fn write(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    generation: u64,
    mut touched: Touched,
    db: &str,
) -> Result<()> {
    if touched.0.is_empty() {
        touched.note(Kind::Nothing, "", false);
    }
    let count = touched.0.len() as u32;
    if touched.0.len() > COPY_FROM {
        return write_by_copy(c, keys, generation, touched, count, db);
    }
    for ((kind, name), deleted) in touched.0 {
        let facts = RowFacts::of(generation, kind, &name, deleted, count);
        let seal = facts.seal(keys)?;
        c.execute(
            "INSERT INTO keyplane_changes (generation, kind, name, deleted, count, seal) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &to_i64(generation),
                &kind.code(),
                &name,
                &deleted,
                &(count as i32),
                &seal,
            ],
        )
        .map_err(|e| errors::pg("write the change log", db, e))?;
    }
    Ok(())
}

/// A commit touching more than this many names writes its log rows with one `COPY` instead of an
/// `INSERT` each (the bulk path: tens of thousands of rows in one commit).
const COPY_FROM: usize = 64;

/// [`write`] for a large commit: the same rows, sealed the same way, in one `COPY`.
fn write_by_copy(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    generation: u64,
    touched: Touched,
    count: u32,
    db: &str,
) -> Result<()> {
    let failed = |e| errors::pg("write the change log", db, e);
    let sink = c
        .copy_in(
            "COPY keyplane_changes (generation, kind, name, deleted, count, seal) \
             FROM STDIN BINARY",
        )
        .map_err(failed)?;
    let mut writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::BOOL,
            Type::INT4,
            Type::BYTEA,
        ],
    );
    let generation_i64 = to_i64(generation);
    let count_i32 = count as i32;
    for ((kind, name), deleted) in touched.0 {
        let facts = RowFacts::of(generation, kind, &name, deleted, count);
        let seal = facts.seal(keys)?;
        writer
            .write(&[
                &generation_i64,
                &kind.code(),
                &name,
                &deleted,
                &count_i32,
                &seal,
            ])
            .map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    Ok(())
}

/// The log after generation `after` up to `upto`, checked: for each (kind, name) the latest
/// generation that touched it and whether it was deleted then.
#[derive(Debug, Default)]
pub(crate) struct Log {
    pub latest: BTreeMap<(Kind, String), (u64, bool)>,
}

impl Log {
    pub fn names(&self, kind: Kind) -> BTreeSet<&str> {
        self.latest
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n.as_str())
            .collect()
    }
}

fn tampered(db: &str, what: String) -> Error {
    Error::Store(format!(
        "replay detected: the change log of the key store {db} {what}: log rows were dropped, \
         added or edited outside keyplane; run `keyplane store verify` and restore the database \
         from a backup"
    ))
}

/// Reads and checks the log rows of generations `after + 1 ..= upto`.
pub(crate) fn read(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    after: u64,
    upto: u64,
    db: &str,
) -> Result<Log> {
    let rows = c
        .query(
            "SELECT generation, kind, name, deleted, count, seal FROM keyplane_changes \
             WHERE generation > $1 ORDER BY generation",
            &[&to_i64(after)],
        )
        .map_err(|e| errors::pg("read the change log", db, e))?;
    let mut per_generation: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    let mut log = Log::default();
    for row in rows {
        let generation = to_u64(row.get(0));
        let code: String = row.get(1);
        let name: String = row.get(2);
        let deleted: bool = row.get(3);
        let count = u32::try_from(row.get::<_, i32>(4)).unwrap_or(0);
        let seal: Vec<u8> = row.get(5);
        let kind = Kind::from_code(&code)
            .ok_or_else(|| tampered(db, format!("has a row of unknown kind '{code}'")))?;
        let facts = RowFacts::of(generation, kind, &name, deleted, count);
        if !facts.sealed_by(keys, &seal) {
            return Err(tampered(
                db,
                format!("has a row for generation {generation} that fails its root-key check"),
            ));
        }
        if generation > upto {
            return Err(tampered(
                db,
                format!("has a row for generation {generation}, past the store's {upto}"),
            ));
        }
        let entry = per_generation.entry(generation).or_insert((count, 0));
        if entry.0 != count {
            return Err(tampered(
                db,
                format!("disagrees on generation {generation}'s size"),
            ));
        }
        entry.1 += 1;
        log.latest.insert((kind, name), (generation, deleted));
    }
    for generation in after + 1..=upto {
        match per_generation.get(&generation) {
            Some((count, seen)) if count == seen => {}
            Some((count, seen)) => {
                return Err(tampered(
                    db,
                    format!("holds {seen} of generation {generation}'s {count} rows"),
                ))
            }
            None => {
                return Err(tampered(
                    db,
                    format!("has no row for generation {generation}"),
                ))
            }
        }
    }
    Ok(log)
}

/// The latest log entry for key `name` (its record), if the log has one.
pub(crate) fn latest_key_entry(
    c: &mut impl GenericClient,
    keys: &StoreKeys,
    name: &str,
    db: &str,
) -> Result<Option<(u64, bool)>> {
    let row = c
        .query_opt(
            "SELECT generation, deleted, count, seal FROM keyplane_changes \
             WHERE kind = 'k' AND name = $1 ORDER BY generation DESC LIMIT 1",
            &[&name],
        )
        .map_err(|e| errors::pg("read the change log", db, e))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let generation = to_u64(row.get(0));
    let deleted: bool = row.get(1);
    let count = u32::try_from(row.get::<_, i32>(2)).unwrap_or(0);
    let seal: Vec<u8> = row.get(3);
    let facts = RowFacts::of(generation, Kind::Key, name, deleted, count);
    if !facts.sealed_by(keys, &seal) {
        return Err(tampered(
            db,
            format!("has a row for key {name} that fails its root-key check"),
        ));
    }
    Ok(Some((generation, deleted)))
}

/// Drops the log's rows up to `floor` and records that it no longer reaches back past it.
pub(crate) fn trim(c: &mut impl GenericClient, floor: u64, db: &str) -> Result<()> {
    c.execute(
        "UPDATE keyplane_meta SET log_floor = greatest(log_floor, $1) WHERE id = 1",
        &[&to_i64(floor)],
    )
    .map_err(|e| errors::pg("trim the change log", db, e))?;
    c.execute(
        "DELETE FROM keyplane_changes WHERE generation <= $1",
        &[&to_i64(floor)],
    )
    .map_err(|e| errors::pg("trim the change log", db, e))?;
    Ok(())
}
