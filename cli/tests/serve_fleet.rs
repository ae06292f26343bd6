//! Two `keyplane serve` nodes on one PostgreSQL database behind two ports (issue 19; run by
//! `scripts/test-postgres`, which starts the server and sets KEYPLANE_TEST_POSTGRES): a client
//! alternating between them sees one service.
//!
//! What "consistent" means here (docs/store.md, "Consistency across nodes"):
//! - control plane: linearisable. Every control-plane call follows the store before it answers,
//!   and writes are compare-and-commit on the store's generation, so a node answers a
//!   DescribeKey, ListAliases or DisableKey with everything any node acknowledged before.
//! - data plane, a key or alias made elsewhere: read-your-writes. A node that does not hold the
//!   key or alias a request names follows the store before answering NotFound, so a key made on
//!   node 1 encrypts on node 2 at once, and an alias made on 2 resolves on 1 at once.
//! - data plane, a change to a key the node holds (disable, enable, schedule deletion): within
//!   the propagation bound (LISTEN/NOTIFY, else the 1 s scheduler interval), as the data plane
//!   never waits on the database; the client waits for it here.
//!
//! Credentials do not live in a PostgreSQL store (`keyplane credentials` is SQLite-only): each
//! node makes its own bootstrap credential for the account root at start, and the client signs
//! each request with the credential of the node it sends it to.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::serving::{address, find, kms_call, spawn_with, startup, Serving};
use common::*;
use serde_json::{json, Value};

/// The propagation bound (1 s scheduler interval) plus 2 s of room for a loaded 2-core CI machine.
const ALLOWED: Duration = Duration::from_secs(3);

/// A serve node: its address and the bootstrap credential it printed.
struct Node {
    _serving: Serving,
    addr: SocketAddr,
    id: String,
    secret: String,
}

impl Node {
    fn start(d: &Path, name: &str, url: &str) -> Node {
        let root = d.join("node-1/root.key");
        let mut serving = spawn_with(
            d,
            &[],
            &["--listen", "127.0.0.1:0", "--plain-http"],
            &[
                ("KEYPLANE_STORE", url),
                ("KEYPLANE_HOME", name),
                ("KEYPLANE_ROOT_KEY_FILE", root.to_str().unwrap()),
            ],
        );
        let events = startup(&mut serving.lines);
        let credential = find(&events, "credential");
        Node {
            addr: address(&events, "listening"),
            id: credential["access_key_id"].as_str().unwrap().to_owned(),
            secret: credential["secret_access_key"].as_str().unwrap().to_owned(),
            _serving: serving,
        }
    }

    fn call(&self, operation: &str, body: Value) -> (u16, Value) {
        kms_call(self.addr, &self.id, &self.secret, operation, &body)
    }

    #[track_caller]
    fn ok(&self, operation: &str, body: Value) -> Value {
        let (status, answer) = self.call(operation, body);
        assert_eq!(status, 200, "{operation} on {}: {answer}", self.addr);
        answer
    }

    /// The error type of a call that must fail.
    #[track_caller]
    fn refused(&self, operation: &str, body: Value) -> String {
        let (status, answer) = self.call(operation, body);
        assert_ne!(
            status, 200,
            "{operation} on {} succeeded: {answer}",
            self.addr
        );
        answer["__type"].as_str().unwrap_or_default().to_owned()
    }

