//! Fuzz target `data_keys`: GenerateDataKey(WithoutPlaintext), ReEncrypt and GenerateRandom,
//! single and batched, with hostile inputs.
//!
//! The engine holds keys of every kind a request might wrongly name (symmetric, disabled,
//! pending deletion, HMAC, RSA, ECC signing) and aliases. Inputs choose key identifiers (real ones
//! in every form, missing ones, malformed ARNs, arbitrary strings), key specs and lengths
//! (including 0, 1025 and `usize::MAX`), contexts, algorithms and source blobs (genuine,
//! mutated or arbitrary). What must hold: a data key is as long as asked and decrypts from its
//! blob under its context; ReEncrypt succeeds only for a genuine blob with its own context, and
//! its result decrypts to the same plaintext; GenerateRandom returns exactly the bytes asked;
//! batches agree with single calls item by item; every failure is a service error.

use std::sync::OnceLock;

use keyplane::{
    DataKeySpec, DecryptRequest, EncryptionAlgorithm, EncryptionContext, Engine,
    GenerateDataKeyRequest, KeySpec, KeyUsage, ReEncryptRequest,
};

use crate::common::{alias_arn, check_error, fixture_engine, key_arn, new_key, Genuine, Input};

struct Fixture {
    engine: Engine,
    identifiers: Vec<String>,
    /// The RSA key's id (its ciphertexts decrypt only with it named).
    rsa: String,
    contexts: Vec<EncryptionContext>,
    genuine: Vec<Genuine>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let engine = fixture_engine();
        let new_key = |spec, usage| new_key(&engine, spec, usage);
        let a = new_key(None, None);
        let b = new_key(None, None);
        let disabled = new_key(None, None);
        let pending = new_key(None, None);
        let hmac = new_key(Some(KeySpec::Hmac384), Some(KeyUsage::GenerateVerifyMac));
        let rsa = new_key(Some(KeySpec::Rsa2048), Some(KeyUsage::EncryptDecrypt));
        let signing = new_key(Some(KeySpec::EccNistP256), Some(KeyUsage::SignVerify));
        engine.create_alias("alias/dk-a", &a).expect("alias");
        engine.create_alias("alias/dk-rsa", &rsa).expect("alias");
        let contexts: Vec<EncryptionContext> = vec![
            [("purpose".to_string(), "fuzz".to_string())].into(),
            [("purpose".to_string(), "fuzz2".to_string())].into(),
            EncryptionContext::new(),
        ];
        let mut genuine = Vec::new();
        for (key, plaintext, context) in [
            (&a, &b"data key one"[..], Some(&contexts[0])),
            (&b, &[7u8; 32][..], None),
            (&disabled, &b"disabled later"[..], None),
            (&pending, &b"pending deletion later"[..], Some(&contexts[1])),
        ] {
            genuine.push(Genuine::seal(&engine, key, plaintext, context));
        }
        engine.disable_key(&disabled).expect("disable");
        engine
            .schedule_key_deletion(&pending, Some(7))
            .expect("schedule deletion");
        let identifiers = vec![
            a.clone(),
            key_arn(&a),
            "alias/dk-a".into(),
            alias_arn("alias/dk-a"),
            b,
            disabled,
            pending,
            hmac,
            rsa.clone(),
            "alias/dk-rsa".into(),
            signing,
            "alias/none".into(),
            "alias/aws/s3".into(),
            "11111111-2222-4333-8444-555555555555".into(),
            "arn:aws:kms:us-east-1:111122223333:key/not-a-uuid".into(),
            "arn:aws:kms:us-east-1:999999999999:alias/dk-a".into(),
            "arn:aws:s3:::bucket".into(),
            String::new(),
            "x".repeat(2049),
        ];
        Fixture {
            engine,
            identifiers,
            rsa,
            contexts,
            genuine,
        }
    })
}

fn identifier<'a>(input: &mut Input<'_>, f: &'a Fixture, scratch: &'a mut String) -> &'a str {
    let n = input.below(f.identifiers.len() + 1);
    if n == f.identifiers.len() {
        *scratch = input.short_string();
        scratch
    } else {
        &f.identifiers[n]
    }
}

