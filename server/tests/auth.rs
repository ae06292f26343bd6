//! SigV4 authentication: requests signed by independent signers (the `aws-sigv4` crate, and
//! botocore's `SigV4Auth` when Python has it) are accepted as their credential's principal, and
//! every attack below is refused with the service's error. Each attack test prints
//! `assurance: attack <name>: tried N, rejected N`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyplane_server::auth::{AuthError, Authenticator, CredentialStore, Identity, SignedRequest};
use keyplane_testkit::sigv4::AwsSigner as Signing;
use keyplane_testkit::Attack;

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const REGION: &str = "us-east-1";
const HOST: &str = "kms.us-east-1.amazonaws.com";

/// What only these attacks judge: a request refused with `code`, status 400 and a message that
/// says `wording`.
trait AuthRefusal {
    fn auth_refused(&mut self, result: Verified, code: &str, wording: &str, what: &str);

    /// As `auth_refused` with InvalidSignatureException, the answer to most forgeries.
    #[track_caller]
    fn signature_refused(&mut self, result: Verified, wording: &str, what: &str) {
        self.auth_refused(result, "InvalidSignatureException", wording, what);
    }
}

/// What `Authenticator::verify` answers.
type Verified = Result<Identity, AuthError>;

impl AuthRefusal for Attack {
    #[track_caller]
    fn auth_refused(&mut self, result: Verified, code: &str, wording: &str, what: &str) {
        let verdict = match result {
            Ok(identity) => Err(format!("was accepted as {identity:?}")),
            Err(e) if e.code != code || e.status != 400 => Err(format!(
                "answered {} {} ({e}), expected {code} 400",
                e.status, e.code
            )),
            Err(e) if !e.message.contains(wording) => {
                Err(format!("message {:?} lacks {wording:?}", e.message))
            }
            Err(_) => Ok(()),
        };
        self.attempt(what, verdict);
    }
}

/// A request as the transport hands it to the authenticator.
struct Request {
    method: &'static str,
    path: String,
    query: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Request {
    fn signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.headers.insert(name, value.parse().unwrap());
    }
}

fn unique_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A KMS Encrypt request signed by the `aws-sigv4` crate, with a fresh `amz-sdk-invocation-id`
/// as real SDKs send.
fn request(signing: &Signing<'_>, body: &[u8]) -> Request {
    request_without(signing, body, "")
}

/// [`request`] without the header `omit` (neither sent nor signed).
fn request_without(signing: &Signing<'_>, body: &[u8], omit: &str) -> Request {
    let invocation = unique_id();
    let base: Vec<(&str, &str)> = [
        ("host", HOST),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "TrentService.Encrypt"),
        ("amz-sdk-invocation-id", invocation.as_str()),
    ]
    .into_iter()
    .filter(|(name, _)| *name != omit)
    .collect();
    let mut headers = http::HeaderMap::new();
    for (name, value) in signing.signed_headers("POST", &format!("https://{HOST}/"), &base, body) {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    Request {
        method: "POST",
        path: "/".into(),
        query: String::new(),
        headers,
        body: body.to_vec(),
    }
}

struct Fixture {
    auth: Authenticator,
    access_key_id: String,
    secret: zeroize::Zeroizing<String>,
    now: SystemTime,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::on(CredentialStore::in_memory())
    }

    fn on(store: CredentialStore) -> Fixture {
        let new = store.create(ALICE).unwrap();
        Fixture {
            auth: Authenticator::new(store, REGION),
            access_key_id: new.access_key_id.clone(),
            secret: new.secret_access_key,
            now: SystemTime::now(),
        }
    }

    fn signing(&self) -> Signing<'_> {
        Signing {
            access_key_id: &self.access_key_id,
            secret: &self.secret,
            region: REGION,
            service: "kms",
            time: self.now,
            content_sha256: false,
        }
    }

    fn good(&self) -> Request {
        request(
            &self.signing(),
            br#"{"KeyId":"alias/a","Plaintext":"aGk="}"#,
        )
    }

    fn verify(&self, request: &Request) -> Result<Identity, AuthError> {
        self.auth.verify(&request.signed(), self.now)
    }
}

fn alice(f: &Fixture) -> Identity {
    Identity {
        principal: ALICE.into(),
        access_key_id: f.access_key_id.clone(),
    }
}

