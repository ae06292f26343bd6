//! Property tests of every serialised format: the ciphertext blob, the encryption-context
//! encoding, key policy documents and audit log lines. Each round-trips, and every single-byte
//! change of a valid blob is rejected.
//!
//! Case counts: `PROPTEST_CASES` overrides every property's default. Counts of what was checked
//! are printed as `assurance: ...` lines (`cargo test -p keyplane --test properties --
//! --nocapture`).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use keyplane::audit::{
    chain_hash, generate_signing_key, verify, AuditConfig, AuditEvent, AuditLog, Durability,
    UserIdentity, Verdict, GENESIS_CHAIN,
};
use keyplane::ciphertext::{self, HEADER_LEN, MAX_BLOB_LEN, OVERHEAD, SALT_LEN};
use keyplane::context::{self, MAX_ENCODED_CONTEXT};
use keyplane::policy::{Decision, KeyPolicy, RequestContext};
use keyplane::{
    CreateKeyRequest, DecryptRequest, EncryptRequest, EncryptionContext, Engine, ManualClock,
    Timestamp,
};
use keyplane_testkit::new_key;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// `cases` unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

struct Fixture {
    engine: Engine,
    key: String,
    key_uuid: uuid::Uuid,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let engine = Engine::builder().worker_threads(1).build().unwrap();
        let key = new_key(&engine);
        let key_uuid = uuid::Uuid::parse_str(&key).unwrap();
        engine.create_alias("alias/properties", &key).unwrap();
        Fixture {
            engine,
            key,
            key_uuid,
        }
    })
}

fn context_strategy() -> impl Strategy<Value = EncryptionContext> {
    prop::collection::btree_map("[a-zA-Z0-9:_\\-é]{0,12}", ".{0,16}", 0..5)
}

// ---- the ciphertext blob ---------------------------------------------------------------------

/// A blob laid out by hand from `docs/ciphertext-format.md`.
fn framed(
    key_id: &[u8; 16],
    version: u32,
    salt: &[u8; 32],
    nonce: &[u8; 12],
    body: &[u8],
    tag: &[u8; 16],
) -> Vec<u8> {
    let mut blob = vec![1u8, 1];
    blob.extend_from_slice(key_id);
    blob.extend_from_slice(&version.to_be_bytes());
    blob.extend_from_slice(salt);
    blob.extend_from_slice(nonce);
    blob.extend_from_slice(body);
    blob.extend_from_slice(tag);
    blob
}