fn context<'a>(input: &mut Input<'_>, f: &'a Fixture) -> Option<&'a EncryptionContext> {
    let n = input.below(f.contexts.len() + 1);
    f.contexts.get(n)
}

fn data_key_request<'a>(
    input: &mut Input<'_>,
    f: &'a Fixture,
    scratch: &'a mut String,
) -> GenerateDataKeyRequest<'a> {
    let key_spec = match input.byte() % 3 {
        0 => None,
        1 => Some(DataKeySpec::Aes256),
        _ => Some(DataKeySpec::Aes128),
    };
    let number_of_bytes = match input.byte() % 6 {
        0 | 1 => None,
        2 => Some(0),
        3 => Some(usize::MAX),
        _ => Some(usize::from(input.u16()) % 1100),
    };
    let context = context(input, f);
    GenerateDataKeyRequest {
        key_id: identifier(input, f, scratch),
        encryption_context: context,
        key_spec,
        number_of_bytes,
    }
}

fn expected_len(request: &GenerateDataKeyRequest<'_>) -> Option<usize> {
    match (request.key_spec, request.number_of_bytes) {
        (Some(DataKeySpec::Aes256), None) => Some(32),
        (Some(DataKeySpec::Aes128), None) => Some(16),
        (None, Some(n)) if (1..=1024).contains(&n) => Some(n),
        _ => None,
    }
}

/// Decrypts `blob` as its key needs: symmetric blobs name their key; RSA ciphertexts need the
/// RSA key named, with an OAEP algorithm.
fn open(
    f: &Fixture,
    blob: &[u8],
    context: Option<&EncryptionContext>,
    rsa_algorithm: Option<EncryptionAlgorithm>,
) -> Vec<u8> {
    let mut request = DecryptRequest::new(blob);
    request.encryption_context = context;
    if let Some(algorithm) = rsa_algorithm {
        request.key_id = Some(&f.rsa);
        request.encryption_algorithm = Some(algorithm);
    }
    f.engine
        .decrypt(&request)
        .expect("a blob the engine returned decrypts")
        .plaintext
        .expose()
        .to_vec()
}

fn algorithm(input: &mut Input<'_>) -> EncryptionAlgorithm {
    match input.byte() % 6 {
        0 => EncryptionAlgorithm::RsaesOaepSha1,
        1 => EncryptionAlgorithm::RsaesOaepSha256,
        2 => EncryptionAlgorithm::Sm2Pke,
        _ => EncryptionAlgorithm::SymmetricDefault,
    }
}

fn generate(input: &mut Input<'_>, f: &Fixture, with_plaintext: bool) {
    let mut scratch = String::new();
    let request = data_key_request(input, f, &mut scratch);
    let expected = expected_len(&request);
    if with_plaintext {
        match f.engine.generate_data_key(&request) {
            Ok(response) => {
                let len = expected.expect("a data key of an invalid length was made");
                assert_eq!(response.plaintext.len(), len);
                assert_eq!(response.ciphertext_blob.len(), len + 82);
                let opened = open(
                    f,
                    &response.ciphertext_blob,
                    request.encryption_context,
                    None,
                );
                assert_eq!(&opened[..], response.plaintext.expose());
            }
            Err(e) => check_error(&e),
        }
    } else {
        match f.engine.generate_data_key_without_plaintext(&request) {
            Ok(response) => {
                let len = expected.expect("a data key of an invalid length was made");
                let opened = open(
                    f,
                    &response.ciphertext_blob,
                    request.encryption_context,
                    None,
                );
                assert_eq!(opened.len(), len);
            }
            Err(e) => check_error(&e),
        }
    }
}

