//! A network front end's request origin in the audit log: `Engine::with_origin` puts the request
//! id, source address, user agent, signing access key id and TLS details into a call's record, and
//! `Engine::with_item_origins` lists each coalesced item's origin, in order, under
//! `additionalEventData.requests` of the batch's one record.

#[path = "support/audit_log.rs"]
mod audit_log;

use std::path::Path;

use keyplane::{EncryptRequest, Engine, RequestOrigin};
use keyplane_testkit::new_key;
use serde_json::Value;

/// The event of the last record named `name`.
fn last_event(path: &Path, name: &str) -> Value {
    let all = audit_log::records(path);
    let record = all
        .iter()
        .rev()
        .find(|r| event_of(r)["eventName"] == name)
        .unwrap_or_else(|| panic!("no {name} record in {all:#?}"));
    event_of(record).clone()
}

fn event_of(record: &Value) -> &Value {
    record.get("event").unwrap_or(record)
}

fn origin(n: u32, tls: bool) -> RequestOrigin {
    RequestOrigin {
        request_id: Some(format!("0000000{n}-1111-2222-3333-444444444444")),
        source_ip: Some(format!("192.0.2.{n}")),
        user_agent: Some(format!("aws-sdk-test/{n}")),
        access_key_id: Some(format!("AKIAORIGINTEST0000{n:02}")),
        tls_version: tls.then(|| "TLSv1.3".to_owned()),
        cipher_suite: tls.then(|| "TLS_AES_128_GCM_SHA256".to_owned()),
        host: tls.then(|| "127.0.0.1:4443".to_owned()),
    }
}

fn engine(path: &Path) -> Engine {
    audit_log::audited(Engine::builder().worker_threads(2), path)
        .build()
        .unwrap()
}

#[track_caller]
fn assert_top_level_origin(event: &Value, o: &RequestOrigin) {
    assert_eq!(
        event["requestID"],
        o.request_id.as_deref().unwrap(),
        "{event:#}"
    );
    assert_eq!(
        event["sourceIPAddress"],
        o.source_ip.as_deref().unwrap(),
        "{event:#}"
    );
    assert_eq!(
        event["userAgent"],
        o.user_agent.as_deref().unwrap(),
        "{event:#}"
    );
    assert_eq!(
        event["userIdentity"]["accessKeyId"],
        o.access_key_id.as_deref().unwrap(),
        "{event:#}"
    );
}

#[test]
fn a_single_call_records_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let engine = engine(&path);
    let key = new_key(&engine);
    let o = origin(7, true);
    engine
        .with_origin(o.clone())
        .encrypt(&EncryptRequest::new(&key, b"x"))
        .unwrap();
    let event = last_event(&path, "Encrypt");
    assert_top_level_origin(&event, &o);
    assert_eq!(
        event["tlsDetails"],
        serde_json::json!({
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "127.0.0.1:4443",
        })
    );
    // A failed call records its origin too.
    let o = origin(8, false);
    engine
        .with_origin(o.clone())
        .encrypt(&EncryptRequest::new("alias/missing", b"x"))
        .unwrap_err();
    let event = last_event(&path, "Encrypt");
    assert_top_level_origin(&event, &o);
    assert!(event["errorCode"].is_string(), "{event:#}");
    assert!(
        event.get("tlsDetails").is_none(),
        "plain HTTP has no TLS details: {event:#}"
    );
    // A call without an origin claims none.
    engine.encrypt(&EncryptRequest::new(&key, b"x")).unwrap();
    let event = last_event(&path, "Encrypt");
    assert!(
        event["userIdentity"].get("accessKeyId").is_none(),
        "{event:#}"
    );
    assert!(event.get("tlsDetails").is_none(), "{event:#}");
    assert_ne!(event["requestID"], o.request_id.as_deref().unwrap());
}

#[test]
fn a_batch_of_one_origin_records_it_like_a_single_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let engine = engine(&path);
    let key = new_key(&engine);
    let o = origin(3, true);
    let requests: Vec<_> = (0..4).map(|_| EncryptRequest::new(&key, b"x")).collect();
    let results = engine
        .with_item_origins(vec![o.clone()])
        .encrypt_batch(&requests);
    assert!(results.iter().all(Result::is_ok));
    let event = last_event(&path, "Encrypt");
    assert_top_level_origin(&event, &o);
    assert_eq!(event["tlsDetails"]["tlsVersion"], "TLSv1.3", "{event:#}");
}

#[test]
fn a_batch_of_several_origins_lists_each_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let engine = engine(&path);
    let key = new_key(&engine);
    let origins: Vec<RequestOrigin> = (1..=3).map(|n| origin(n, true)).collect();
    let requests = vec![
        EncryptRequest::new(&key, b"a"),
        EncryptRequest::new("alias/missing", b"b"),
        EncryptRequest::new(&key, b"c"),
    ];
    let results = engine
        .with_item_origins(origins.clone())
        .encrypt_batch(&requests);
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
    let event = last_event(&path, "Encrypt");
    let listed = event["additionalEventData"]["requests"]
        .as_array()
        .unwrap_or_else(|| panic!("no additionalEventData.requests: {event:#}"));
    assert_eq!(listed.len(), 3, "{event:#}");
    for (item, o) in listed.iter().zip(&origins) {
        assert_eq!(item["requestID"], o.request_id.as_deref().unwrap());
        assert_eq!(item["sourceIPAddress"], o.source_ip.as_deref().unwrap());
        assert_eq!(item["userAgent"], o.user_agent.as_deref().unwrap());
        assert_eq!(item["accessKeyId"], o.access_key_id.as_deref().unwrap());
    }
    // The record does not pass off one item's origin as the whole batch's.
    for o in &origins {
        assert_ne!(
            event["sourceIPAddress"],
            o.source_ip.as_deref().unwrap(),
            "{event:#}"
        );
        assert_ne!(
            event["userIdentity"]["accessKeyId"],
            o.access_key_id.as_deref().unwrap(),
            "{event:#}"
        );
    }
}