proptest! {
    #![proptest_config(config(256))]

    /// Every field of a blob laid out as documented reads back from its offset.
    #[test]
    fn blob_layout_round_trips(
        key_id in any::<[u8; 16]>(),
        version in any::<u32>(),
        salt in any::<[u8; 32]>(),
        nonce in any::<[u8; 12]>(),
        body in prop::collection::vec(any::<u8>(), 0..300),
        tag in any::<[u8; 16]>(),
    ) {
        let blob = framed(&key_id, version, &salt, &nonce, &body, &tag);
        let parsed = ciphertext::parse(&blob).unwrap();
        prop_assert_eq!(parsed.key_id.as_bytes(), &key_id);
        prop_assert_eq!(parsed.key_version, version);
        prop_assert_eq!(parsed.salt, &salt);
        prop_assert_eq!(parsed.nonce, &nonce);
        prop_assert_eq!(parsed.body, &body[..]);
        prop_assert_eq!(parsed.tag, &tag[..]);
        prop_assert_eq!(parsed.header, &blob[..HEADER_LEN]);
        prop_assert_eq!(ciphertext::blob_len(parsed.plaintext_len()), blob.len());
        prop_assert_eq!(*ciphertext::key_id_of(&blob).unwrap().as_bytes(), key_id);
    }

    /// Arbitrary bytes parse exactly when their framing is one the format allows.
    #[test]
    fn parse_accepts_exactly_the_documented_framing(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        force_header in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if force_header && bytes.len() >= 2 {
            bytes[0] = 1;
            bytes[1] = 1;
        }
        let framed_ok = (OVERHEAD..=MAX_BLOB_LEN).contains(&bytes.len())
            && bytes[0] == 1
            && bytes[1] == 1;
        match ciphertext::parse(&bytes) {
            Ok(_) => prop_assert!(framed_ok),
            Err(e) => {
                prop_assert!(!framed_ok);
                prop_assert_eq!(e.code(), "InvalidCiphertextException");
            }
        }
    }

    /// What the engine encrypts it decrypts, under the same context, named any way; the blob
    /// names the key and its current version and is exactly 82 bytes longer than the plaintext.
    #[test]
    fn engine_blobs_round_trip(
        plaintext in prop::collection::vec(any::<u8>(), 1..=4096),
        context in context_strategy(),
        name in 0usize..4,
    ) {
        let f = fixture();
        let key_arn = f.engine.key_arn(&f.key_uuid);
        let names = [f.key.clone(), key_arn.clone(), "alias/properties".to_string(),
            "arn:aws:kms:us-east-1:111122223333:alias/properties".to_string()];
        let sealed = f.engine
            .encrypt(&EncryptRequest::new(&names[name], &plaintext).with_context(&context))
            .unwrap();
        prop_assert_eq!(&sealed.key_id, &key_arn);
        prop_assert_eq!(sealed.ciphertext_blob.len(), plaintext.len() + OVERHEAD);
        let parsed = ciphertext::parse(&sealed.ciphertext_blob).unwrap();
        prop_assert_eq!(parsed.key_id, f.key_uuid);
        prop_assert_eq!(parsed.key_version, 1);
        let opened = f.engine
            .decrypt(&DecryptRequest::new(&sealed.ciphertext_blob).with_context(&context)
                .with_key_id(&names[3 - name]))
            .unwrap();
        prop_assert_eq!(opened.plaintext.expose(), &plaintext[..]);
        prop_assert_eq!(&opened.key_id, &key_arn);
    }

    /// A random single-byte change of a random blob is rejected (the exhaustive test below does
    /// every position and value of one blob).
    #[test]
    fn random_single_byte_changes_are_rejected(
        plaintext in prop::collection::vec(any::<u8>(), 1..512),
        context in context_strategy(),
        position in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let f = fixture();
        let blob = f.engine
            .encrypt(&EncryptRequest::new(&f.key, &plaintext).with_context(&context))
            .unwrap()
            .ciphertext_blob;
        let mut changed = blob.clone();
        changed[position.index(blob.len())] ^= delta;
        let result = f.engine.decrypt(&DecryptRequest::new(&changed).with_context(&context));
        prop_assert_eq!(result.map(|_| ()).unwrap_err().code(), "InvalidCiphertextException");
    }
}