fn re_encrypt(input: &mut Input<'_>, f: &Fixture) {
    let genuine = input.choose(&f.genuine);
    let mut blob = genuine.blob.clone();
    match input.byte() % 4 {
        0 => {
            let at = input.below(blob.len());
            blob[at] ^= input.byte() | 1;
        }
        1 => blob = input.short_bytes().to_vec(),
        _ => {}
    }
    let (mut s1, mut s2) = (String::new(), String::new());
    let source_key_id = if input.flag() {
        Some(identifier(input, f, &mut s1))
    } else {
        None
    };
    let source_context = context(input, f);
    let source_algorithm = if input.flag() {
        Some(algorithm(input))
    } else {
        None
    };
    let destination_key_id = identifier(input, f, &mut s2);
    let destination_context = context(input, f);
    let destination_algorithm = algorithm(input);
    let request = ReEncryptRequest {
        ciphertext_blob: &blob,
        source_key_id,
        source_encryption_context: source_context,
        source_encryption_algorithm: source_algorithm,
        destination_key_id,
        destination_encryption_context: destination_context,
        destination_encryption_algorithm: destination_algorithm,
    };
    let single = f.engine.re_encrypt(&request);
    match &single {
        Ok(response) => {
            assert_eq!(blob, genuine.blob, "ReEncrypt accepted a forged blob");
            let empty = EncryptionContext::new();
            assert_eq!(
                source_context.unwrap_or(&empty),
                genuine.context.as_ref().unwrap_or(&empty),
                "ReEncrypt accepted another source context"
            );
            let rsa = (destination_algorithm != EncryptionAlgorithm::SymmetricDefault)
                .then_some(destination_algorithm);
            let opened = open(f, &response.ciphertext_blob, destination_context, rsa);
            assert_eq!(opened, genuine.plaintext);
        }
        Err(e) => check_error(e),
    }
    let batch = f.engine.re_encrypt_batch(&[request]);
    assert_eq!(batch.len(), 1);
    match (&batch[0], &single) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code()),
        _ => panic!("batch and single ReEncrypt disagree"),
    }
}

fn batches(input: &mut Input<'_>, f: &Fixture) {
    let mut scratch: Vec<String> = vec![String::new(); 4];
    let count = input.below(5);
    let mut requests = Vec::new();
    for s in scratch.iter_mut().take(count) {
        requests.push(data_key_request(input, f, s));
    }
    let results = f.engine.generate_data_key_batch(&requests);
    assert_eq!(results.len(), requests.len());
    for (request, result) in requests.iter().zip(&results) {
        match result {
            Ok(key) => {
                let len = expected_len(request).expect("an invalid data key length was made");
                assert_eq!(key.plaintext.len(), len);
                let opened = open(f, &key.ciphertext_blob, request.encryption_context, None);
                assert_eq!(&opened[..], key.plaintext.expose());
            }
            Err(e) => check_error(e),
        }
    }
    let without = f
        .engine
        .generate_data_key_without_plaintext_batch(&requests);
    assert_eq!(without.len(), requests.len());
    for (a, b) in without.iter().zip(&results) {
        assert_eq!(a.is_ok(), b.is_ok(), "the two data key batches disagree");
    }

    let sizes: Vec<usize> = (0..input.below(5))
        .map(|_| match input.byte() % 4 {
            0 => 0,
            1 => 1025,
            _ => usize::from(input.u16()) % 1030,
        })
        .collect();
    let random = f.engine.generate_random_batch(&sizes);
    assert_eq!(random.len(), sizes.len());
    for (size, result) in sizes.iter().zip(&random) {
        match result {
            Ok(bytes) => {
                assert!((1..=1024).contains(size));
                assert_eq!(bytes.len(), *size);
            }
            Err(e) => {
                assert!(
                    !(1..=1024).contains(size),
                    "GenerateRandom refused {size}: {e}"
                );
                check_error(e);
            }
        }
    }
    let n = match input.byte() % 3 {
        0 => usize::MAX,
        _ => usize::from(input.u16()) % 1030,
    };
    match f.engine.generate_random(n) {
        Ok(bytes) => assert_eq!(bytes.len(), n),
        Err(e) => {
            assert!(!(1..=1024).contains(&n));
            check_error(&e);
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let f = fixture();
    let mut input = Input::new(data);
    while !input.is_empty() {
        match input.byte() % 4 {
            0 => generate(&mut input, f, true),
            1 => generate(&mut input, f, false),
            2 => re_encrypt(&mut input, f),
            _ => batches(&mut input, f),
        }
    }
}
