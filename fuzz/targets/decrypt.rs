//! Fuzz target `decrypt`: full Decrypt through an engine, on arbitrary, mutated and spliced blobs.
//!
//! The engine holds a few keys (one rotated, one disabled, one HMAC key) and a set of genuine
//! blobs. Each input builds a blob (raw bytes, a genuine blob with bytes flipped, truncated or
//! extended, the header of one blob on the body of another, or a genuine header on arbitrary
//! bytes), picks an expected key, a context and an algorithm, and decrypts it singly, in a batch
//! and into a caller buffer. What must hold: Decrypt succeeds only for a genuine blob, byte for
//! byte, with its own context, and then returns its plaintext; every failure is a service error.

use std::sync::OnceLock;

use keyplane::{DecryptRequest, EncryptionAlgorithm, EncryptionContext, Engine, KeySpec, KeyUsage};

use crate::common::{alias_arn, check_error, fixture_engine, key_arn, new_key, Genuine, Input};

struct Fixture {
    engine: Engine,
    /// Identifiers an input may name as the expected key.
    identifiers: Vec<String>,
    contexts: Vec<EncryptionContext>,
    genuine: Vec<Genuine>,
}

fn context(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let engine = fixture_engine();
        let new_key = |spec, usage| new_key(&engine, spec, usage);
        let a = new_key(None, None);
        let b = new_key(None, None);
        let disabled = new_key(None, None);
        let hmac = new_key(Some(KeySpec::Hmac256), Some(KeyUsage::GenerateVerifyMac));
        engine.create_alias("alias/fuzz-a", &a).expect("alias");
        engine.create_alias("alias/fuzz-b", &b).expect("alias");
        let contexts = vec![
            context(&[("tenant", "42")]),
            context(&[("tenant", "43")]),
            context(&[("a", "bc")]),
            context(&[("ab", "c")]),
            EncryptionContext::new(),
        ];
        let mut genuine = Vec::new();
        let mut seal = |key: &str, plaintext: &[u8], context: Option<&EncryptionContext>| {
            genuine.push(Genuine::seal(&engine, key, plaintext, context));
        };
        seal(&a, b"hello", None);
        seal(&a, b"tenant data", Some(&contexts[0]));
        seal(&b, &[0u8; 64], Some(&contexts[2]));
        seal(&disabled, b"before it was disabled", None);
        engine.rotate_key_on_demand(&a).expect("rotate");
        seal(&a, b"after rotation", Some(&contexts[3]));
        seal(&b, &[0xA5; 4096], None);
        engine.disable_key(&disabled).expect("disable");
        let identifiers = vec![
            a.clone(),
            key_arn(&a),
            "alias/fuzz-a".to_string(),
            alias_arn("alias/fuzz-a"),
            b.clone(),
            "alias/fuzz-b".to_string(),
            disabled,
            hmac,
            "alias/missing".to_string(),
            "00000000-0000-4000-8000-000000000000".to_string(),
            "arn:aws:kms:eu-west-1:111122223333:alias/fuzz-a".to_string(),
            "arn:aws:kms".to_string(),
        ];
        Fixture {
            engine,
            identifiers,
            contexts,
            genuine,
        }
    })
}

/// Builds the blob an input describes.
fn blob(input: &mut Input<'_>, genuine: &[Genuine]) -> Vec<u8> {
    match input.byte() % 5 {
        // Raw bytes.
        0 => input.rest().to_vec(),
        // A genuine blob with bytes changed.
        1 => {
            let mut blob = input.choose(genuine).blob.clone();
            for _ in 0..=input.below(4) {
                let at = input.below(blob.len());
                blob[at] ^= input.byte();
            }
            blob
        }
        // A genuine blob cut or extended.
        2 => {
            let mut blob = input.choose(genuine).blob.clone();
            if input.flag() {
                blob.truncate(input.below(blob.len() + 1));
            } else {
                blob.extend_from_slice(input.short_bytes());
            }
            blob
        }
        // The header of one genuine blob on the body and tag of another.
        3 => {
            let head = &input.choose(genuine).blob;
            let tail = &input.choose(genuine).blob;
            let cut = keyplane::ciphertext::HEADER_LEN;
            let mut blob = head[..cut].to_vec();
            blob.extend_from_slice(&tail[cut..]);
            blob
        }
        // A genuine header on arbitrary bytes.
        _ => {
            let mut blob = input.choose(genuine).blob[..keyplane::ciphertext::HEADER_LEN].to_vec();
            blob.extend_from_slice(input.rest());
            blob
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let f = fixture();
    let mut input = Input::new(data);
    let key_choice = input.below(f.identifiers.len() + 2);
    let context_choice = input.below(f.contexts.len() + 1);
    let algorithm = match input.byte() % 4 {
        0 => None,
        1 => Some(EncryptionAlgorithm::SymmetricDefault),
        2 => Some(EncryptionAlgorithm::RsaesOaepSha256),
        _ => Some(EncryptionAlgorithm::Sm2Pke),
    };
    let garbage_key = input.short_string();
    let blob = blob(&mut input, &f.genuine);

    let key_id = match key_choice {
        0 => None,
        1 => Some(garbage_key.as_str()),
        n => Some(f.identifiers[n - 2].as_str()),
    };
    let context = f.contexts.get(context_choice);
    let request = DecryptRequest {
        ciphertext_blob: &blob,
        key_id,
        encryption_context: context,
        encryption_algorithm: algorithm,
    };

    let single = f.engine.decrypt(&request);
    let matching = f.genuine.iter().find(|g| g.blob == blob);
    match &single {
        Ok(opened) => {
            let g = matching.expect("Decrypt accepted a blob the engine never produced");
            assert_eq!(opened.plaintext.expose(), &g.plaintext[..]);
            let empty = EncryptionContext::new();
            assert_eq!(
                context.unwrap_or(&empty),
                g.context.as_ref().unwrap_or(&empty),
                "Decrypt accepted another encryption context"
            );
        }
        Err(e) => check_error(e),
    }

    // The batch and caller-buffer paths agree with the single call.
    let batch = f.engine.decrypt_batch(&[request, request]);
    assert_eq!(batch.len(), 2);
    for item in &batch {
        match (item, &single) {
            (Ok(p), Ok(s)) => assert_eq!(p.expose(), s.plaintext.expose()),
            (Err(a), Err(b)) => assert_eq!(a.code(), b.code()),
            (a, b) => panic!(
                "batch and single Decrypt disagree: {:?} vs {:?}",
                a.as_ref().map(|_| ()),
                b.as_ref().map(|_| ())
            ),
        }
    }
    let capacity = input.below(blob.len() + 2);
    let mut buffer = vec![0u8; capacity];
    let into = f
        .engine
        .decrypt_batch_into(&[request], &mut [&mut buffer[..]]);
    match (into.get(0).expect("one result per item"), &single) {
        (Ok(n), Ok(s)) => assert_eq!(&buffer[..n], s.plaintext.expose()),
        (Ok(_), Err(e)) => panic!("decrypt_batch_into accepted what Decrypt refused: {e}"),
        (Err(e), _) => check_error(e),
    }
}