/// Every single-byte change of a valid blob, at every position and to every other value, and
/// every truncation and extension, is rejected with InvalidCiphertext.
#[test]
fn every_single_byte_mutation_of_a_valid_blob_is_rejected() {
    let clock = std::sync::Arc::new(ManualClock::new(Timestamp(1_700_000_000_000)));
    let engine = Engine::builder()
        .worker_threads(1)
        .clock(clock)
        .build()
        .unwrap();
    let key = new_key(&engine);
    // Another version and another key exist, so a changed version or key id can name them.
    engine.rotate_key_on_demand(&key).unwrap();
    engine.create_key(CreateKeyRequest::default()).unwrap();
    let context: EncryptionContext = [("tenant".to_string(), "42".to_string())].into();
    let plaintext = b"sixteen byte msg";
    let blob = engine
        .encrypt(&EncryptRequest::new(&key, plaintext).with_context(&context))
        .unwrap()
        .ciphertext_blob;
    let open = |bytes: &[u8]| engine.decrypt(&DecryptRequest::new(bytes).with_context(&context));
    assert_eq!(open(&blob).unwrap().plaintext.expose(), plaintext);

    let mut checked = 0u64;
    let mut changed = blob.clone();
    for position in 0..blob.len() {
        for delta in 1..=255u8 {
            changed[position] = blob[position] ^ delta;
            let error = open(&changed)
                .map(|_| ())
                .expect_err("a changed blob decrypted");
            assert_eq!(
                error.code(),
                "InvalidCiphertextException",
                "byte {position} ^ {delta:#04x}: {error}"
            );
            checked += 1;
        }
        changed[position] = blob[position];
    }
    for len in 0..blob.len() {
        // An empty blob breaks the model's length constraint: ValidationException.
        let expected = if len == 0 {
            "ValidationException"
        } else {
            "InvalidCiphertextException"
        };
        assert_eq!(open(&blob[..len]).map(|_| ()).unwrap_err().code(), expected);
        checked += 1;
    }
    for extra in 1..=32usize {
        let mut longer = blob.clone();
        longer.extend(std::iter::repeat_n(0u8, extra));
        assert_eq!(
            open(&longer).map(|_| ()).unwrap_err().code(),
            "InvalidCiphertextException"
        );
        checked += 1;
    }
    assert_eq!(checked, (blob.len() * 255 + blob.len() + 32) as u64);
    println!(
        "assurance: blob mutations rejected: {checked} of {checked} ({}-byte blob: every byte x 255 \
         values, every truncation, 32 extensions)",
        blob.len()
    );
}

// ---- the encryption context encoding ---------------------------------------------------------

/// The documented encoding, written independently: count, then length-prefixed pairs in byte
/// order of keys.
fn reference_encoding(context: &EncryptionContext) -> Vec<u8> {
    let mut out = (context.len() as u16).to_be_bytes().to_vec();
    let mut pairs: Vec<(&String, &String)> = context.iter().collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u16).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Reads an encoding back; `None` unless it is canonical.
fn decode(bytes: &[u8]) -> Option<EncryptionContext> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Option<Vec<u8>> {
        if rest.len() < n {
            return None;
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head.to_vec())
    };
    let count = u16::from_be_bytes(take(2)?.try_into().ok()?);
    let mut map = BTreeMap::new();
    let mut last: Option<Vec<u8>> = None;
    for _ in 0..count {
        let klen = u16::from_be_bytes(take(2)?.try_into().ok()?);
        let key = take(klen.into())?;
        let vlen = u16::from_be_bytes(take(2)?.try_into().ok()?);
        let value = take(vlen.into())?;
        if last.as_ref().is_some_and(|l| *l >= key) {
            return None;
        }
        last = Some(key.clone());
        map.insert(String::from_utf8(key).ok()?, String::from_utf8(value).ok()?);
    }
    rest.is_empty().then_some(map)
}

proptest! {
    #![proptest_config(config(512))]

    /// The encoding is the documented one and reads back to the same context.
    #[test]
    fn context_encoding_round_trips(context in context_strategy()) {
        let encoded = context::encode(Some(&context)).unwrap();
        prop_assert_eq!(&encoded, &reference_encoding(&context));
        prop_assert_eq!(decode(&encoded), Some(context));
    }

    /// Two contexts encode alike exactly when they are equal, including contexts built to
    /// collide without length prefixes (`{"ab": "c"}` and `{"a": "bc"}`).
    #[test]
    fn context_encoding_is_injective(
        a in context_strategy(),
        b in context_strategy(),
        split in "[a-z]{2,6}",
        at in 1usize..6,
    ) {
        let (ea, eb) = (context::encode(Some(&a)).unwrap(), context::encode(Some(&b)).unwrap());
        prop_assert_eq!(ea == eb, a == b);
        let at = at.min(split.len() - 1);
        let left: EncryptionContext = [(split[..at].to_string(), split[at..].to_string())].into();
        let right: EncryptionContext = [(split.clone(), String::new())].into();
        prop_assert_ne!(context::encode(Some(&left)).unwrap(), context::encode(Some(&right)).unwrap());
    }

    /// A context is refused exactly when its encoding passes 8192 bytes.
    #[test]
    fn context_size_limit_is_exact(key in "[a-z]{1,8}", value_len in 8000usize..8400) {
        let context: EncryptionContext = [(key, "v".repeat(value_len))].into();
        let size = reference_encoding(&context).len();
        match context::encode(Some(&context)) {
            Ok(encoded) => {
                prop_assert!(size <= MAX_ENCODED_CONTEXT);
                prop_assert_eq!(encoded.len(), size);
            }
            Err(e) => {
                prop_assert!(size > MAX_ENCODED_CONTEXT);
                prop_assert_eq!(e.code(), "ValidationException");
            }
        }
    }
}

