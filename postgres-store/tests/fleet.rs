//! Two engines on two stores of one database, in one process: what one node does, the other
//! follows (a key made on one encrypts on the other, a disable on one is refused on the other).

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::*;
use keyplane::{DecryptRequest, EncryptRequest, Engine};
use keyplane_testkit::new_key;

fn engine(store: Arc<keyplane_postgres::PostgresKeyStore>) -> Engine {
    Engine::builder()
        .worker_threads(1)
        .store(store)
        .build()
        .expect("engine on the PostgreSQL store")
}

#[test]
fn a_key_made_on_one_node_works_on_the_other_and_a_disable_reaches_it() {
    let Some(db) = TestDb::new() else { return };
    let a = engine(db.init());
    let b = engine(db.open());
    let key = new_key(&a);
    a.create_alias("alias/fleet", &key).unwrap();
    b.run_due_tasks().unwrap();
    let blob = b
        .encrypt(&EncryptRequest::new("alias/fleet", b"from b"))
        .unwrap()
        .ciphertext_blob;
    let plain = a.decrypt(&DecryptRequest::new(&blob)).unwrap();
    assert_eq!(plain.plaintext.expose(), b"from b");

    a.disable_key(&key).unwrap();
    let started = Instant::now();
    b.run_due_tasks().unwrap();
    let e = b
        .encrypt(&EncryptRequest::new(&key, b"after the disable"))
        .expect_err("a disabled key must be refused on every node");
    assert_eq!(e.code(), "DisabledException", "{e}");
    report(&format!(
        "postgres fleet: disable on A refused on B {:?} after B's next follow",
        started.elapsed()
    ));

    // And back: enabled on B, A follows.
    b.enable_key(&key).unwrap();
    a.run_due_tasks().unwrap();
    a.encrypt(&EncryptRequest::new(&key, b"enabled again"))
        .unwrap();
    // Both nodes' control planes agree.
    assert_eq!(
        a.describe_key(&key).unwrap().key_state,
        b.describe_key(&key).unwrap().key_state
    );
}
