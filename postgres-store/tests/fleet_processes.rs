//! Three engine processes on one PostgreSQL database (issue 19): each node is this test binary run
//! again (`fleet_node`, ignored, idle in an ordinary run) with an engine on the shared store and a
//! 1 s scheduler interval (what every front end opening a store address gets), woken by the
//! store's LISTEN/NOTIFY. The test talks to each node over a line protocol on its stdin/stdout:
//! one command a line, one `FLEET ok <unix µs> <payload>` or `FLEET err <unix µs> <Code>` answer.
//!
//! - `a_change_on_one_node_reaches_the_others_within_the_bound`: a key made on A encrypts on B and
//!   C; a disable on B is refused on A and C; then 200 more changes (disable/enable on a rotating
//!   node), each awaited on the two other nodes' data planes, propagation reported as p50/p99/max.
//! - `random_operations_on_random_nodes_match_a_reference_model`: a seeded random sequence of
//!   control-plane operations on random nodes, each outcome (and every ok/error code) predicted by
//!   a reference model; then rounds of conflicting operations sent to all three nodes at once,
//!   accepted when some serial order of them explains every outcome; after each phase every
//!   node's view (ListKeys, DescribeKey, GetKeyRotationStatus, ListResourceTags, ListGrants,
//!   ListAliases) equals a fresh engine's on the database, and every node's data plane (Encrypt by
//!   key id and by alias) agrees with the model within the bound. `KEYPLANE_FLEET_SEED` replays a
//!   run (the seed is printed), `KEYPLANE_FLEET_OPS` sets the number of sequential operations.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use keyplane::{
    CreateGrantRequest, CreateKeyRequest, DecryptRequest, EncryptRequest, Engine, GrantOperation,
    ManualClock, Tag,
};
use keyplane_postgres::{PgOptions, PostgresKeyStore};
use keyplane_sqlite::root_key::KeyFileProvider;
use keyplane_testkit::{child_test, hex, unhex};
use serde_json::{json, Value};

const NODE_ENV: &str = "KEYPLANE_FLEET_NODE";
const MARK: &str = "FLEET ";
/// The nodes' scheduler interval: the polling fallback, and so the stated propagation bound
/// (docs/store.md: "within scheduler_interval + one reload"); LISTEN/NOTIFY makes it milliseconds.
const INTERVAL: Duration = Duration::from_secs(1);
/// What the tests allow: the bound plus 2 s of room for a loaded 2-core CI machine (a debug build,
/// PostgreSQL and three nodes sharing two cores). Measured values are far below (docs/store.md).
const ALLOWED: Duration = Duration::from_secs(3);
const GRANTEE: &str = "arn:aws:iam::111122223333:role/fleet-worker";
/// A grant id that no grant has (64 hex characters, as the engine makes them).
const NO_GRANT: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

fn unix_us() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

// ---- the node (child process) ------------------------------------------------------------------

/// The entry point of every node process (run by `Node::start` with `--ignored`); ignored, and
/// idle, in a normal test run, so it is never reported as a passing test.
#[test]
#[ignore = "a node process of the fleet tests; does nothing on its own"]
fn fleet_node() {
    let Ok(name) = std::env::var(NODE_ENV) else {
        return;
    };
    let var = |v: &str| std::env::var(v).unwrap_or_else(|_| panic!("{v} for node {name}"));
    let provider = Arc::new(KeyFileProvider::new(
        var("KEYPLANE_FLEET_ROOT_KEY"),
        keyplane::LockPolicy::Require,
    ));
    let options = PgOptions {
        witness_dir: Some(var("KEYPLANE_FLEET_WITNESS").into()),
        ..PgOptions::default()
    };
    let store = Arc::new(
        PostgresKeyStore::open(&var("KEYPLANE_FLEET_URL"), provider, options).expect("open"),
    );
    let clock = Arc::new(ManualClock::starting_now());
    let engine = Engine::builder()
        .worker_threads(1)
        .store(store)
        .clock(clock.clone())
        .scheduler_interval(INTERVAL)
        .build()
        .expect("a node's engine");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}ok {} ready", unix_us()).unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("a command");
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"quit") {
            break;
        }
        let answer = match node_command(&engine, &clock, &words) {
            Ok(payload) => format!("{MARK}ok {} {payload}", unix_us()),
            Err(code) => format!("{MARK}err {} {code}", unix_us()),
        };
        writeln!(out, "{answer}").unwrap();
        out.flush().unwrap();
    }
}

