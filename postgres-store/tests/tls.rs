//! TLS to the database through rustls: `sslmode=verify-full` against the test CA (the server's
//! certificate chain and name checked), `sslmode=require` (encrypted, not checked), a server
//! whose certificate the given CA did not sign refused. Needs KEYPLANE_TEST_PG_CA (the CA that
//! scripts/test-postgres makes for its cluster).

mod common;

use common::*;
use keyplane::store::KeyStore;
use keyplane::Error;
use keyplane_postgres::PostgresKeyStore;

fn ca_or_say_why() -> Option<String> {
    match std::env::var("KEYPLANE_TEST_PG_CA") {
        Ok(ca) if !ca.is_empty() => Some(ca),
        _ => {
            let msg = "KEYPLANE_TEST_PG_CA is not set: the TLS tests need the CA of a server \
                       with TLS on; run them through scripts/test-postgres";
            assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
            report(&format!("NOT RUN: {msg}"));
            None
        }
    }
}

/// Whether every connection of this test's database is encrypted (and there is one).
fn all_encrypted(db: &TestDb) -> bool {
    let mut admin = postgres::Client::connect(&db.server, postgres::NoTls).unwrap();
    let row = admin
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
            &[&db.name],
        )
        .unwrap();
    let (all, ssl): (i64, i64) = (row.get(0), row.get(1));
    all > 0 && all == ssl
}

#[test]
fn verify_full_against_the_ca_and_require_connect_encrypted() {
    let Some(db) = TestDb::new() else { return };
    let Some(ca) = ca_or_say_why() else { return };
    let by_name = db.url.replace("127.0.0.1", "localhost");
    let verified = format!("{by_name}?sslmode=verify-full&sslrootcert={ca}");
    let store = PostgresKeyStore::init(&verified, db.provider(), db.options()).unwrap();
    create_key(&store, 1);
    assert!(all_encrypted(&db), "verify-full connections are TLS");
    drop(store);

    let required = format!("{}?sslmode=require", db.url);
    let store = PostgresKeyStore::open(&required, db.provider(), db.options()).unwrap();
    assert_eq!(store.load().unwrap().keys.len(), 1);
    assert!(all_encrypted(&db), "require connections are TLS");
}

#[test]
fn a_server_the_ca_did_not_sign_or_another_name_is_refused() {
    let Some(db) = TestDb::new() else { return };
    let Some(ca) = ca_or_say_why() else { return };
    let by_name = db.url.replace("127.0.0.1", "localhost");
    let _ = PostgresKeyStore::init(
        &format!("{by_name}?sslmode=require"),
        db.provider(),
        db.options(),
    )
    .unwrap();
    // The system's CAs did not sign the test server's certificate.
    let other_ca = "/etc/ssl/certs/ca-certificates.crt";
    if std::path::Path::new(other_ca).exists() {
        let r = PostgresKeyStore::open(
            &format!("{by_name}?sslmode=verify-full&sslrootcert={other_ca}"),
            db.provider(),
            db.options(),
        );
        let text = format!("{:?}", r.as_ref().err());
        assert!(text.contains("certificate"), "{text}");
    }
    // The right server under a name its certificate does not carry (hostaddr: the address
    // connected to; host: the name checked).
    let wrong_name = db.url.replace("127.0.0.1", "db.invalid");
    let r = PostgresKeyStore::open(
        &format!("{wrong_name}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"),
        db.provider(),
        db.options(),
    );
    let text = format!("{:?}", r.as_ref().err());
    assert!(
        text.contains("certificate") || text.contains("NotValidForName"),
        "{text}"
    );
    // The same, with the name it carries, connects: the refusal above was the name.
    PostgresKeyStore::open(
        &format!("{by_name}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"),
        db.provider(),
        db.options(),
    )
    .unwrap();
    // A CA file that is not there: a clear error before any connection.
    let (e, text) = err_text(PostgresKeyStore::open(
        &format!("{by_name}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
        db.provider(),
        db.options(),
    ));
    assert!(matches!(e, Error::Validation(_)), "{text}");
    assert!(text.contains("sslrootcert"), "{text}");
}
