//! Store addresses: `sqlite:PATH`, `postgres://...` and `memory:`, and where they come from in the
//! environment.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{ErrorKind, OpenError};

/// The environment variable holding a full store address (`sqlite:/var/lib/keyplane`).
pub const STORE_VAR: &str = "KEYPLANE_STORE";
/// The environment variable holding a data directory (the address `sqlite:$KEYPLANE_HOME`).
pub const HOME_VAR: &str = "KEYPLANE_HOME";
/// The data directory when neither `KEYPLANE_STORE` nor `KEYPLANE_HOME` (nor an option) names one.
pub const DEFAULT_DATA_DIR: &str = "keyplane-data";

/// Where a store is. `Debug` and `Display` never show a PostgreSQL address's password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreAddress {
    /// A durable SQLite store in this data directory (`sqlite:PATH`).
    Sqlite(PathBuf),
    /// Keys in this process's memory only, gone when it exits (`memory:`); for tests.
    Memory,
    /// A fleet store in a PostgreSQL database that many nodes share
    /// (`postgres://USER@HOST:PORT/DATABASE?sslmode=disable|require|verify-full&sslrootcert=FILE`),
    /// as given (with its password, if any; [`fmt::Display`] hides it).
    Postgres(String),
}

impl StoreAddress {
    /// Parses `sqlite:PATH` (a data directory; relative paths are from the working directory),
    /// `postgres://...` (or `postgresql://...`) or `memory:`. Anything else is an
    /// [`ErrorKind::BadAddress`] or, for a scheme this build does not know, an
    /// [`ErrorKind::UnknownScheme`].
    pub fn parse(text: &str) -> Result<Self, OpenError> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(OpenError::new(
                ErrorKind::BadAddress,
                format!(
                    "'{text}' is not a store address: give sqlite:PATH (a data directory) or \
                     memory:"
                ),
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                // `sqlite://PATH` is accepted too, as URL-minded users write it.
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(OpenError::new(
                        ErrorKind::BadAddress,
                        format!("'{text}' names no data directory: give sqlite:PATH"),
                    ));
                }
                Ok(StoreAddress::Sqlite(PathBuf::from(path)))
            }
            "postgres" | "postgresql" => {
                keyplane_postgres::PgAddress::parse(text)
                    .map_err(|e| OpenError::new(ErrorKind::BadAddress, e.to_string()))?;
                Ok(StoreAddress::Postgres(text.to_owned()))
            }
            "memory" if rest.is_empty() || rest == "//" => Ok(StoreAddress::Memory),
            "memory" => Err(OpenError::new(
                ErrorKind::BadAddress,
                format!("'{text}': the in-memory store takes no path; write memory:"),
            )),
            other => Err(OpenError::new(
                ErrorKind::UnknownScheme,
                format!(
                    "unknown store scheme '{other}' in '{text}': this keyplane knows sqlite:PATH, \
                     postgres://USER@HOST/DATABASE and memory:"
                ),
            )),
        }
    }

    /// A durable store in `dir`.
    pub fn data_dir(dir: impl Into<PathBuf>) -> Self {
        StoreAddress::Sqlite(dir.into())
    }

    /// The address the environment names: `KEYPLANE_STORE` (an address), else `KEYPLANE_HOME` (a
    /// data directory), else `sqlite:keyplane-data` (the CLI's default).
    pub fn from_env() -> Result<Self, OpenError> {
        Ok(Self::from_env_opt()?.unwrap_or_else(|| Self::data_dir(DEFAULT_DATA_DIR)))
    }

    /// As [`StoreAddress::from_env`], but `None` when neither variable is set (a binding whose
    /// default is the in-memory engine uses this).
    pub fn from_env_opt() -> Result<Option<Self>, OpenError> {
        if let Some(value) = non_empty_var(STORE_VAR) {
            let text = value.into_string().map_err(|_| {
                OpenError::new(
                    ErrorKind::BadAddress,
                    format!("{STORE_VAR} is not valid UTF-8"),
                )
            })?;
            return Self::parse(&text).map(Some);
        }
        Ok(non_empty_var(HOME_VAR).map(|dir| Self::data_dir(PathBuf::from(dir))))
    }

    /// The data directory of a durable store; `None` for `memory:` and PostgreSQL.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            StoreAddress::Sqlite(dir) => Some(dir),
            StoreAddress::Memory | StoreAddress::Postgres(_) => None,
        }
    }

    /// Whether the store outlives the process (SQLite, PostgreSQL), so that front ends open it
    /// through [`crate::open`] rather than start an engine in memory.
    pub fn is_durable(&self) -> bool {
        !matches!(self, StoreAddress::Memory)
    }
}

impl fmt::Display for StoreAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreAddress::Sqlite(dir) => write!(f, "sqlite:{}", dir.display()),
            StoreAddress::Memory => f.write_str("memory:"),
            StoreAddress::Postgres(url) => f.write_str(&keyplane_postgres::redact(url)),
        }
    }
}

impl fmt::Debug for StoreAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreAddress::Sqlite(dir) => f.debug_tuple("Sqlite").field(dir).finish(),
            StoreAddress::Memory => f.write_str("Memory"),
            StoreAddress::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&keyplane_postgres::redact(url))
                .finish(),
        }
    }
}

fn non_empty_var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print_back() {
        for (text, want) in [
            (
                "sqlite:/var/lib/keyplane",
                StoreAddress::data_dir("/var/lib/keyplane"),
            ),
            ("sqlite:data", StoreAddress::data_dir("data")),
            ("sqlite:///abs", StoreAddress::data_dir("/abs")),
            ("SQLITE:x", StoreAddress::data_dir("x")),
            ("memory:", StoreAddress::Memory),
            (" memory: ", StoreAddress::Memory),
        ] {
            assert_eq!(StoreAddress::parse(text).unwrap(), want, "{text}");
        }
        assert_eq!(
            StoreAddress::data_dir("/d").to_string(),
            "sqlite:/d".to_string()
        );
        let pg = StoreAddress::parse("postgres://kp:pw@db:5432/keys?sslmode=require").unwrap();
        assert_eq!(
            pg,
            StoreAddress::Postgres("postgres://kp:pw@db:5432/keys?sslmode=require".into())
        );
        assert_eq!(
            pg.to_string(),
            "postgres://kp:***@db:5432/keys?sslmode=require"
        );
        assert!(pg.is_durable() && pg.dir().is_none());
    }

    #[test]
    fn bad_addresses_are_typed_errors() {
        for (text, kind) in [
            ("", ErrorKind::BadAddress),
            ("/var/lib/keyplane", ErrorKind::BadAddress),
            ("sqlite:", ErrorKind::BadAddress),
            ("memory:/x", ErrorKind::BadAddress),
            ("mysql://db/keys", ErrorKind::UnknownScheme),
            ("postgres://db", ErrorKind::BadAddress),
            ("postgres://db/keys?sslmode=allow", ErrorKind::BadAddress),
            ("s3:bucket", ErrorKind::UnknownScheme),
        ] {
            let err = StoreAddress::parse(text).unwrap_err();
            assert_eq!(err.kind(), kind, "{text}: {err}");
            assert!(!err.message().is_empty());
        }
    }
}
