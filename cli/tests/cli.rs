//! The `keyplane` binary end to end: every command family, the service's JSON shapes, raw and
//! base64 I/O, exit codes, data directory resolution and the demo.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn help_shows_every_command_family_examples_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let help = String::from_utf8(ok(dir.path(), &["--help"], b"")).unwrap();
    for word in [
        "key",
        "alias",
        "tag",
        "encrypt",
        "decrypt",
        "re-encrypt",
        "generate-data-key",
        "generate-random",
        "store",
        "demo",
        "Examples:",
        "Exit codes",
        "KEYPLANE_HOME",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
    let key_help = String::from_utf8(ok(dir.path(), &["key", "--help"], b"")).unwrap();
    for word in [
        "create",
        "list",
        "describe",
        "enable",
        "disable",
        "rotate",
        "rotation",
        "schedule-deletion",
        "cancel-deletion",
    ] {
        assert!(key_help.contains(word), "key --help lacks {word}");
    }
    let store_help = String::from_utf8(ok(dir.path(), &["store", "--help"], b"")).unwrap();
    for word in ["init", "verify", "backup", "restore", "rotate-root-key"] {
        assert!(store_help.contains(word), "store --help lacks {word}");
    }
}

#[test]
fn the_key_lifecycle_in_the_service_s_json_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let created = json(
        d,
        &[
            "key",
            "create",
            "--description",
            "orders",
            "--tag",
            "team=pay",
        ],
        b"",
    );
    assert_shape(&created, "operations", "CreateKey", &["KeyMetadata"]);
    let meta = &created["KeyMetadata"];
    assert_shape(
        meta,
        "structures",
        "KeyMetadata",
        &["KeyId", "Arn", "CreationDate", "KeyState", "KeySpec"],
    );
    assert!(
        meta["CreationDate"].is_f64(),
        "dates are epoch seconds: {meta}"
    );
    assert_eq!(meta["KeyState"], "Enabled");
    let key = meta["KeyId"].as_str().unwrap().to_owned();

    assert_eq!(
        json(d, &["alias", "create", "alias/orders", &key], b""),
        serde_json::json!({})
    );
    let described = json(d, &["key", "describe", "alias/orders"], b"");
    assert_shape(&described, "operations", "DescribeKey", &["KeyMetadata"]);
    assert_eq!(described["KeyMetadata"]["Description"], "orders");

    let listed = json(d, &["key", "list"], b"");
    assert_shape(&listed, "operations", "ListKeys", &["Keys", "Truncated"]);
    assert_shape(
        &listed["Keys"][0],
        "structures",
        "KeyListEntry",
        &["KeyId", "KeyArn"],
    );
    let aliases = json(d, &["alias", "list"], b"");
    assert_shape(
        &aliases,
        "operations",
        "ListAliases",
        &["Aliases", "Truncated"],
    );
    let listed = aliases["Aliases"].as_array().unwrap();
    let orders = listed
        .iter()
        .find(|a| a["AliasName"] == "alias/orders")
        .expect("alias/orders is listed");
    assert_shape(
        orders,
        "structures",
        "AliasListEntry",
        &["AliasName", "TargetKeyId"],
    );
    // The integrated services' predefined aliases are listed before their keys exist, without
    // TargetKeyId or dates, as the service lists them.
    let s3 = listed
        .iter()
        .find(|a| a["AliasName"] == "alias/aws/s3")
        .expect("alias/aws/s3 is listed");
    assert_shape(
        s3,
        "structures",
        "AliasListEntry",
        &["AliasName", "AliasArn"],
    );
    assert!(
        s3.get("TargetKeyId").is_none() && s3.get("CreationDate").is_none(),
        "{s3}"
    );
    let table = String::from_utf8(ok(d, &["key", "list"], b"")).unwrap();
    assert!(
        table.contains(&key) && table.contains("alias/orders") && table.contains("Enabled"),
        "{table}"
    );

    let rotated = json(d, &["key", "rotate", &key], b"");
    assert_shape(&rotated, "operations", "RotateKeyOnDemand", &["KeyId"]);
    json(
        d,
        &["key", "rotation", "enable", &key, "--period-days", "90"],
        b"",
    );
    let status = json(d, &["key", "rotation", "status", &key], b"");
    assert_shape(
        &status,
        "operations",
        "GetKeyRotationStatus",
        &["KeyRotationEnabled", "RotationPeriodInDays"],
    );
    assert_eq!(status["RotationPeriodInDays"], 90);
    let rotations = json(d, &["key", "rotation", "list", &key], b"");
    assert_shape(&rotations, "operations", "ListKeyRotations", &["Rotations"]);
    assert_shape(
        &rotations["Rotations"][0],
        "structures",
        "RotationsListEntry",
        &["RotationType", "RotationDate"],
    );
    json(d, &["key", "rotation", "disable", &key], b"");

    json(d, &["tag", "add", &key, "env=prod", "tier=1"], b"");
    json(d, &["tag", "remove", &key, "tier"], b"");
    let tags = json(d, &["tag", "list", &key], b"");
    assert_shape(&tags, "operations", "ListResourceTags", &["Tags"]);
    let names: Vec<&str> = tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["TagKey"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["env", "team"]);

    json(d, &["key", "disable", &key], b"");
    let refused = run_with(d, &["encrypt", "--key-id", &key], b"x", &[]);
    assert_eq!(code(&refused), 1, "a disabled key refuses");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("DisabledException"));
    json(d, &["key", "enable", &key], b"");
    let scheduled = json(
        d,
        &[
            "key",
            "schedule-deletion",
            &key,
            "--pending-window-days",
            "7",
        ],
        b"",
    );
    assert_shape(
        &scheduled,
        "operations",
        "ScheduleKeyDeletion",
        &["KeyId", "DeletionDate", "KeyState", "PendingWindowInDays"],
    );
    assert_eq!(scheduled["KeyState"], "PendingDeletion");
    let cancelled = json(d, &["key", "cancel-deletion", &key], b"");
    assert_shape(&cancelled, "operations", "CancelKeyDeletion", &["KeyId"]);
    assert_eq!(
        json(d, &["key", "describe", &key], b"")["KeyMetadata"]["KeyState"],
        "Disabled"
    );
}

