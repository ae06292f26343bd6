//! `evaluate` does not allocate: neither for a policy without conditions nor, given a
//! `ConditionValues` that implements `visit_values`, for one with conditions.
//!
//! Counting allocations needs a global allocator, and `GlobalAlloc` is an unsafe trait: this test
//! binary (not the library) has the one `unsafe impl`, which only counts and forwards to `System`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;

use keyplane::policy::{default_policy, ConditionValues, Decision, KeyPolicy, RequestContext};
use keyplane_testkit::Conditions;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

#[allow(unsafe_code)]
// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local `Cell` with a const initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/k";

#[test]
fn evaluate_does_not_allocate() {
    let plain = KeyPolicy::parse(&default_policy("111122223333")).unwrap();
    let conditional = KeyPolicy::parse(
        r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:role/App", "111122223333"]},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "arn:aws:kms:*:111122223333:key/*",
         "Condition": {
            "StringEquals": {"kms:EncryptionContext:tenant": ["41", "42"], "kms:CallerAccount": "111122223333"},
            "StringEqualsIgnoreCase": {"kms:EncryptionContext:region": "EU"},
            "ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["tenant", "reg*"]},
            "ArnLike": {"aws:PrincipalArn": "arn:aws:sts::111122223333:assumed-role/App/*"},
            "Null": {"kms:RequestAlias": "true"},
            "BoolIfExists": {"kms:GrantIsForAWSResource": "true"}
         }},
        {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:role/Admin"}, "Action": "kms:PutKeyPolicy", "Resource": "*"}
    ]}"#,
    )
    .unwrap();
    let values = Conditions::default()
        .with("kms:EncryptionContext:tenant", &["42"])
        .with("kms:EncryptionContext:region", &["eu"])
        .with("kms:EncryptionContextKeys", &["tenant", "region"]);
    let request = RequestContext {
        action: "kms:Decrypt",
        principal: "arn:aws:sts::111122223333:assumed-role/App/s1",
        principal_account: "111122223333",
        resource: KEY,
        conditions: &values,
    };
    // Warm up (lazy thread-locals and the like), and check the decisions are the interesting ones.
    assert_eq!(plain.evaluate(&request), Decision::Allow);
    assert_eq!(conditional.evaluate(&request), Decision::Allow);
    let denied = RequestContext {
        action: "kms:PutKeyPolicy",
        ..request
    };
    assert_eq!(conditional.evaluate(&denied), Decision::ExplicitDeny);

    let n = allocations_during(|| {
        for _ in 0..1000 {
            std::hint::black_box(plain.evaluate(std::hint::black_box(&request)));
            std::hint::black_box(conditional.evaluate(std::hint::black_box(&request)));
            std::hint::black_box(conditional.evaluate(std::hint::black_box(&denied)));
        }
    });
    assert_eq!(n, 0, "evaluate allocated {n} times");

    // The counter does count: the default `visit_values` goes through `values`, a `Vec`.
    let map: std::collections::HashMap<String, Vec<String>> = [(
        "kms:KeySpec".to_string(),
        vec!["SYMMETRIC_DEFAULT".to_string()],
    )]
    .into();
    struct ThroughValues<'a>(&'a std::collections::HashMap<String, Vec<String>>);
    impl ConditionValues for ThroughValues<'_> {
        fn values(&self, key: &str) -> Option<Vec<Cow<'_, str>>> {
            ConditionValues::values(self.0, key)
        }
    }
    let spec = KeyPolicy::parse(
        r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
        "Condition": {"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}}}}"#,
    )
    .unwrap();
    let through = ThroughValues(&map);
    let request = RequestContext {
        conditions: &through,
        ..request
    };
    let n = allocations_during(|| assert_eq!(spec.evaluate(&request), Decision::Allow));
    assert!(n > 0);
}
