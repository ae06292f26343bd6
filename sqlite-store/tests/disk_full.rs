//! A full disk: on a small tmpfs, changes start failing with a clear "disk full" error, nothing
//! acknowledged is lost, the store opens and verifies on the still-full disk, and works again
//! once there is room.
//!
//! Mounting a tmpfs needs root (CI runs as root). Where it cannot be mounted this test fails, with
//! a message that says why: it never passes without having filled a disk.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use keyplane::store::KeyStore;
use keyplane::{CreateKeyRequest, KeyState};
use keyplane_testkit::succeeded;

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .expect("the `mount` command must exist to run the disk-full test");
        assert!(
            out.status.success(),
            "the disk-full test needs to mount a {size} tmpfs at {} and could not ({}): run the \
             tests as root (CI does), or in a container allowed to mount",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs {
            path: path.to_owned(),
        }
    }

    fn resize(&self, size: &str) {
        succeeded(
            Command::new("mount")
                .args(["-o", &format!("remount,size={size}")])
                .arg(&self.path),
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn a_full_disk_fails_writes_clearly_and_loses_nothing_acknowledged() {
    let outer = tempfile::tempdir().unwrap();
    let mount = Tmpfs::mount(outer.path(), "600k");
    let dir = mount.path.join("data");
    let store = init(&dir);
    let engine = common::engine(&store);

    // Keys with long descriptions fill the disk quickly.
    let description = "x".repeat(7000);
    let mut acknowledged = Vec::new();
    let mut blobs = Vec::new();
    let failure = loop {
        let created = engine.create_key(CreateKeyRequest {
            description: Some(description.clone()),
            ..Default::default()
        });
        match created {
            Ok(meta) => {
                blobs.push(encrypt(&engine, &meta.key_id, meta.key_id.as_bytes()));
                acknowledged.push(meta.key_id);
            }
            Err(e) => break e,
        }
        assert!(acknowledged.len() < 10_000, "the tmpfs never filled");
    };
    assert_eq!(failure.code(), "KMSInternalException", "{failure}");
    assert!(
        failure.message().starts_with("disk full"),
        "the error must say the disk is full: {failure}"
    );
    // Further changes fail the same way, and none of them half-happens.
    let generation = store.generation().unwrap();
    for _ in 0..3 {
        let err = engine
            .rotate_key_on_demand(&acknowledged[0])
            .expect_err("no room to rotate");
        assert!(err.message().starts_with("disk full"), "{err}");
    }
    assert_eq!(
        store.generation().unwrap(),
        generation,
        "failed changes left no trace"
    );
    drop(engine);
    drop(store);

    // The store opens and verifies on the still-full disk; everything acknowledged is there.
    let store = open(&dir);
    let report = store.verify(false).unwrap();
    assert!(report.is_pristine(), "{report:#?}");
    let contents = store.load().unwrap();
    assert_eq!(
        contents.keys.len(),
        acknowledged.len(),
        "exactly the acknowledged keys"
    );
    for record in &contents.keys {
        assert_eq!(record.state, KeyState::Enabled);
        assert_eq!(
            record.versions.len(),
            1,
            "the failed rotations added no version"
        );
    }
    drop(contents);
    let engine = common::engine(&store);
    for (key, blob) in acknowledged.iter().zip(&blobs) {
        assert_eq!(decrypt(&engine, blob).unwrap(), key.as_bytes());
    }

    // With room again, changes succeed.
    mount.resize("4m");
    engine.rotate_key_on_demand(&acknowledged[0]).unwrap();
    new_key(&engine);
    assert!(store.verify(false).unwrap().is_pristine());
    report_line(acknowledged.len(), &failure);
}

fn report_line(keys: usize, failure: &keyplane::Error) {
    report(&format!(
        "disk full: {keys} keys acknowledged on a 600 KiB tmpfs before ENOSPC; error: {}; after \
         reopening on the full disk: verify clean, all {keys} keys present, all their ciphertexts \
         decrypt; after growing the tmpfs: writes succeed",
        failure.message()
    ));
}
