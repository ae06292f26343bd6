//! Multi-Region keys from the command line: two Regions, each a data directory with its own
//! store and root key, used by separate `keyplane` processes that share nothing but the store
//! files (`--region-store` names the other Region's). Replicate, encrypt in one Region and
//! decrypt in the other, rotate on the primary, disable one Region only, swap the primary.

mod common;

use std::path::Path;

use common::*;

/// `keyplane` as the engine of `region` on `own`, given `peer_region`'s store in `peer`.
fn region_args<'a>(
    region: &'a str,
    own: &'a str,
    peer_region: &str,
    peer: &str,
    args: &[&'a str],
) -> Vec<String> {
    let mut all = vec![
        "--data-dir".to_string(),
        own.to_string(),
        "--region".into(),
        region.into(),
        "--region-store".into(),
        format!("{peer_region}=sqlite:{peer}"),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

fn east(d: &Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let all = region_args("us-east-1", "east", "eu-west-1", "west", args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    run_with(d, &all, stdin, &[])
}

fn west(d: &Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let all = region_args("eu-west-1", "west", "us-east-1", "east", args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    run_with(d, &all, stdin, &[])
}

fn as_json(out: std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&stdout_of(out)).expect("JSON")
}

#[test]
fn two_regions_in_two_processes_share_a_multi_region_key_through_their_stores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["--data-dir", "east", "store", "init"], b"");
    ok(d, &["--data-dir", "west", "store", "init"], b"");

    let created = as_json(east(d, &["--json", "key", "create", "--multi-region"], b""));
    let key = key_id(&created);
    assert!(key.starts_with("mrk-") && key.len() == 36, "{key}");
    assert_eq!(created["KeyMetadata"]["MultiRegion"], true);
    assert_eq!(
        created["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"],
        "PRIMARY"
    );

    let replicated = as_json(east(
        d,
        &[
            "--json",
            "key",
            "replicate",
            &key,
            "--replica-region",
            "eu-west-1",
            "--tag",
            "region=west",
        ],
        b"",
    ));
    let replica = &replicated["ReplicaKeyMetadata"];
    assert_shape(replica, "structures", "KeyMetadata", &["KeyId", "Arn"]);
    assert_eq!(replica["KeyId"], key.as_str());
    assert_eq!(
        replica["Arn"],
        format!("arn:aws:kms:eu-west-1:111122223333:key/{key}").as_str()
    );
    assert_eq!(replica["KeyState"], "Enabled");
    assert_eq!(replicated["ReplicaTags"][0]["TagKey"], "region");

    // The west process sees the replica in its own store.
    let described = as_json(west(d, &["--json", "key", "describe", &key], b""));
    let config = &described["KeyMetadata"]["MultiRegionConfiguration"];
    assert_eq!(config["MultiRegionKeyType"], "REPLICA");
    assert_eq!(config["PrimaryKey"]["Region"], "us-east-1");
    assert_eq!(config["ReplicaKeys"][0]["Region"], "eu-west-1");

    // Encrypt in one Region, decrypt in the other, both ways.
    let b64 = stdout_of(east(
        d,
        &["encrypt", "--key-id", &key],
        b"sealed in the east",
    ));
    assert_eq!(
        stdout_of(west(d, &["decrypt"], &b64)),
        b"sealed in the east"
    );
    let back = stdout_of(west(
        d,
        &["encrypt", "--key-id", &key],
        b"sealed in the west",
    ));
    assert_eq!(
        stdout_of(east(d, &["decrypt"], &back)),
        b"sealed in the west"
    );

    // A rotation on the primary reaches the replica; the replica cannot rotate.
    stdout_of(east(d, &["key", "rotate", &key], b""));
    let rotated = stdout_of(east(d, &["encrypt", "--key-id", &key], b"after rotation"));
    assert_eq!(
        stdout_of(west(d, &["decrypt"], &rotated)),
        b"after rotation"
    );
    assert_eq!(
        stdout_of(west(d, &["decrypt"], &b64)),
        b"sealed in the east"
    );
    let refused = west(d, &["key", "rotate", &key], b"");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("UnsupportedOperationException"),
        "{}",
        stderr(&refused)
    );

    // Disable in the west only.
    stdout_of(west(d, &["key", "disable", &key], b""));
    let disabled = west(d, &["encrypt", "--key-id", &key], b"x");
    assert!(!disabled.status.success());
    assert!(
        stderr(&disabled).contains("DisabledException"),
        "{}",
        stderr(&disabled)
    );
    stdout_of(east(d, &["encrypt", "--key-id", &key], b"east still works"));
    stdout_of(west(d, &["key", "enable", &key], b""));

    // Swap the primary, then the west rotates and the east decrypts.
    stdout_of(east(
        d,
        &[
            "key",
            "update-primary-region",
            &key,
            "--primary-region",
            "eu-west-1",
        ],
        b"",
    ));
    let west_view = as_json(west(d, &["--json", "key", "describe", &key], b""));
    assert_eq!(
        west_view["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"],
        "PRIMARY"
    );
    let east_view = as_json(east(d, &["--json", "key", "describe", &key], b""));
    assert_eq!(
        east_view["KeyMetadata"]["MultiRegionConfiguration"]["PrimaryKey"]["Region"],
        "eu-west-1"
    );
    stdout_of(west(d, &["key", "rotate", &key], b""));
    let from_new_primary = stdout_of(west(d, &["encrypt", "--key-id", &key], b"new primary"));
    assert_eq!(
        stdout_of(east(d, &["decrypt"], &from_new_primary)),
        b"new primary"
    );

    // A primary with a replica waits for it before its own waiting period.
    let scheduled = as_json(west(
        d,
        &[
            "--json",
            "key",
            "schedule-deletion",
            &key,
            "--pending-window-days",
            "7",
        ],
        b"",
    ));
    assert_eq!(scheduled["KeyState"], "PendingReplicaDeletion");
    assert!(scheduled.get("DeletionDate").is_none());

    // Bad --region-store values are usage errors.
    let bad = run_with(
        d,
        &[
            "--data-dir",
            "east",
            "--region-store",
            "eu-west-1",
            "key",
            "list",
        ],
        b"",
        &[],
    );
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("REGION=sqlite:PATH"),
        "{}",
        stderr(&bad)
    );
    let missing = run_with(
        d,
        &[
            "--data-dir",
            "east",
            "--region-store",
            "eu-west-1=sqlite:nowhere",
            "key",
            "list",
        ],
        b"",
        &[],
    );
    assert!(!missing.status.success());
}