#[test]
fn data_plane_through_files_and_pipes_raw_and_base64() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = json(d, &["key", "create"], b"")["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(d, &["alias", "create", "alias/app", &key], b"");
    let other = json(d, &["key", "create"], b"")["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();

    // stdin -> base64 on stdout -> stdin -> raw plaintext on stdout.
    let b64 = ok(
        d,
        &["encrypt", "--key-id", "alias/app", "--context", "tenant=42"],
        b"card 4111",
    );
    assert!(b64.iter().all(|b| b.is_ascii()), "base64 on a terminal");
    let plain = ok(d, &["decrypt", "--context", "tenant=42"], &b64);
    assert_eq!(plain, b"card 4111");
    let wrong = run_with(d, &["decrypt", "--context", "tenant=43"], &b64, &[]);
    assert_eq!(code(&wrong), 1);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("InvalidCiphertextException"));

    // Files, raw.
    std::fs::write(d.join("in.bin"), [0u8, 1, 2, 255]).unwrap();
    ok(
        d,
        &[
            "encrypt", "--key-id", &key, "--in", "in.bin", "--out", "blob.bin",
        ],
        b"",
    );
    let blob = std::fs::read(d.join("blob.bin")).unwrap();
    assert_eq!(blob[0], 1, "a raw blob starts with its format version");
    ok(d, &["decrypt", "--in", "blob.bin", "--out", "out.bin"], b"");
    assert_eq!(std::fs::read(d.join("out.bin")).unwrap(), [0u8, 1, 2, 255]);

    // JSON responses carry base64, with the service's fields.
    let sealed = json(d, &["encrypt", "--key-id", &key], b"hello");
    assert_shape(
        &sealed,
        "operations",
        "Encrypt",
        &["CiphertextBlob", "KeyId", "EncryptionAlgorithm"],
    );
    let blob_b64 = sealed["CiphertextBlob"].as_str().unwrap().to_owned();
    let opened = json(d, &["decrypt"], blob_b64.as_bytes());
    assert_shape(
        &opened,
        "operations",
        "Decrypt",
        &["Plaintext", "KeyId", "KeyMaterialId"],
    );
    assert_eq!(opened["Plaintext"], "aGVsbG8=");
    let moved = json(
        d,
        &[
            "re-encrypt",
            "--destination-key-id",
            &other,
            "--destination-context",
            "a=b",
        ],
        blob_b64.as_bytes(),
    );
    assert_shape(
        &moved,
        "operations",
        "ReEncrypt",
        &["CiphertextBlob", "SourceKeyId", "KeyId"],
    );
    let back = ok(
        d,
        &["decrypt", "--key-id", &other, "--context", "a=b"],
        moved["CiphertextBlob"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(back, b"hello");
    let incorrect = run_with(
        d,
        &["decrypt", "--key-id", &key, "--context", "a=b"],
        moved["CiphertextBlob"].as_str().unwrap().as_bytes(),
        &[],
    );
    assert_eq!(code(&incorrect), 1);

    // Data keys: JSON, and raw files (the plaintext one private).
    let dk = json(
        d,
        &["generate-data-key", "--key-id", &key, "--context", "f=1"],
        b"",
    );
    assert_shape(
        &dk,
        "operations",
        "GenerateDataKey",
        &["CiphertextBlob", "Plaintext", "KeyId", "KeyMaterialId"],
    );
    let no_plain = json(
        d,
        &[
            "generate-data-key",
            "--key-id",
            &key,
            "--without-plaintext",
            "--number-of-bytes",
            "16",
        ],
        b"",
    );
    assert_shape(
        &no_plain,
        "operations",
        "GenerateDataKeyWithoutPlaintext",
        &["CiphertextBlob", "KeyId"],
    );
    ok(
        d,
        &[
            "generate-data-key",
            "--key-id",
            &key,
            "--plaintext-out",
            "dk.key",
            "--ciphertext-out",
            "dk.enc",
        ],
        b"",
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.join("dk.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    ok(d, &["decrypt", "--in", "dk.enc", "--out", "dk.check"], b"");
    assert_eq!(
        std::fs::read(d.join("dk.key")).unwrap(),
        std::fs::read(d.join("dk.check")).unwrap()
    );
    assert_eq!(std::fs::read(d.join("dk.key")).unwrap().len(), 32);

    let random = json(d, &["generate-random", "--number-of-bytes", "24"], b"");
    assert_shape(&random, "operations", "GenerateRandom", &["Plaintext"]);
    assert_eq!(random["Plaintext"].as_str().unwrap().len(), 32);
}

#[test]
fn exit_codes_distinguish_usage_not_found_access_refused_and_internal() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Not found: no store yet.
    let out = run(d, &["key", "list"]);
    assert_eq!(code(&out), 3, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("store init"));
    store(d);
    // Usage: clap errors and invalid parameters.
    assert_eq!(code(&run(d, &["key", "frobnicate"])), 2);
    assert_eq!(code(&run(d, &["encrypt"])), 2);
    assert_eq!(
        code(&run(d, &["key", "create", "--key-spec", "AES_512"])),
        2
    );
    assert_eq!(
        code(&run(
            d,
            &[
                "key",
                "schedule-deletion",
                "alias/x",
                "--pending-window-days",
                "3"
            ]
        )),
        2
    );
    assert_eq!(code(&run(d, &["key", "schedule-deletion", "alias/x"])), 3);
    assert_eq!(
        code(&run(
            d,
            &["encrypt", "--key-id", "x", "--context", "no-equals"]
        )),
        2
    );
    // Not found: an unknown key, in JSON with the service's error shape.
    let out = run(
        d,
        &[
            "--json",
            "key",
            "describe",
            "0b5c6d7e-0000-4000-8000-000000000000",
        ],
    );
    assert_eq!(code(&out), 3);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["__type"], "NotFoundException");
    // The engine's message, as the service words it (issue 17).
    let message = err["message"].as_str().unwrap();
    assert!(
        message.starts_with("Key 'arn:aws:kms:")
            && message.ends_with(":key/0b5c6d7e-0000-4000-8000-000000000000' does not exist"),
        "{message}"
    );
    // Access: a wrong root key, and a key file others may read.
    let wrong = run_with(
        d,
        &["key", "list"],
        b"",
        &[(
            "KEYPLANE_ROOT_KEY",
            "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
        )],
    );
    assert_eq!(
        code(&wrong),
        4,
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let key_file = d.join("keyplane-data/root.key");
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = run(d, &["key", "list"]);
    assert_eq!(code(&out), 4);
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // Internal: a damaged store file.
    let db = d.join("keyplane-data/keyplane.db");
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
    let out = run(d, &["key", "list"]);
    assert_eq!(code(&out), 5, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}

#[test]
fn the_data_directory_comes_from_the_flag_then_keyplane_home_then_the_default() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["store", "init"], b"");
    assert!(
        d.join("keyplane-data/keyplane.db").exists(),
        "default ./keyplane-data"
    );
    let home = d.join("home");
    let out = run_with(
        d,
        &["store", "init"],
        b"",
        &[("KEYPLANE_HOME", home.to_str().unwrap())],
    );
    assert!(out.status.success());
    assert!(home.join("keyplane.db").exists(), "KEYPLANE_HOME");
    let flag = d.join("flag");
    let out = run_with(
        d,
        &["--data-dir", flag.to_str().unwrap(), "store", "init"],
        b"",
        &[("KEYPLANE_HOME", home.to_str().unwrap())],
    );
    assert!(out.status.success());
    assert!(flag.join("keyplane.db").exists(), "--data-dir wins");
    assert_eq!(
        code(&run(d, &["store", "init"])),
        1,
        "AlreadyExists is a refusal"
    );
}

#[test]
fn store_verify_backup_restore_and_root_key_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let key = json(d, &["key", "create"], b"")["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = ok(d, &["encrypt", "--key-id", &key], b"kept");
    let verify = json(d, &["store", "verify"], b"");
    assert_eq!(verify["CopiesChecked"], 2);
    assert_eq!(verify["CopiesGood"], 2);
    let backup = json(d, &["store", "backup", "b1.db"], b"");
    assert_eq!(backup["Keys"], 1);
    ok(d, &["key", "create"], b"");
    let restored = json(d, &["store", "restore", "b1.db"], b"");
    assert_eq!(restored["GenerationsRolledBack"], 1);
    assert_eq!(
        json(d, &["key", "list"], b"")["Keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let old_key = std::fs::read(d.join("keyplane-data/root.key")).unwrap();
    let rotated = json(d, &["store", "rotate-root-key"], b"");
    assert_eq!(rotated["VersionsRewrapped"], 1);
    assert_ne!(
        std::fs::read(d.join("keyplane-data/root.key")).unwrap(),
        old_key
    );
    assert_eq!(ok(d, &["decrypt"], &blob), b"kept");
    let events = String::from_utf8(ok(d, &["store", "events"], b"")).unwrap();
    assert!(
        events.contains("restored") && events.contains("root-key-rotated"),
        "{events}"
    );
    let human = String::from_utf8(ok(d, &["store", "verify"], b"")).unwrap();
    assert!(
        human.contains("OK: every copy of every key version is good"),
        "{human}"
    );
}

#[test]
fn a_passphrase_store_opens_only_with_its_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let with = |pass: &str, args: &[&str]| {
        let mut all = vec!["--passphrase-env", "PASS"];
        all.extend_from_slice(args);
        run_with(d, &all, b"", &[("PASS", pass)])
    };
    let init = with(
        "correct horse",
        &[
            "store",
            "init",
            "--argon2-memory-mib",
            "1",
            "--argon2-iterations",
            "1",
        ],
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(
        !d.join("keyplane-data/root.key").exists(),
        "no key file for a passphrase store"
    );
    assert!(with("correct horse", &["key", "create"]).status.success());
    let wrong = with("battery staple", &["key", "list"]);
    assert_eq!(code(&wrong), 4);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    let without = run(d, &["key", "list"]);
    assert_eq!(
        code(&without),
        4,
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    assert!(String::from_utf8_lossy(&without.stderr).contains("passphrase"));
}

#[test]
fn the_demo_runs_the_main_job_on_the_default_store() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(
        tmp.path(),
        &["demo", "--data-mib", "1", "--seconds", "0.05"],
        b"",
    );
    let text = String::from_utf8(out).unwrap();
    for step in [
        "[1] created a store",
        "[2] CreateKey",
        "[3] GenerateDataKey",
        "[4] reopened",
        "[5] RotateKeyOnDemand",
        "[6]",
        "ops/s",
        "[7]",
        "all steps succeeded",
    ] {
        assert!(text.contains(step), "demo output lacks {step}:\n{text}");
    }
    assert!(tmp.path().join("keyplane-data/keyplane.db").exists());
    // A second run reuses the store and repoints the alias.
    let again = String::from_utf8(ok(
        tmp.path(),
        &["demo", "--data-mib", "1", "--seconds", "0.05"],
        b"",
    ))
    .unwrap();
    assert!(
        again.contains("[1] opened") && !again.contains("created a store"),
        "{again}"
    );
}

#[test]
fn bench_runs_the_harness_in_memory_and_on_the_store() {
    build_bench_program();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let quick = [
        "--batch",
        "10",
        "--size",
        "64",
        "--duration",
        "20ms",
        "--warmup",
        "5ms",
        "--repeats",
        "1",
        "--quiet",
    ];
    let mut args = vec!["bench", "--workload", "encrypt"];
    args.extend_from_slice(&quick);
    let report = json(d, &args, b"");
    assert!(
        !report["points"].as_array().expect("points").is_empty(),
        "{report}"
    );
    // On the data directory's store: its keys live there afterwards.
    store(d);
    let mut args = vec!["bench", "--durable", "--workload", "encrypt"];
    args.extend_from_slice(&quick);
    json(d, &args, b"");
    let aliases = json(d, &["alias", "list"], b"");
    assert!(
        aliases["Aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["AliasName"]
                .as_str()
                .unwrap()
                .starts_with("alias/keyplane-bench/")),
        "{aliases}"
    );
    fails(
        &run(d, &["bench", "--workload", "nonsense"]),
        2,
        "bad workload",
    );
}

#[test]
fn bench_many_keys_fills_the_store_and_times_its_load() {
    build_bench_program();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    store(d);
    let report = json(
        d,
        &[
            "bench",
            "--durable",
            "--workload",
            "many-keys",
            "--key-counts",
            "30,12",
            "--quiet",
        ],
        b"",
    );
    let rows = report["rows"].as_array().expect("rows");
    let keys: Vec<u64> = rows.iter().map(|r| r["keys"].as_u64().unwrap()).collect();
    assert_eq!(keys, [12, 30], "{report}");
    for row in rows {
        assert!(
            row["load_ms"].as_f64().is_some(),
            "a durable store's load is timed: {row}"
        );
        assert!(row["create_us_per_key"].as_f64().unwrap() > 0.0, "{row}");
    }
    // The keys are in the store afterwards.
    let listed = json(d, &["key", "list", "--limit", "100"], b"");
    assert_eq!(listed["Keys"].as_array().unwrap().len(), 30, "{listed}");
}

#[test]
fn version_names_the_aws_lc_module_the_engine_runs_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = String::from_utf8(ok(tmp.path(), &["--version"], b"")).unwrap();
    let fips = cfg!(feature = "fips");
    assert!(out.starts_with("keyplane "), "{out}");
    assert!(
        out.contains(&format!("fips_mode: {fips}")),
        "the version line must report the engine's fips_mode ({fips}): {out}"
    );
    assert_eq!(out.contains("FIPS 140-3 module"), fips, "{out}");
}