#[test]
fn requests_signed_by_the_aws_sigv4_crate_are_accepted_as_the_credentials_principal() {
    let f = Fixture::new();
    for content_sha256 in [false, true] {
        for body in [&b""[..], b"{}", br#"{"KeyId":"k","Plaintext":"AAAA"}"#] {
            let signing = Signing {
                content_sha256,
                ..f.signing()
            };
            let req = request(&signing, body);
            assert_eq!(f.verify(&req).unwrap(), alice(&f));
        }
    }
    // Within the skew window on either side, and across midnight UTC.
    for offset in [-299i64, 299] {
        let time = if offset < 0 {
            f.now - Duration::from_secs(offset.unsigned_abs())
        } else {
            f.now + Duration::from_secs(offset as u64)
        };
        let req = request(
            &Signing {
                time,
                ..f.signing()
            },
            b"{}",
        );
        assert_eq!(f.verify(&req).unwrap(), alice(&f), "offset {offset}");
    }
    let midnight = (f.now.duration_since(UNIX_EPOCH).unwrap().as_secs() / 86_400) * 86_400;
    let now = UNIX_EPOCH + Duration::from_secs(midnight + 60);
    let req = request(
        &Signing {
            time: now - Duration::from_secs(120),
            ..f.signing()
        },
        b"{}",
    );
    assert_eq!(f.auth.verify(&req.signed(), now).unwrap(), alice(&f));
    // An unsigned header the server does not act on may be added by a proxy.
    let mut req = f.good();
    req.set("x-forwarded-for", "10.0.0.1");
    assert_eq!(f.verify(&req).unwrap(), alice(&f));
}

#[test]
fn attack_wrong_secret() {
    let f = Fixture::new();
    let mut attack = Attack::new("wrong secret");
    let mut altered = f.secret.to_string();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let other = CredentialStore::in_memory().create(ALICE).unwrap();
    for secret in [altered.as_str(), other.secret_access_key.as_str(), "", "x"] {
        let req = request(
            &Signing {
                secret,
                ..f.signing()
            },
            b"{}",
        );
        attack.signature_refused(
            f.verify(&req),
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.",
            "a signature under another secret",
        );
    }
    // A signature that is not even hex, or too short.
    for forged in ["zz", &"0".repeat(64), &"g".repeat(64)] {
        let mut req = f.good();
        let auth = req.headers["authorization"].to_str().unwrap().to_owned();
        let (head, _) = auth.rsplit_once("Signature=").unwrap();
        req.set("authorization", &format!("{head}Signature={forged}"));
        attack.signature_refused(f.verify(&req), "does not match", "a forged signature");
    }
}

#[test]
fn attack_signature_for_another_region_service_or_date() {
    let f = Fixture::new();
    let mut attack = Attack::new("signature for another region, service or date");
    let req = request(
        &Signing {
            region: "eu-west-1",
            ..f.signing()
        },
        b"{}",
    );
    attack.signature_refused(
        f.verify(&req),
        "Credential should be scoped to a valid region, not 'eu-west-1'.",
        "a signature for eu-west-1",
    );
    for service in ["s3", "sts", "KMS"] {
        let req = request(
            &Signing {
                service,
                ..f.signing()
            },
            b"{}",
        );
        attack.signature_refused(
            f.verify(&req),
            "Credential should be scoped to correct service: 'kms'.",
            "a signature for another service",
        );
    }
    // A valid signature whose scope date is rewritten to another day.
    let mut req = f.good();
    let auth = req.headers["authorization"].to_str().unwrap().to_owned();
    let date = &req.headers["x-amz-date"].to_str().unwrap()[..8].to_owned();
    let other = if date.ends_with('1') { "0" } else { "1" };
    let forged = auth.replacen(&format!("/{date}/"), &format!("/{}{other}/", &date[..7]), 1);
    req.set("authorization", &forged);
    attack.signature_refused(
        f.verify(&req),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP",
        "a scope for another date",
    );
    // A request re-dated after signing (the date is signed).
    let mut req = f.good();
    let later = keyplane_server::auth::sigv4::format_amz_date(
        f.now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 + 1,
    );
    req.set("x-amz-date", &later);
    attack.signature_refused(
        f.verify(&req),
        "does not match",
        "a request re-dated by a second",
    );
}