#[test]
fn absent_and_empty_contexts_encode_alike() {
    assert_eq!(context::encode(None).unwrap(), [0, 0]);
    assert_eq!(
        context::encode(Some(&EncryptionContext::new())).unwrap(),
        [0, 0]
    );
}

// ---- key policy documents --------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Who {
    Anyone,
    Account(&'static str),
    Root(&'static str),
    User(&'static str, &'static str),
}

#[derive(Clone, Debug)]
struct Statement {
    allow: bool,
    principals: Vec<Who>,
    /// Action patterns, `kms:` ones, `*`, and prefixes with `*`.
    actions: Vec<&'static str>,
    /// `(negated, values)`: StringEquals / StringNotEquals on `kms:EncryptionContext:tenant`.
    condition: Option<(bool, Vec<&'static str>)>,
}

const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];
const ACTION_PATTERNS: [&str; 7] = [
    "*",
    "kms:*",
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:Generate*",
    "kms:Re*",
    "kms:DescribeKey",
];
const REQUEST_ACTIONS: [&str; 6] = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "kms:DescribeKey",
    "kms:PutKeyPolicy",
];

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        Just(Who::Anyone),
        prop::sample::select(ACCOUNTS.to_vec()).prop_map(Who::Account),
        prop::sample::select(ACCOUNTS.to_vec()).prop_map(Who::Root),
        (
            prop::sample::select(ACCOUNTS.to_vec()),
            prop::sample::select(vec!["alice", "bob"])
        )
            .prop_map(|(a, u)| Who::User(a, u)),
    ]
}

fn statement() -> impl Strategy<Value = Statement> {
    (
        any::<bool>(),
        prop::collection::vec(who(), 1..3),
        prop::collection::vec(prop::sample::select(ACTION_PATTERNS.to_vec()), 1..3),
        prop::option::of((
            any::<bool>(),
            prop::collection::vec(prop::sample::select(vec!["42", "43", "x"]), 1..3),
        )),
    )
        .prop_map(|(allow, principals, actions, condition)| Statement {
            allow,
            principals,
            actions,
            condition,
        })
}

fn principal_json(principals: &[Who]) -> serde_json::Value {
    if principals.iter().any(|w| matches!(w, Who::Anyone)) {
        return serde_json::json!("*");
    }
    let aws: Vec<String> = principals
        .iter()
        .map(|w| match w {
            Who::Anyone => unreachable!(),
            Who::Account(a) => a.to_string(),
            Who::Root(a) => format!("arn:aws:iam::{a}:root"),
            Who::User(a, u) => format!("arn:aws:iam::{a}:user/{u}"),
        })
        .collect();
    serde_json::json!({ "AWS": aws })
}

fn document(statements: &[Statement]) -> serde_json::Value {
    let statements: Vec<serde_json::Value> = statements
        .iter()
        .map(|s| {
            let mut value = serde_json::json!({
                "Effect": if s.allow { "Allow" } else { "Deny" },
                "Principal": principal_json(&s.principals),
                "Action": s.actions,
                "Resource": "*",
            });
            if let Some((negated, values)) = &s.condition {
                let operator = if *negated {
                    "StringNotEquals"
                } else {
                    "StringEquals"
                };
                value["Condition"] =
                    serde_json::json!({ operator: { "kms:EncryptionContext:tenant": values } });
            }
            value
        })
        .collect();
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements })
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => text
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase()),
        None => pattern.eq_ignore_ascii_case(text),
    }
}

