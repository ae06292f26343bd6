//! What every fuzz target shares: a reader that turns the fuzzer's bytes into choices, and the
//! checks that hold for every engine error.
//!
//! These files are compiled into the cargo-fuzz binaries (through `fuzz/src/lib.rs`) and into the
//! main workspace's stable replay tests (`engine/tests/fuzz_replay.rs`, and the server's and the
//! C ABI's `tests/fuzz_replay.rs` for the targets the engine cannot depend on), which replay every
//! committed corpus. So they use only `keyplane`, `serde_json`, `uuid` and the standard library
//! (and the crate a target is about), and refer to each other through `crate::common`.

use keyplane::{
    CreateKeyRequest, EncryptRequest, EncryptionContext, Engine, Error, KeySpec, KeyUsage,
};

/// The fuzzer's input, read front to back. Reading past the end gives zeroes and empty slices,
/// never a panic, so every input is a valid program for a target.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 once the input is used up).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// The next four bytes, big-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        if n <= 256 {
            usize::from(self.byte()) % n
        } else {
            usize::from(self.u16()) % n
        }
    }

    /// Whether the next byte is odd.
    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// One of `items` (which must not be empty).
    pub fn choose<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A byte string whose length is the next byte.
    pub fn short_bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.bytes(n)
    }

    /// A string whose length is the next byte (invalid UTF-8 replaced).
    pub fn short_string(&mut self) -> String {
        String::from_utf8_lossy(self.short_bytes()).into_owned()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Every error an engine call returns to hostile input is a service error, never an internal
/// one: `Internal` means an invariant broke.
#[track_caller]
pub fn check_error(error: &Error) {
    assert!(
        !matches!(error, Error::Internal(_)),
        "hostile input reached an internal error: {error}"
    );
    assert!(!error.message().is_empty(), "an error without a message");
}

/// A key ARN in the default scope (`us-east-1`, `111122223333`) for `id`.
pub fn key_arn(id: &str) -> String {
    format!("arn:aws:kms:us-east-1:111122223333:key/{id}")
}

/// The alias ARN of `alias` in the default scope.
pub fn alias_arn(alias: &str) -> String {
    format!("arn:aws:kms:us-east-1:111122223333:{alias}")
}

/// The engine of a target's fixture: one worker, so that every run of an input is the same.
pub fn fixture_engine() -> Engine {
    Engine::builder().worker_threads(1).build().expect("engine")
}

/// A new key in `engine` of `spec` and `usage` (`None`: the service's defaults); its id.
pub fn new_key(engine: &Engine, spec: Option<KeySpec>, usage: Option<KeyUsage>) -> String {
    engine
        .create_key(CreateKeyRequest {
            key_spec: spec,
            key_usage: usage,
            ..Default::default()
        })
        .expect("create key")
        .key_id
}

/// A ciphertext the engine made, with what it sealed: where the targets' mutations start.
pub struct Genuine {
    pub blob: Vec<u8>,
    pub plaintext: Vec<u8>,
    pub context: Option<EncryptionContext>,
}

impl Genuine {
    /// Encrypts `plaintext` under `key` (with `context`) and keeps what went in.
    pub fn seal(
        engine: &Engine,
        key: &str,
        plaintext: &[u8],
        context: Option<&EncryptionContext>,
    ) -> Genuine {
        let mut request = EncryptRequest::new(key, plaintext);
        request.encryption_context = context;
        Genuine {
            blob: engine.encrypt(&request).expect("encrypt").ciphertext_blob,
            plaintext: plaintext.to_vec(),
            context: context.cloned(),
        }
    }
}
