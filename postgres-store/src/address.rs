//! A `postgres://user[:password]@host[:port]/db?sslmode=...&sslrootcert=...` address: the part the
//! `postgres` crate parses (everything but the TLS settings) and the TLS settings, which keyplane
//! handles itself through rustls.

use std::path::PathBuf;
use std::str::FromStr;

use keyplane::{Error, Result};

/// How the connection to the database is protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP or a Unix socket (`sslmode=disable`, the default).
    Disable,
    /// TLS, refusing a server that does not offer it. With `sslrootcert=` the server's
    /// certificate chain is checked against it (but not its name); without, it is not checked
    /// (libpq's `require`).
    Require,
    /// TLS with the server's certificate checked against `sslrootcert=` and its name against the
    /// host (libpq's `verify-full`).
    VerifyFull,
}

/// A parsed PostgreSQL store address.
#[derive(Clone)]
pub struct PgAddress {
    pub(crate) config: postgres::Config,
    pub ssl_mode: SslMode,
    pub root_cert: Option<PathBuf>,
    shown: String,
}

impl std::fmt::Debug for PgAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgAddress {
    /// Parses `address` (`postgres://` or `postgresql://`).
    pub fn parse(address: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Validation(format!(
                "the store address {} is not a PostgreSQL address: {why} (expected \
                 postgres://USER@HOST:PORT/DATABASE?sslmode=disable|require|verify-full)",
                redact(address)
            ))
        };
        let rest = address
            .strip_prefix("postgres://")
            .or_else(|| address.strip_prefix("postgresql://"))
            .ok_or_else(|| bad("it does not start with postgres://"))?;
        let (base, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let mut ssl_mode = SslMode::Disable;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "sslmode" => {
                    ssl_mode = match value {
                        "disable" => SslMode::Disable,
                        "require" => SslMode::Require,
                        "verify-full" => SslMode::VerifyFull,
                        other => {
                            return Err(bad(&format!(
                                "sslmode={other} is not supported (disable, require or verify-full)"
                            )))
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(value)),
                _ => kept.push(pair),
            }
        }
        if ssl_mode == SslMode::VerifyFull && root_cert.is_none() {
            return Err(bad(
                "sslmode=verify-full needs sslrootcert=FILE (the CA's certificate)",
            ));
        }
        let mut url = format!("postgresql://{base}");
        if !kept.is_empty() {
            url.push('?');
            url.push_str(&kept.join("&"));
        }
        let config = postgres::Config::from_str(&url).map_err(|e| bad(&e.to_string()))?;
        if config.get_dbname().is_none() {
            return Err(bad("it names no database"));
        }
        Ok(PgAddress {
            config,
            ssl_mode,
            root_cert,
            shown: redact(address),
        })
    }

    /// The address with any password replaced by `***`, for messages.
    pub fn display(&self) -> &str {
        &self.shown
    }
}

/// `address` with the password (between `:` and `@` in the authority) replaced by `***`.
pub fn redact(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else {
        return address.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(u, _)| u);
            let masked = if user_info.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{}", &rest[authority_end..])
        }
        None => address.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_are_taken_out_and_passwords_never_shown() {
        let a = PgAddress::parse(
            "postgres://kp:secret@db.example:5433/keys?sslmode=verify-full&sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(a.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            a.root_cert.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        assert!(!format!("{a:?}").contains("secret"));
        assert_eq!(a.config.get_dbname(), Some("keys"));
        assert_eq!(a.config.get_ports(), &[5433]);
        let e = PgAddress::parse("postgres://kp:pw@h/db?sslmode=allow").unwrap_err();
        assert!(e.to_string().contains("sslmode=allow"), "{e}");
        assert!(!e.to_string().contains("pw@"), "{e}");
        assert!(PgAddress::parse("postgres://h/db?sslmode=verify-full").is_err());
        assert!(PgAddress::parse("postgres://h").is_err());
        assert!(PgAddress::parse("sqlite:/x").is_err());
    }
}