/// The policy language's rules for the statements generated here.
fn reference_decision(
    statements: &[Statement],
    principal: (&str, &str),
    action: &str,
    tenant: Option<&str>,
) -> Decision {
    let (account, name) = principal;
    let applies = |s: &Statement| {
        let who = s.principals.iter().any(|w| match w {
            Who::Anyone => true,
            Who::Account(a) | Who::Root(a) => *a == account,
            Who::User(a, u) => *a == account && *u == name,
        });
        let what = s.actions.iter().any(|p| glob(p, action));
        let when = match &s.condition {
            None => true,
            Some((false, values)) => tenant.is_some_and(|t| values.contains(&t)),
            Some((true, values)) => tenant.is_none_or(|t| !values.contains(&t)),
        };
        who && what && when
    };
    if statements.iter().any(|s| !s.allow && applies(s)) {
        Decision::ExplicitDeny
    } else if statements.iter().any(|s| s.allow && applies(s)) {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A generated policy parses, keeps its text, means what the language says, and means the
    /// same written compactly or pretty-printed; through the engine, PutKeyPolicy then
    /// GetKeyPolicy returns the very text.
    #[test]
    fn policy_documents_round_trip(statements in prop::collection::vec(statement(), 1..4)) {
        let value = document(&statements);
        let compact = serde_json::to_string(&value).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let a = KeyPolicy::parse(&compact).unwrap();
        let b = KeyPolicy::parse(&pretty).unwrap();
        prop_assert_eq!(a.document(), compact.as_str());
        prop_assert_eq!(b.document(), pretty.as_str());
        let resource = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        for account in ACCOUNTS {
            for name in ["root", "alice", "bob"] {
                let arn = if name == "root" {
                    format!("arn:aws:iam::{account}:root")
                } else {
                    format!("arn:aws:iam::{account}:user/{name}")
                };
                for action in REQUEST_ACTIONS {
                    for tenant in [None, Some("42"), Some("x"), Some("other")] {
                        let mut conditions: HashMap<String, Vec<String>> = HashMap::new();
                        if let Some(t) = tenant {
                            conditions.insert("kms:EncryptionContext:tenant".into(), vec![t.into()]);
                        }
                        let request = RequestContext {
                            action,
                            principal: &arn,
                            principal_account: account,
                            resource,
                            conditions: &conditions,
                        };
                        let expected = reference_decision(&statements, (account, name), action, tenant);
                        prop_assert_eq!(a.evaluate(&request), expected, "{} {} {:?}", arn, action, tenant);
                        prop_assert_eq!(b.evaluate(&request), expected);
                    }
                }
            }
        }
        let f = fixture();
        // Through the engine, on a fresh key (the new policy may lock the root out of it):
        // GetKeyPolicy returns the text exactly, when the policy lets the root read it.
        let key = f.engine.create_key(CreateKeyRequest::default()).unwrap().key_id;
        f.engine.put_key_policy(&key, &pretty, None, true).unwrap();
        let read = f.engine.get_key_policy(&key, None);
        match reference_decision(&statements, ("111122223333", "root"), "kms:GetKeyPolicy", None) {
            Decision::Allow => prop_assert_eq!(read.unwrap(), pretty),
            _ => prop_assert_eq!(read.unwrap_err().code(), "AccessDeniedException"),
        }
    }
}

// ---- audit log lines -------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ]{0,20}",
        ".{0,20}",
        Just("quote \" backslash \\ newline \n tab \t nul \u{0}".to_string()),
        Just("ü€𝄞".to_string()),
    ]
}

#[derive(Clone, Debug)]
struct EventSpec {
    name: &'static str,
    principal: String,
    parameters: BTreeMap<String, String>,
    error: Option<(String, String)>,
    batch: Option<(u64, BTreeMap<String, u64>)>,
    time: i64,
}