/// Runs one command on the node's engine; `Err` holds the error's code.
fn node_command(engine: &Engine, clock: &ManualClock, words: &[&str]) -> Result<String, String> {
    let code = |e: keyplane::Error| e.code().to_owned();
    let done = |r: keyplane::Result<()>| r.map(|()| String::new()).map_err(code);
    match words {
        ["create"] => engine
            .create_key(CreateKeyRequest::default())
            .map(|m| m.key_id)
            .map_err(code),
        ["disable", k] => done(engine.disable_key(k)),
        ["enable", k] => done(engine.enable_key(k)),
        ["schedule", k] => engine
            .schedule_key_deletion(k, Some(7))
            .map(|_| String::new())
            .map_err(code),
        ["cancel", k] => engine
            .cancel_key_deletion(k)
            .map(|_| String::new())
            .map_err(code),
        ["describe_set", k, text] => done(engine.update_key_description(k, text)),
        ["tag", k, tk, tv] => done(engine.tag_resource(
            k,
            vec![Tag {
                tag_key: (*tk).to_owned(),
                tag_value: (*tv).to_owned(),
            }],
        )),
        ["untag", k, tk] => done(engine.untag_resource(k, &[*tk])),
        ["rotate_on", k] => done(engine.enable_key_rotation(k, None)),
        ["alias_create", a, k] => done(engine.create_alias(a, k)),
        ["alias_update", a, k] => done(engine.update_alias(a, k)),
        ["alias_delete", a] => done(engine.delete_alias(a)),
        ["grant_create", k] => engine
            .create_grant(CreateGrantRequest {
                key_id: (*k).to_owned(),
                grantee_principal: GRANTEE.to_owned(),
                retiring_principal: None,
                operations: vec![GrantOperation::Encrypt, GrantOperation::Decrypt],
                constraints: None,
                name: None,
            })
            .map(|g| g.grant_id)
            .map_err(code),
        ["grant_retire", k, g] => done(engine.retire_grant(None, Some(k), Some(g))),
        ["grant_revoke", k, g] => done(engine.revoke_grant(k, g)),
        ["advance_days", n] => {
            clock.advance_days(n.parse().unwrap());
            Ok(String::new())
        }
        ["encrypt", k] => engine
            .encrypt(&EncryptRequest::new(k, b"fleet"))
            .map(|r| hex(&r.ciphertext_blob))
            .map_err(code),
        ["decrypt", blob] => engine
            .decrypt(&DecryptRequest::new(&unhex(blob)))
            .map(|r| hex(r.plaintext.expose()))
            .map_err(code),
        // The data plane only (no control-plane call, which would follow the store first): the
        // Encrypt outcome of each name, `ok` or the error code.
        ["dataplane", names @ ..] => Ok(names
            .iter()
            .map(|n| encrypt_outcome(engine, n))
            .collect::<Vec<_>>()
            .join(" ")),
        // Polls the data plane until Encrypt with `k` has outcome `expect`; answers when it saw it.
        ["await", k, expect, timeout_ms] => {
            let deadline = Instant::now() + Duration::from_millis(timeout_ms.parse().unwrap());
            loop {
                let seen = encrypt_outcome(engine, k);
                if seen == *expect {
                    return Ok(String::new());
                }
                if Instant::now() > deadline {
                    return Err(format!("Timeout(last:{seen})"));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        ["view"] => view(engine).map(|v| v.to_string()).map_err(code),
        other => panic!("unknown node command {other:?}"),
    }
}

fn encrypt_outcome(engine: &Engine, name: &str) -> String {
    match engine.encrypt(&EncryptRequest::new(name, b"fleet")) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.code().to_owned(),
    }
}

/// A node's (or a fresh engine's) control-plane view of everything the fleet tests touch.
fn view(engine: &Engine) -> keyplane::Result<Value> {
    let mut keys = serde_json::Map::new();
    let mut marker: Option<String> = None;
    loop {
        let page = engine.list_keys(Some(1000), marker.as_deref())?;
        for entry in &page.items {
            let id = &entry.key_id;
            let meta = engine.describe_key(id)?;
            let rotation = engine.get_key_rotation_status(id)?.key_rotation_enabled;
            let tags: BTreeMap<String, String> = engine
                .list_resource_tags(id, None, None)?
                .items
                .into_iter()
                .map(|t| (t.tag_key, t.tag_value))
                .collect();
            let grants: BTreeSet<String> = engine
                .list_grants(id, None, None, Some(100), None)?
                .items
                .into_iter()
                .map(|g| g.grant_id)
                .collect();
            keys.insert(
                id.clone(),
                json!({
                    "state": serde_json::to_value(meta.key_state).unwrap(),
                    "description": meta.description,
                    "rotation": rotation,
                    "tags": tags,
                    "grants": grants,
                    "metadata": serde_json::to_value(&meta).unwrap(),
                }),
            );
        }
        if !page.truncated {
            break;
        }
        marker = page.next_marker;
    }
    let mut aliases = serde_json::Map::new();
    let mut marker: Option<String> = None;
    loop {
        let page = engine.list_aliases(None, Some(100), marker.as_deref())?;
        for a in page.items {
            if let Some(target) = a.target_key_id {
                if a.alias_name.starts_with("alias/fleet") {
                    aliases.insert(a.alias_name, Value::String(target));
                }
            }
        }
        if !page.truncated {
            break;
        }
        marker = page.next_marker;
    }
    Ok(json!({ "keys": keys, "aliases": aliases }))
}

// ---- the test's side -----------------------------------------------------------------------------

/// One answer of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    ok: bool,
    at_us: u64,
    /// The payload (ok) or the error code.
    text: String,
}

impl Answer {
    /// `ok` or the error code: what the model predicts.
    fn outcome(&self) -> &str {
        if self.ok {
            "ok"
        } else {
            &self.text
        }
    }
}

struct Node {
    name: &'static str,
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    _witness: tempfile::TempDir,
}

impl Node {
    fn start(name: &'static str, db: &TestDb) -> Node {
        let witness = tempfile::tempdir().unwrap();
        let mut child = child_test("fleet_node")
            .env(NODE_ENV, name)
            .env("KEYPLANE_FLEET_URL", &db.url)
            .env("KEYPLANE_FLEET_ROOT_KEY", db.dir.path().join("root.key"))
            .env("KEYPLANE_FLEET_WITNESS", witness.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a node");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        let mut node = Node {
            name,
            child,
            input,
            output,
            _witness: witness,
        };
        let ready = node.read();
        assert_eq!(ready.text, "ready", "node {name} did not start");
        node
    }

    fn send(&mut self, command: &str) {
        writeln!(self.input, "{command}")
            .and_then(|()| self.input.flush())
            .unwrap_or_else(|e| panic!("node {}: {e}", self.name));
    }

    fn read(&mut self) -> Answer {
        loop {
            let mut line = String::new();
            let n = self.output.read_line(&mut line).unwrap();
            assert!(n > 0, "node {} ended", self.name);
            let Some(at) = line.find(MARK) else { continue };
            let mut words = line[at + MARK.len()..].trim_end().splitn(3, ' ');
            let ok = match words.next() {
                Some("ok") => true,
                Some("err") => false,
                other => panic!("node {}: bad answer {other:?}", self.name),
            };
            let at_us = words.next().unwrap().parse().unwrap();
            let text = words.next().unwrap_or("").to_owned();
            return Answer { ok, at_us, text };
        }
    }

    fn call(&mut self, command: &str) -> Answer {
        self.send(command);
        self.read()
    }

    #[track_caller]
    fn ok(&mut self, command: &str) -> String {
        let a = self.call(command);
        assert!(a.ok, "node {}: {command}: {}", self.name, a.text);
        a.text
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "quit");
        let _ = self.input.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fleet(db: &TestDb) -> Vec<Node> {
    // The store is made by the test; the nodes open it.
    drop(db.init());
    vec![
        Node::start("A", db),
        Node::start("B", db),
        Node::start("C", db),
    ]
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

#[test]
fn a_change_on_one_node_reaches_the_others_within_the_bound() {
    let Some(db) = TestDb::new() else { return };
    let mut nodes = fleet(&db);
    let allowed_ms = ALLOWED.as_millis();

    // A key made on A encrypts on B and C (their data planes, without a control-plane call).
    let key = nodes[0].ok("create");
    let made = Instant::now();
    for node in &mut nodes[1..] {
        let a = node.call(&format!("await {key} ok {allowed_ms}"));
        assert!(a.ok, "node {}: a key made on A: {}", node.name, a.text);
    }
    let created_in = made.elapsed();
    // What B encrypts, C and A decrypt.
    let blob = nodes[1].ok(&format!("encrypt {key}"));
    assert_eq!(nodes[2].ok(&format!("decrypt {blob}")), hex(b"fleet"));
    assert_eq!(nodes[0].ok(&format!("decrypt {blob}")), hex(b"fleet"));

    // A disable on B is refused on A and C.
    nodes[1].ok(&format!("disable {key}"));
    let disabled = Instant::now();
    for i in [0, 2] {
        let a = nodes[i].call(&format!("await {key} DisabledException {allowed_ms}"));
        assert!(a.ok, "node {}: a disable on B: {}", nodes[i].name, a.text);
        let refused = nodes[i].call(&format!("encrypt {key}"));
        assert_eq!(refused.outcome(), "DisabledException");
        let refused = nodes[i].call(&format!("decrypt {blob}"));
        assert_eq!(refused.outcome(), "DisabledException");
    }
    let disabled_in = disabled.elapsed();
    report(&format!(
        "postgres fleet (3 processes): a key made on A encrypted on B and C after {created_in:?}; \
         a disable on B refused on A and C after {disabled_in:?}"
    ));

    // 200 changes, each made on the next node in turn and awaited on the two others. The await
    // is sent first (each watcher polls its own data plane every 200 µs); the propagation is the
    // time from the changing node's acknowledgement to a watcher's first observation of it (0
    // when the watcher saw it before the acknowledgement reached the test).
    let changes = 200;
    let mut enabled = false; // the key is disabled now
    let mut samples = Vec::with_capacity(2 * changes);
    let mut before_ack = 0;
    let started = Instant::now();
    for i in 0..changes {
        let changer = i % 3;
        let (command, expect) = if enabled {
            ("disable", "DisabledException")
        } else {
            ("enable", "ok")
        };
        let watchers: Vec<usize> = (0..3).filter(|&w| w != changer).collect();
        for &w in &watchers {
            nodes[w].send(&format!("await {key} {expect} {allowed_ms}"));
        }
        let ack = nodes[changer].call(&format!("{command} {key}"));
        assert!(
            ack.ok,
            "change {i} on {}: {}",
            nodes[changer].name, ack.text
        );
        enabled = !enabled;
        for &w in &watchers {
            let seen = nodes[w].read();
            assert!(
                seen.ok,
                "change {i} ({command} on {}) not seen on {} within {ALLOWED:?}: {}",
                nodes[changer].name, nodes[w].name, seen.text
            );
            if seen.at_us < ack.at_us {
                before_ack += 1;
            }
            samples.push(seen.at_us.saturating_sub(ack.at_us));
        }
    }
    let total = started.elapsed();
    samples.sort_unstable();
    let (p50, p99, max) = (
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        *samples.last().unwrap(),
    );
    report(&format!(
        "postgres fleet (3 processes): propagation of {changes} changes to 2 nodes each \
         ({} observations, {before_ack} before the acknowledgement): p50 {}, p99 {}, max {} \
         (bound: scheduler interval {INTERVAL:?} + one reload; allowed {ALLOWED:?}); \
         {total:?} in all",
        samples.len(),
        ms(p50),
        ms(p99),
        ms(max),
    ));
    assert!(
        Duration::from_micros(max) <= ALLOWED,
        "a change took {} to propagate",
        ms(max)
    );
}

// ---- the reference model -------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelKey {
    state: &'static str,
    description: String,
    rotation: bool,
    tags: BTreeMap<String, String>,
    grants: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Model {
    keys: BTreeMap<String, ModelKey>,
    aliases: BTreeMap<String, String>,
}

const ENABLED: &str = "Enabled";
const DISABLED: &str = "Disabled";
const PENDING: &str = "PendingDeletion";
const INVALID: &str = "KMSInvalidStateException";
const NOT_FOUND: &str = "NotFoundException";

/// One operation as sent to a node (`command`), with what the model needs to apply it.
#[derive(Debug, Clone)]
struct Op {
    command: String,
}

impl Model {
    /// Applies `op` whose node answered `answer`: `Err` when the model predicts another outcome.
    fn apply(&mut self, op: &Op, answer: &Answer) -> Result<(), String> {
        let words: Vec<&str> = op.command.split_whitespace().collect();
        let predicted = self.predict(&words);
        let observed = answer.outcome();
        // A change that kept losing to others is refused as a whole (nothing changed); the
        // engine tries 8 times, which three nodes should not exhaust, but it is a correct answer.
        if !answer.ok && observed == "ConflictException" {
            return Ok(());
        }
        if predicted != observed {
            return Err(format!(
                "{}: model predicts {predicted}, node answered {observed} ({})",
                op.command, answer.text
            ));
        }
        if !answer.ok {
            return Ok(());
        }
        let key = |m: &mut Model, k: &str| m.keys.get_mut(k).unwrap().clone();
        match words.as_slice() {
            ["create"] => {
                self.keys.insert(
                    answer.text.clone(),
                    ModelKey {
                        state: ENABLED,
                        description: String::new(),
                        rotation: false,
                        tags: BTreeMap::new(),
                        grants: BTreeSet::new(),
                    },
                );
            }
            ["disable", k] => self.keys.get_mut(*k).unwrap().state = DISABLED,
            ["enable", k] => self.keys.get_mut(*k).unwrap().state = ENABLED,
            ["schedule", k] => self.keys.get_mut(*k).unwrap().state = PENDING,
            ["cancel", k] => self.keys.get_mut(*k).unwrap().state = DISABLED,
            ["describe_set", k, text] => {
                self.keys.get_mut(*k).unwrap().description = (*text).to_owned()
            }
            ["tag", k, tk, tv] => {
                let mut m = key(self, k);
                m.tags.insert((*tk).to_owned(), (*tv).to_owned());
                self.keys.insert((*k).to_owned(), m);
            }
            ["untag", k, tk] => {
                self.keys.get_mut(*k).unwrap().tags.remove(*tk);
            }
            ["rotate_on", k] => self.keys.get_mut(*k).unwrap().rotation = true,
            ["alias_create", a, k] | ["alias_update", a, k] => {
                self.aliases.insert((*a).to_owned(), (*k).to_owned());
            }
            ["alias_delete", a] => {
                self.aliases.remove(*a);
            }
            ["grant_create", k] => {
                self.keys
                    .get_mut(*k)
                    .unwrap()
                    .grants
                    .insert(answer.text.clone());
            }
            ["grant_retire", k, g] | ["grant_revoke", k, g] => {
                self.keys.get_mut(*k).unwrap().grants.remove(*g);
            }
            other => panic!("no model for {other:?}"),
        }
        Ok(())
    }

    /// `ok` or the error code the service answers.
    fn predict(&self, words: &[&str]) -> String {
        let state = |k: &str| self.keys.get(k).map(|m| m.state);
        let r = |s: &str| s.to_owned();
        // Operations on a key that may change its metadata: Enabled and Disabled only.
        let metadata = |k: &str| match state(k) {
            None => r(NOT_FOUND),
            Some(PENDING) => r(INVALID),
            Some(_) => r("ok"),
        };
        match words {
            ["create"] => r("ok"),
            ["disable", k] | ["enable", k] | ["schedule", k] => metadata(k),
            ["cancel", k] => match state(k) {
                None => r(NOT_FOUND),
                Some(PENDING) => r("ok"),
                Some(_) => r(INVALID),
            },
            ["describe_set", k, _] | ["tag", k, _, _] | ["untag", k, _] | ["grant_create", k] => {
                metadata(k)
            }
            ["rotate_on", k] => match state(k) {
                None => r(NOT_FOUND),
                Some(ENABLED) => r("ok"),
                Some(DISABLED) => r("DisabledException"),
                Some(_) => r(INVALID),
            },
            ["alias_create", a, k] => {
                if self.aliases.contains_key(*a) {
                    r("AlreadyExistsException")
                } else {
                    metadata(k)
                }
            }
            ["alias_update", a, k] => {
                if !self.aliases.contains_key(*a) {
                    r(NOT_FOUND)
                } else {
                    metadata(k)
                }
            }
            ["alias_delete", a] => {
                if self.aliases.contains_key(*a) {
                    r("ok")
                } else {
                    r(NOT_FOUND)
                }
            }
            ["grant_retire", k, g] | ["grant_revoke", k, g] => match self.keys.get(*k) {
                None => r(NOT_FOUND),
                Some(m) if m.grants.contains(*g) => r("ok"),
                Some(_) => r("InvalidGrantIdException"),
            },
            other => panic!("no model for {other:?}"),
        }
    }

    /// Every key pending deletion is deleted, with its aliases (the clocks moved past their
    /// 7-day window).
    fn delete_due(&mut self) {
        let gone: BTreeSet<String> = self
            .keys
            .iter()
            .filter(|(_, m)| m.state == PENDING)
            .map(|(k, _)| k.clone())
            .collect();
        self.keys.retain(|k, _| !gone.contains(k));
        self.aliases.retain(|_, target| !gone.contains(target));
    }

    /// The model of a view (`view`'s JSON).
    fn of_view(view: &Value) -> Model {
        let keys = view["keys"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, k)| {
                let state = match k["state"].as_str().unwrap() {
                    "Enabled" => ENABLED,
                    "Disabled" => DISABLED,
                    "PendingDeletion" => PENDING,
                    other => panic!("unexpected key state {other}"),
                };
                let tags = k["tags"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(t, v)| (t.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                let grants = k["grants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| g.as_str().unwrap().to_owned())
                    .collect();
                (
                    id.clone(),
                    ModelKey {
                        state,
                        description: k["description"].as_str().unwrap().to_owned(),
                        rotation: k["rotation"].as_bool().unwrap(),
                        tags,
                        grants,
                    },
                )
            })
            .collect();
        let aliases = view["aliases"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(a, t)| (a.clone(), t.as_str().unwrap().to_owned()))
            .collect();
        Model { keys, aliases }
    }

    /// The invariants every committed state keeps: no alias to a missing key (grants live in their
    /// key's record, so none can outlive it).
    fn check_invariants(&self) -> Result<(), String> {
        for (a, target) in &self.aliases {
            if !self.keys.contains_key(target) {
                return Err(format!("alias {a} points to missing key {target}"));
            }
        }
        Ok(())
    }

    /// The Encrypt outcome of `name` (a key id or an alias) on an up-to-date node.
    fn encrypt_outcome(&self, name: &str) -> &'static str {
        let key = self.aliases.get(name).map_or(name, String::as_str);
        match self.keys.get(key).map(|m| m.state) {
            None => NOT_FOUND,
            Some(ENABLED) => "ok",
            Some(DISABLED) => "DisabledException",
            Some(_) => INVALID,
        }
    }
}

/// SplitMix64: a small seeded generator (the run is replayed from its seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const ALIASES: [&str; 4] = [
    "alias/fleet-0",
    "alias/fleet-1",
    "alias/fleet-2",
    "alias/fleet-3",
];
const TAG_KEYS: [&str; 3] = ["team", "env", "cost"];

/// A random operation on the model's keys (and sometimes on a deleted key, or an id no key has).
fn random_op(rng: &mut Rng, model: &Model, deleted: &[String]) -> Op {
    let mut keys: Vec<String> = model.keys.keys().cloned().collect();
    if keys.is_empty() || rng.below(8) == 0 {
        return Op {
            command: "create".into(),
        };
    }
    if rng.below(20) == 0 {
        keys = if deleted.is_empty() {
            vec!["6f1c2a4e-0000-4000-8000-000000000000".into()]
        } else {
            deleted.to_vec()
        };
    }
    let k = rng.pick(&keys).clone();
    let a = *rng.pick(&ALIASES);
    let grant = |rng: &mut Rng| {
        let grants: Vec<String> = model
            .keys
            .get(&k)
            .map(|m| m.grants.iter().cloned().collect())
            .unwrap_or_default();
        if grants.is_empty() || rng.below(6) == 0 {
            NO_GRANT.to_owned()
        } else {
            rng.pick(&grants).clone()
        }
    };
    let command = match rng.below(16) {
        0 | 1 => format!("disable {k}"),
        2 | 3 => format!("enable {k}"),
        4 => format!("schedule {k}"),
        5 => format!("cancel {k}"),
        6 => format!("describe_set {k} d{}", rng.below(1000)),
        7 => format!("tag {k} {} v{}", rng.pick(&TAG_KEYS), rng.below(100)),
        8 => format!("untag {k} {}", rng.pick(&TAG_KEYS)),
        9 => format!("rotate_on {k}"),
        10 => format!("alias_create {a} {k}"),
        11 => format!("alias_update {a} {k}"),
        12 => format!("alias_delete {a}"),
        13 => format!("grant_create {k}"),
        14 => format!("grant_retire {k} {}", grant(rng)),
        _ => format!("grant_revoke {k} {}", grant(rng)),
    };
    Op { command }
}

/// Every permutation of `0..n` (n ≤ 3 here).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut all = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut p = rest.clone();
            p.insert(at, n - 1);
            all.push(p);
        }
    }
    all
}