#[test]
fn attack_tampered_body() {
    let f = Fixture::new();
    let mut attack = Attack::new("tampered body (payload hash)");
    for content_sha256 in [false, true] {
        let signing = Signing {
            content_sha256,
            ..f.signing()
        };
        let mut req = request(&signing, br#"{"KeyId":"alias/a","Plaintext":"aGk="}"#);
        req.body = br#"{"KeyId":"alias/b","Plaintext":"aGk="}"#.to_vec();
        let wording = if content_sha256 {
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        } else {
            "does not match the signature you provided"
        };
        attack.signature_refused(f.verify(&req), wording, "a body changed after signing");
        let mut req = request(&signing, b"{}");
        req.body.push(b' ');
        attack.signature_refused(f.verify(&req), wording, "a byte appended to the body");
    }
    // A payload hash header that claims the tampered body, on a signature over the original.
    let signing = Signing {
        content_sha256: true,
        ..f.signing()
    };
    let mut req = request(&signing, b"{}");
    req.body = b"[]".to_vec();
    let hash = keyplane_server::auth::sigv4::sha256_hex(&req.body);
    req.set("x-amz-content-sha256", &hash);
    attack.signature_refused(
        f.verify(&req),
        "does not match the signature you provided",
        "a payload hash rewritten to match a new body",
    );
}

#[test]
fn attack_unsigned_header_added() {
    let f = Fixture::new();
    let mut attack = Attack::new("unsigned header the server acts on");
    // Sign a request without a header the protocol acts on, then add it unsigned: the signature
    // itself still matches, so only the signed-header rule refuses it.
    for (name, value, shown) in [
        (
            "x-amz-target",
            "TrentService.ScheduleKeyDeletion",
            "X-Amz-Target",
        ),
        ("content-type", "application/x-amz-json-1.1", "Content-Type"),
    ] {
        let mut req = request_without(&f.signing(), b"{}", name);
        req.set(name, value);
        attack.signature_refused(
            f.verify(&req),
            &format!("'{shown}' must be a 'SignedHeader' in the AWS Authorization."),
            "an unsigned header the protocol acts on",
        );
    }
    for (name, shown) in [("host", "Host"), ("x-amz-date", "X-Amz-Date")] {
        let mut req = f.good();
        let auth = req.headers["authorization"].to_str().unwrap().to_owned();
        let list = auth
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_owned();
        let without: Vec<&str> = list.split(';').filter(|h| *h != name).collect();
        req.set(
            "authorization",
            &auth.replacen(&list, &without.join(";"), 1),
        );
        attack.signature_refused(
            f.verify(&req),
            &format!("'{shown}' must be a 'SignedHeader' in the AWS Authorization."),
            "a request whose host or date is not signed",
        );
    }
}

#[test]
fn attack_signed_header_changed() {
    let f = Fixture::new();
    let mut attack = Attack::new("signed header changed");
    for (name, value) in [
        ("x-amz-target", "TrentService.ScheduleKeyDeletion"),
        ("x-amz-target", "TrentService.encrypt"),
        ("host", "kms.eu-west-1.amazonaws.com"),
        ("content-type", "application/json"),
        (
            "amz-sdk-invocation-id",
            "00000000-0000-0000-0000-000000000000",
        ),
    ] {
        let mut req = f.good();
        req.set(name, value);
        attack.signature_refused(
            f.verify(&req),
            "does not match the signature you provided",
            "a signed header changed",
        );
    }
    // A second value appended to a signed header changes its canonical form.
    let mut req = f.good();
    req.headers
        .append("x-amz-target", "TrentService.Decrypt".parse().unwrap());
    attack.signature_refused(
        f.verify(&req),
        "does not match",
        "a signed header given twice",
    );
    // Path and query are signed too.
    let mut req = f.good();
    req.query = "Action=ScheduleKeyDeletion".into();
    attack.signature_refused(f.verify(&req), "does not match", "a query added");
    let mut req = f.good();
    req.path = "/admin".into();
    attack.signature_refused(f.verify(&req), "does not match", "another path");
}

#[test]
fn attack_replay_of_a_captured_request() {
    let f = Fixture::new();
    let mut attack = Attack::new("replay of a captured request");
    let req = f.good();
    assert_eq!(f.verify(&req).unwrap(), alice(&f));
    for later in [0u64, 1, 60, 299] {
        let now = f.now + Duration::from_secs(later);
        attack.signature_refused(
            f.auth.verify(&req.signed(), now),
            "Signature already used",
            "the same signed request again",
        );
    }
    // Past the window the date check refuses it anyway.
    attack.signature_refused(
        f.auth
            .verify(&req.signed(), f.now + Duration::from_secs(301)),
        "Signature expired",
        "the captured request after the window",
    );
    // Identical content signed twice by an SDK still differs (fresh invocation id): both accepted.
    let a = f.good();
    let b = f.good();
    assert_eq!(f.verify(&a).unwrap(), alice(&f));
    assert_eq!(f.verify(&b).unwrap(), alice(&f));
    // A refused forgery is not remembered: it does not block the genuine request.
    let good = f.good();
    let forged = Request {
        headers: good.headers.clone(),
        body: b"tampered".to_vec(),
        path: good.path.clone(),
        query: good.query.clone(),
        method: good.method,
    };
    assert!(f.verify(&forged).is_err());
    assert_eq!(f.verify(&good).unwrap(), alice(&f));
    // Without a signed nonce a repeat is indistinguishable from an identical call within the same
    // second (botocore signs no amz-sdk-invocation-id): accepted, as documented in auth::replay.
    let same = request_without(&f.signing(), b"{}", "amz-sdk-invocation-id");
    assert_eq!(f.verify(&same).unwrap(), alice(&f));
    assert_eq!(f.verify(&same).unwrap(), alice(&f));
}

#[test]
fn attack_expired_timestamp() {
    let f = Fixture::new();
    let mut attack = Attack::new("expired timestamp");
    for ago in [301u64, 600, 86_400, 86_400 * 365] {
        let time = f.now - Duration::from_secs(ago);
        let req = request(
            &Signing {
                time,
                ..f.signing()
            },
            b"{}",
        );
        attack.signature_refused(
            f.verify(&req),
            "Signature expired: ",
            "a request dated in the past",
        );
    }
    // The service's wording, exactly.
    let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160 + 600); // 2015-08-30T12:46:00Z
    let req = request(
        &Signing {
            time: UNIX_EPOCH + Duration::from_secs(1_440_938_160),
            ..f.signing()
        },
        b"{}",
    );
    let err = f.auth.verify(&req.signed(), now).unwrap_err();
    assert_eq!(
        err.message,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z \
         (20150830T124600Z - 5 min.)"
    );
}