fn event_spec() -> impl Strategy<Value = EventSpec> {
    (
        prop::sample::select(vec![
            "Encrypt",
            "Decrypt",
            "CreateKey",
            "ListKeys",
            "VerifyMac",
        ]),
        text(),
        prop::collection::btree_map("[a-zA-Z]{1,8}", text(), 0..4),
        prop::option::of((text(), text())),
        prop::option::of((
            any::<u64>(),
            prop::collection::btree_map("[A-Za-z]{1,20}", any::<u64>(), 0..3),
        )),
        0i64..4_102_444_800_000,
    )
        .prop_map(
            |(name, principal, parameters, error, batch, time)| EventSpec {
                name,
                principal,
                parameters,
                error,
                batch,
                time,
            },
        )
}

fn event(spec: &EventSpec) -> AuditEvent {
    let mut event = AuditEvent::new(
        spec.name,
        "us-east-1",
        UserIdentity {
            identity_type: "IAMUser".into(),
            principal_id: spec.principal.clone(),
            arn: format!("arn:aws:iam::111122223333:user/{}", spec.principal),
            account_id: "111122223333".into(),
            access_key_id: None,
        },
    )
    .at(spec.time)
    .with_request_parameters(serde_json::to_value(&spec.parameters).unwrap())
    .with_key(
        "111122223333",
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    );
    if let Some((code, message)) = &spec.error {
        event = event.with_error(code.clone(), message.clone());
    }
    if let Some((items, errors)) = &spec.batch {
        event = event.with_batch(*items, errors.clone());
    }
    event
}

proptest! {
    #![proptest_config(config(32))]

    /// Events written through the log read back from its lines member for member, numbered
    /// from 1, each line's chain is SHA-256(previous chain ‖ the line without its chain), and the
    /// log verifies intact.
    #[test]
    fn audit_lines_round_trip(specs in prop::collection::vec(event_spec(), 1..12)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key(keyplane::LockPolicy::default()).unwrap();
        let mut config = AuditConfig::new(&path);
        config.durability = Durability::Queued;
        config.digest_every_records = 4;
        config.digest_every = std::time::Duration::ZERO;
        let log = AuditLog::open(config, &key).unwrap();
        let events: Vec<AuditEvent> = specs.iter().map(event).collect();
        for e in &events {
            log.append(e.clone()).unwrap();
        }
        let public = log.public_key_der();
        log.close().unwrap();

        let report = verify(&path, &public).unwrap();
        prop_assert_eq!(report.verdict(), Verdict::Intact, "{}", report);
        prop_assert_eq!(report.records, events.len() as u64);

        let text = std::fs::read_to_string(&path).unwrap();
        let records: Vec<&str> = text.lines().filter(|l| l.starts_with("{\"seq\":")).collect();
        prop_assert_eq!(records.len(), events.len());
        let mut chain = GENESIS_CHAIN;
        for (i, (line, event)) in records.iter().zip(&events).enumerate() {
            let mut read: serde_json::Value = serde_json::from_str(line).unwrap();
            let stated = read["chain"].as_str().unwrap().to_string();
            prop_assert_eq!(read["seq"].as_u64(), Some(i as u64 + 1));
            let members = read.as_object_mut().unwrap();
            members.remove("seq");
            members.remove("chain");
            let written: serde_json::Value = serde_json::from_str(&event.to_json().unwrap()).unwrap();
            prop_assert_eq!(&read, &written);
            let cut = line.rfind(",\"chain\":\"").unwrap();
            let canonical = format!("{}}}", &line[..cut]);
            chain = chain_hash(&chain, canonical.as_bytes());
            prop_assert_eq!(hex::encode(chain), stated);
        }
    }
}

#[test]
fn salt_length_is_the_documented_one() {
    assert_eq!(SALT_LEN, 32);
    assert_eq!(HEADER_LEN, 66);
    assert_eq!(OVERHEAD, 82);
}