    /// Waits (up to ALLOWED) until Encrypt with `key` answers `expect` (`ok` or an error type);
    /// returns how long it took.
    fn await_encrypt(&self, key: &str, expect: &str) -> Duration {
        let started = Instant::now();
        loop {
            let (status, answer) = self.call("Encrypt", json!({"KeyId": key, "Plaintext": "YQ=="}));
            let seen = if status == 200 {
                "ok"
            } else {
                answer["__type"].as_str().unwrap_or_default()
            };
            if seen == expect {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < ALLOWED,
                "Encrypt with {key} on {} still answers {seen}, not {expect}, after {ALLOWED:?}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[test]
fn postgres_a_client_alternating_between_two_serve_nodes_sees_one_service() {
    let Some(url) = postgres_database("serve_fleet") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(
        d,
        &["--data-dir", "node-1", "store", "init", "--store", &url],
        b"",
    );
    let one = Node::start(d, "node-1", &url);
    let two = Node::start(d, "node-2", &url);

    // Create on 1, encrypt on 2 at once, decrypt on 1.
    let key = one.ok("CreateKey", json!({}))["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob =
        two.ok("Encrypt", json!({"KeyId": key, "Plaintext": "c2hhcmVk"}))["CiphertextBlob"].clone();
    let plain = one.ok("Decrypt", json!({"CiphertextBlob": blob}));
    assert_eq!(plain["Plaintext"], "c2hhcmVk");
    assert_eq!(
        plain["KeyId"].as_str().unwrap().rsplit('/').next(),
        Some(key.as_str())
    );

    // An alias made on 2 is used on 1 at once, and listed there.
    two.ok(
        "CreateAlias",
        json!({"AliasName": "alias/fleet-serve", "TargetKeyId": key}),
    );
    one.ok(
        "Encrypt",
        json!({"KeyId": "alias/fleet-serve", "Plaintext": "YQ=="}),
    );
    let aliases = one.ok("ListAliases", json!({"KeyId": key}));
    assert_eq!(aliases["Aliases"][0]["AliasName"], "alias/fleet-serve");

    // Read-your-writes for creation, many times over: each key made on one node encrypts on the
    // other with no wait, and its alias resolves there too.
    for i in 0..10 {
        let (maker, user) = if i % 2 == 0 {
            (&one, &two)
        } else {
            (&two, &one)
        };
        let k = maker.ok("CreateKey", json!({}))["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_owned();
        let alias = format!("alias/fleet-{i}");
        maker.ok("CreateAlias", json!({"AliasName": alias, "TargetKeyId": k}));
        user.ok("Encrypt", json!({"KeyId": k, "Plaintext": "YQ=="}));
        user.ok("Encrypt", json!({"KeyId": alias, "Plaintext": "YQ=="}));
    }

    // Disable on 1: the control plane of 2 says so at once; its data plane refuses within the
    // bound.
    one.ok("DisableKey", json!({"KeyId": key}));
    let described = two.ok("DescribeKey", json!({"KeyId": "alias/fleet-serve"}));
    assert_eq!(described["KeyMetadata"]["KeyState"], "Disabled");
    let disabled_in = two.await_encrypt(&key, "DisabledException");
    assert_eq!(
        two.refused("Decrypt", json!({"CiphertextBlob": blob})),
        "DisabledException"
    );
    assert_eq!(
        two.refused(
            "ReEncrypt",
            json!({"CiphertextBlob": blob, "DestinationKeyId": key})
        ),
        "DisabledException"
    );
    // Enable on 2: 1 serves it again within the bound.
    two.ok("EnableKey", json!({"KeyId": key}));
    let enabled_in = one.await_encrypt(&key, "ok");
    one.ok("Decrypt", json!({"CiphertextBlob": blob}));

    // Both nodes list the same keys and aliases.
    let keys = |n: &Node| {
        let mut ids: Vec<String> = n.ok("ListKeys", json!({"Limit": 1000}))["Keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["KeyId"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(keys(&one), keys(&two));
    assert_eq!(keys(&one).len(), 11);
    assert_eq!(
        one.ok("ListAliases", json!({"Limit": 100})),
        two.ok("ListAliases", json!({"Limit": 100}))
    );
    report(&format!(
        "serve fleet (2 nodes on PostgreSQL): a disable on node 1 refused on node 2's data plane \
         after {disabled_in:?}, an enable on node 2 served on node 1 after {enabled_in:?} \
         (bound 1 s + one reload; allowed {ALLOWED:?}); creations read-your-writes, no wait"
    ));
}