#[test]
fn attack_far_future_timestamp() {
    let f = Fixture::new();
    let mut attack = Attack::new("far-future timestamp");
    for ahead in [301u64, 3600, 86_400 * 30] {
        let time = f.now + Duration::from_secs(ahead);
        let req = request(
            &Signing {
                time,
                ..f.signing()
            },
            b"{}",
        );
        attack.signature_refused(
            f.verify(&req),
            "Signature not yet current: ",
            "a request dated in the future",
        );
    }
    let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    let req = request(
        &Signing {
            time: now + Duration::from_secs(600),
            ..f.signing()
        },
        b"{}",
    );
    assert_eq!(
        f.auth.verify(&req.signed(), now).unwrap_err().message,
        "Signature not yet current: 20150830T124600Z is still later than 20150830T124100Z \
         (20150830T123600Z + 5 min.)"
    );
}

#[test]
fn attack_disabled_and_deleted_keys() {
    let f = Fixture::new();
    let mut attack = Attack::new("disabled, deleted or unknown access key");
    let store = f.auth.credentials();
    store.disable(&f.access_key_id).unwrap();
    attack.auth_refused(
        f.verify(&f.good()),
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        "a disabled key",
    );
    store.enable(&f.access_key_id).unwrap();
    assert_eq!(f.verify(&f.good()).unwrap(), alice(&f));
    store.delete(&f.access_key_id).unwrap();
    attack.auth_refused(
        f.verify(&f.good()),
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        "a deleted key",
    );
    for id in ["AKIAAAAAAAAAAAAAAAAA", "AKIDEXAMPLE", "x"] {
        let req = request(
            &Signing {
                access_key_id: id,
                ..f.signing()
            },
            b"{}",
        );
        attack.auth_refused(
            f.verify(&req),
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            "an unknown key",
        );
    }
    // A session token keyplane never issued.
    let f = Fixture::new();
    let mut req = f.good();
    req.set("x-amz-security-token", "FwoGZXIvYXdzEXAMPLE");
    attack.auth_refused(
        f.verify(&req),
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        "a session token",
    );
}