fn fresh_view(db: &TestDb) -> Value {
    let engine = Engine::builder()
        .worker_threads(1)
        .store(db.open())
        .build()
        .expect("a fresh engine on the database");
    view(&engine).expect("the database's view")
}

/// Every node's control-plane view equals the database's (a fresh engine's), which equals
/// `model`; and every node's data plane gives the model's Encrypt outcome for every key and alias
/// within the allowed time.
fn check_convergence(
    db: &TestDb,
    nodes: &mut [Node],
    model: &Model,
    deleted: &[String],
    when: &str,
) {
    let database = fresh_view(db);
    let from_db = Model::of_view(&database);
    assert_eq!(
        &from_db, model,
        "{when}: the database's view differs from the reference model"
    );
    from_db
        .check_invariants()
        .unwrap_or_else(|e| panic!("{when}: {e}"));
    let mut names: Vec<String> = model.keys.keys().cloned().collect();
    names.extend(deleted.iter().cloned());
    names.extend(ALIASES.iter().map(|a| (*a).to_owned()));
    let expected: Vec<&str> = names.iter().map(|n| model.encrypt_outcome(n)).collect();
    let command = format!("dataplane {}", names.join(" "));
    for node in nodes.iter_mut() {
        // The data plane first (a control-plane call would make the node follow the store).
        let deadline = Instant::now() + ALLOWED;
        loop {
            let seen = node.ok(&command);
            let seen: Vec<&str> = seen.split(' ').collect();
            if seen == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{when}: node {}'s data plane did not converge within {ALLOWED:?}:\n{:?}",
                node.name,
                names
                    .iter()
                    .zip(seen.iter().zip(&expected))
                    .filter(|(_, (s, e))| s != e)
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let seen: Value = serde_json::from_str(&node.ok("view")).unwrap();
        assert_eq!(
            seen, database,
            "{when}: node {}'s view differs from the database's",
            node.name
        );
    }
}

#[test]
fn random_operations_on_random_nodes_match_a_reference_model() {
    let Some(db) = TestDb::new() else { return };
    let seed = std::env::var("KEYPLANE_FLEET_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("KEYPLANE_FLEET_SEED is a number"))
        .unwrap_or_else(unix_us);
    let sequential: usize = std::env::var("KEYPLANE_FLEET_OPS")
        .ok()
        .map_or(150, |s| s.parse().expect("KEYPLANE_FLEET_OPS is a number"));
    report(&format!(
        "postgres fleet model: seed {seed} (replay with KEYPLANE_FLEET_SEED={seed}), \
         {sequential} sequential operations"
    ));
    let mut rng = Rng(seed);
    let mut nodes = fleet(&db);
    let mut model = Model::default();
    let mut deleted: Vec<String> = Vec::new();
    let started = Instant::now();

    // Phase 1: one operation at a time on a random node; every outcome as the model predicts.
    let mut advances = 0;
    for i in 0..sequential {
        if advances < 3 && rng.below(40) == 0 {
            // Every node's clock passes the 7-day windows: the keys pending deletion go, with
            // their aliases, at the next follow of whichever node gets there first.
            for node in nodes.iter_mut() {
                node.ok("advance_days 8");
            }
            advances += 1;
            let before: BTreeSet<String> = model.keys.keys().cloned().collect();
            model.delete_due();
            deleted.extend(before.into_iter().filter(|k| !model.keys.contains_key(k)));
            continue;
        }
        let op = random_op(&mut rng, &model, &deleted);
        let n = rng.below(3);
        let answer = nodes[n].call(&op.command);
        model.apply(&op, &answer).unwrap_or_else(|e| {
            panic!("seed {seed}, operation {i} on node {}: {e}", nodes[n].name)
        });
    }
    check_convergence(
        &db,
        &mut nodes,
        &model,
        &deleted,
        "after the sequential phase",
    );
    report(&format!(
        "postgres fleet model: {} keys, {} aliases, {} deleted after {sequential} operations \
         ({:?})",
        model.keys.len(),
        model.aliases.len(),
        deleted.len(),
        started.elapsed()
    ));

    // Phase 2: conflicting operations from all three nodes at once, on the same few keys and
    // aliases. Some serial order of each round's three must explain every answer (serialisable,
    // nothing acknowledged lost); the database's state after the round picks among the orders
    // that do.
    let rounds = 60;
    let orders = permutations(3);
    let mut conflicted = 0;
    for round in 0..rounds {
        // Narrow the choice to one or two keys so that the three operations collide.
        let hot: Model = {
            let mut ids: Vec<String> = model.keys.keys().cloned().collect();
            let keep = 1 + rng.below(2);
            while ids.len() > keep {
                ids.remove(rng.below(ids.len()));
            }
            Model {
                keys: model
                    .keys
                    .iter()
                    .filter(|(k, _)| ids.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                aliases: model.aliases.clone(),
            }
        };
        let ops: Vec<Op> = (0..3)
            .map(|_| random_op(&mut rng, &hot, &deleted))
            .collect();
        for (node, op) in nodes.iter_mut().zip(&ops) {
            node.send(&op.command);
        }
        let answers: Vec<Answer> = nodes.iter_mut().map(Node::read).collect();
        let mut candidates: Vec<Model> = Vec::new();
        let mut explained_by = 0;
        for order in &orders {
            let mut m = model.clone();
            if order.iter().all(|&i| m.apply(&ops[i], &answers[i]).is_ok()) {
                explained_by += 1;
                if !candidates.contains(&m) {
                    candidates.push(m);
                }
            }
        }
        let described: Vec<String> = ops
            .iter()
            .zip(&answers)
            .map(|(o, a)| format!("{} -> {} {}", o.command, a.outcome(), a.text))
            .collect();
        assert!(
            !candidates.is_empty(),
            "seed {seed}, concurrent round {round}: no serial order explains the answers:\n{}",
            described.join("\n")
        );
        if explained_by < orders.len() {
            conflicted += 1;
        }
        let database = Model::of_view(&fresh_view(&db));
        model = candidates
            .into_iter()
            .find(|m| *m == database)
            .unwrap_or_else(|| {
                panic!(
                    "seed {seed}, concurrent round {round}: the database holds a state no serial \
                     order of the answers leads to:\n{}\ndatabase: {database:?}",
                    described.join("\n")
                )
            });
    }
    check_convergence(
        &db,
        &mut nodes,
        &model,
        &deleted,
        "after the concurrent phase",
    );
    report(&format!(
        "postgres fleet model: {rounds} concurrent rounds of 3 operations, {conflicted} of them \
         order-dependent; every node's view equals the database's and the model's ({:?} in all)",
        started.elapsed()
    ));
}