#[test]
fn attack_acting_as_another_principal() {
    let store = CredentialStore::in_memory();
    let bob = store.create(BOB).unwrap();
    let f = Fixture::on(store);
    let mut attack = Attack::new("one principal's credential used to act as another");
    // Alice's secret with Bob's access key id.
    let req = request(
        &Signing {
            access_key_id: &bob.access_key_id,
            ..f.signing()
        },
        b"{}",
    );
    attack.signature_refused(
        f.verify(&req),
        "does not match",
        "Alice's secret signing for Bob's key",
    );
    // Headers that claim another identity change nothing: the identity is the credential's.
    let mut req = f.good();
    req.set("x-amz-principal", BOB);
    req.set("x-amz-user-arn", BOB);
    let identity = f.verify(&req).unwrap();
    attack.judged(
        identity.principal == ALICE,
        "headers that claim Bob's identity",
    );
    // Bob's own key signs as Bob.
    let req = request(
        &Signing {
            access_key_id: &bob.access_key_id,
            secret: &bob.secret_access_key,
            ..f.signing()
        },
        b"{}",
    );
    assert_eq!(f.verify(&req).unwrap().principal, BOB);
}

#[test]
fn malformed_authorization_is_refused_with_the_services_codes() {
    let f = Fixture::new();
    let mut attack = Attack::new("malformed Authorization header");
    let mut req = f.good();
    req.headers.remove("authorization");
    attack.auth_refused(
        f.verify(&req),
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
        "no Authorization",
    );
    let good = f.good();
    let auth = good.headers["authorization"].to_str().unwrap().to_owned();
    let without = |part: &str| -> String {
        auth.split(", ")
            .filter(|p| !p.contains(part))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (value, wording) in [
        (
            "Bearer abc".to_owned(),
            "Unsupported AWS 'algorithm': 'Bearer'",
        ),
        (
            without("Signature="),
            "Authorization header requires 'Signature' parameter.",
        ),
        (
            without("SignedHeaders="),
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            "AWS4-HMAC-SHA256 ".to_owned(),
            "Authorization header requires 'Credential' parameter.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIA/20150830/us-east-1/kms, SignedHeaders=host, \
             Signature=00"
                .to_owned(),
            "Credential must have exactly 5 slash-delimited elements",
        ),
        (
            "AWS4-HMAC-SHA256 Credential AKIA".to_owned(),
            "not a valid key=value pair (missing equal-sign) in Authorization header",
        ),
    ] {
        let mut req = f.good();
        req.set("authorization", &value);
        attack.auth_refused(
            f.verify(&req),
            "IncompleteSignatureException",
            wording,
            "a malformed Authorization",
        );
    }
    let mut req = f.good();
    req.headers.remove("x-amz-date");
    attack.auth_refused(
        f.verify(&req),
        "IncompleteSignatureException",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        "no date",
    );
    let mut req = f.good();
    req.set("x-amz-date", "2015-08-30T12:36:00Z");
    attack.auth_refused(
        f.verify(&req),
        "IncompleteSignatureException",
        "Date must be in ISO-8601 'basic format'.",
        "a date in another format",
    );
    let mut req = f.good();
    req.headers.append(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=x".parse().unwrap(),
    );
    attack.auth_refused(
        f.verify(&req),
        "IncompleteSignatureException",
        "more than one Authorization header",
        "two Authorization headers",
    );
}

#[test]
fn credentials_in_a_sqlite_store_follow_another_processs_changes_within_a_second() {
    use keyplane_sqlite::root_key::KeyFileProvider;
    use keyplane_sqlite::{SqliteKeyStore, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let provider = || -> Arc<dyn keyplane_sqlite::root_key::RootKeyProvider> {
        Arc::new(KeyFileProvider::new(
            dir.path().join("root.key"),
            keyplane::LockPolicy::Require,
        ))
    };
    let store =
        Arc::new(SqliteKeyStore::init(dir.path(), provider(), StoreOptions::default()).unwrap());
    let f = Fixture::on(CredentialStore::sqlite(store));
    assert_eq!(f.verify(&f.good()).unwrap(), alice(&f));
    // "Another process": its own handle on the same files.
    let other = CredentialStore::sqlite(Arc::new(
        SqliteKeyStore::open(dir.path(), provider(), StoreOptions::default()).unwrap(),
    ));
    let listed = other.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].access_key_id, f.access_key_id);
    assert_eq!(listed[0].status, "Active");
    other.disable(&f.access_key_id).unwrap();
    let waited = wait_for(|| {
        f.auth
            .verify(&f.good().signed(), SystemTime::now())
            .is_err()
    });
    assert!(waited < Duration::from_secs(1), "took {waited:?}");
    other.enable(&f.access_key_id).unwrap();
    let waited = wait_for(|| f.auth.verify(&f.good().signed(), SystemTime::now()).is_ok());
    assert!(waited < Duration::from_secs(1), "took {waited:?}");
    // A credential created there signs here.
    let bob = other.create(BOB).unwrap();
    let waited = wait_for(|| {
        let req = request(
            &Signing {
                access_key_id: &bob.access_key_id,
                secret: &bob.secret_access_key,
                time: SystemTime::now(),
                ..f.signing()
            },
            b"{}",
        );
        f.auth
            .verify(&req.signed(), SystemTime::now())
            .map(|i| i.principal)
            == Ok(BOB.into())
    });
    assert!(waited < Duration::from_secs(1), "took {waited:?}");
    other.delete(&f.access_key_id).unwrap();
    let waited = wait_for(|| {
        f.auth
            .verify(&f.good().signed(), SystemTime::now())
            .is_err()
    });
    assert!(waited < Duration::from_secs(1), "took {waited:?}");
    assert_eq!(
        f.auth
            .verify(&f.good().signed(), SystemTime::now())
            .unwrap_err()
            .code,
        "UnrecognizedClientException"
    );
}

/// How long until `condition` holds (polled every 20 ms, for at most 3 s).
fn wait_for(mut condition: impl FnMut() -> bool) -> Duration {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < Duration::from_secs(3), "never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------------------------
// perf (issue 13): the signature check runs on the async worker when the credential is in memory
// (`Authenticator::verify_cached`), and only a check that must read the store goes to a blocking
// thread. These tests hold that the in-memory path decides exactly as `verify` does.
// ---------------------------------------------------------------------------------------------

#[test]
fn verify_cached_answers_from_memory_and_defers_only_a_store_read() {
    use keyplane_sqlite::root_key::KeyFileProvider;
    use keyplane_sqlite::{SqliteKeyStore, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let provider: Arc<dyn keyplane_sqlite::root_key::RootKeyProvider> = Arc::new(
        KeyFileProvider::new(dir.path().join("root.key"), keyplane::LockPolicy::Require),
    );
    let store =
        Arc::new(SqliteKeyStore::init(dir.path(), provider, StoreOptions::default()).unwrap());
    let f = Fixture::on(CredentialStore::sqlite(store));
    // Cold: nothing read yet, so only the store can tell; the replay guard is left untouched,
    // and the same request then passes the full check.
    let first = f.good();
    assert!(f.auth.verify_cached(&first.signed(), f.now).is_none());
    assert_eq!(f.auth.replay_guard().len(), 0);
    assert_eq!(f.verify(&first).unwrap(), alice(&f));
    // Warm: answered from memory, as `verify` would.
    let second = f.good();
    assert_eq!(
        f.auth.verify_cached(&second.signed(), f.now),
        Some(Ok(alice(&f)))
    );
    let mut attack = Attack::new("verify_cached_bypass");
    let replayed = f.auth.verify_cached(&second.signed(), f.now).unwrap();
    attack.signature_refused(replayed, "already used", "a replay");
    let wrong = request(
        &Signing {
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ..f.signing()
        },
        b"{}",
    );
    attack.signature_refused(
        f.auth.verify_cached(&wrong.signed(), f.now).unwrap(),
        "signature",
        "a wrong secret",
    );
    let unknown = request(
        &Signing {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            ..f.signing()
        },
        b"{}",
    );
    let refused = f.auth.verify_cached(&unknown.signed(), f.now);
    let code = refused.unwrap().unwrap_err().code;
    attack.judged(
        code == "UnrecognizedClientException",
        "an unknown access key id, from a store that knows",
    );
    // An in-memory store always knows.
    let m = Fixture::new();
    assert_eq!(
        m.auth.verify_cached(&m.good().signed(), m.now),
        Some(Ok(alice(&m)))
    );
}
