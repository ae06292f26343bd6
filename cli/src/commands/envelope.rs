//! `encrypt-file` and `decrypt-file`: envelope encryption of files and streams in the AWS
//! Encryption SDK's message format, with keyplane keys (as KMS keys) and raw AES and RSA wrapping
//! keys. Input and output stream through the engine's frame pipeline, so any size works in
//! bounded memory; large inputs show a progress line and the throughput on standard error.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use keyplane::envelope::{
    AlgorithmSuite, CommitmentPolicy, Decryptor, Encryptor, EnvelopeConfig, Keyring, KmsKeyring,
    RawAesKeyring, RawRsaKeyring, RsaPadding, SignedRelease,
};
use keyplane::Error;
use zeroize::Zeroizing;

use crate::args::{DecryptFileArgs, EncryptFileArgs, EnvelopeArgs};
use crate::context::{CliEngine, Context};
use crate::io::{io_failure, pairs};
use crate::outcome::Failure;

/// Inputs at least this large show progress without `--progress`.
const PROGRESS_THRESHOLD: u64 = 64 << 20;
/// Bytes moved per read.
const CHUNK: usize = 1 << 20;

fn is_std(path: Option<&Path>) -> bool {
    path.is_none_or(|p| p == Path::new("-"))
}

fn read_key_file(path: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(|e| io_failure("read", Path::new(path), e))?);
    Ok(bytes)
}

fn aes_key_bytes(raw: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, Failure> {
    if matches!(raw.len(), 16 | 24 | 32) {
        return Ok(raw);
    }
    let text = std::str::from_utf8(&raw).map_err(|_| {
        Failure::usage("a raw AES key file holds 16, 24 or 32 bytes or their base64")
    })?;
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| {
                Failure::usage("a raw AES key file holds 16, 24 or 32 bytes or their base64")
            })?,
    );
    Ok(decoded)
}

/// The engine the KMS keyrings use, kept open while they are (none without KMS keyrings).
type KeyringEngine = Option<CliEngine>;

/// The keyrings named on the command line, and the engine the KMS ones use.
fn keyrings(
    ctx: &Context,
    args: &EnvelopeArgs,
    discovery: bool,
    encrypting: bool,
) -> Result<(Vec<Arc<dyn Keyring>>, KeyringEngine), Failure> {
    let mut out: Vec<Arc<dyn Keyring>> = Vec::new();
    let mut engine = None;
    if !args.key_ids.is_empty() || discovery {
        let opened = ctx.engine()?;
        for key in &args.key_ids {
            out.push(Arc::new(KmsKeyring::new(&opened, key)?));
        }
        if discovery {
            out.push(Arc::new(KmsKeyring::discovery(&opened)));
        }
        engine = Some(opened);
    }
    for spec in &args.raw_aes {
        let parts: Vec<&str> = spec.splitn(3, ',').collect();
        let [namespace, name, file] = parts[..] else {
            return Err(Failure::usage(format!(
                "--raw-aes takes NAMESPACE,NAME,FILE, not {spec:?}"
            )));
        };
        let key = aes_key_bytes(read_key_file(file)?)?;
        out.push(Arc::new(RawAesKeyring::new(namespace, name, &key)?));
    }
    for spec in &args.raw_rsa {
        let parts: Vec<&str> = spec.splitn(4, ',').collect();
        let [namespace, name, padding, file] = parts[..] else {
            return Err(Failure::usage(format!(
                "--raw-rsa takes NAMESPACE,NAME,PADDING,FILE, not {spec:?}"
            )));
        };
        let padding = RsaPadding::from_name(padding).ok_or_else(|| {
            Failure::usage(format!(
                "unknown RSA padding {padding:?}; use RSA_PKCS1 or RSA_OAEP_SHA{{1,256,384,512}}_MGF1"
            ))
        })?;
        let bytes = read_key_file(file)?;
        let is_public = std::str::from_utf8(&bytes).is_ok_and(|t| t.contains("PUBLIC KEY"));
        let keyring = if is_public {
            if !encrypting {
                return Err(Failure::usage(format!(
                    "{file} is a public key; decryption needs the private key"
                )));
            }
            RawRsaKeyring::with_public_key(namespace, name, padding, &bytes)?
        } else {
            RawRsaKeyring::with_private_key(namespace, name, padding, &bytes)?
        };
        out.push(Arc::new(keyring));
    }
    if out.is_empty() {
        return Err(Failure::usage(
            "name at least one key: --key-id, --raw-aes or --raw-rsa (or --discovery to decrypt)",
        ));
    }
    Ok((out, engine))
}

fn config(args: &EnvelopeArgs) -> Result<EnvelopeConfig, Failure> {
    let mut config = EnvelopeConfig::default();
    if let Some(policy) = &args.commitment_policy {
        config.commitment_policy = CommitmentPolicy::from_name(policy)
            .ok_or_else(|| Failure::usage(format!("unknown commitment policy {policy:?}")))?;
    }
    config.max_encrypted_data_keys = args.max_encrypted_data_keys;
    if let Some(threads) = args.threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| Failure::usage(format!("could not start {threads} threads: {e}")))?;
        config.pool = Some(Arc::new(pool));
    }
    Ok(config)
}

fn open_input(path: Option<&Path>) -> Result<(Box<dyn Read>, Option<u64>), Failure> {
    if is_std(path) {
        return Ok((Box::new(std::io::stdin().lock()), None));
    }
    let path = path.unwrap_or(Path::new("-"));
    let file = std::fs::File::open(path).map_err(|e| io_failure("read", path, e))?;
    let len = file.metadata().ok().map(|m| m.len());
    Ok((Box::new(file), len))
}

/// The output sink; a file output is removed again unless [`Output::keep`] is called.
struct Output {
    path: Option<PathBuf>,
    kept: bool,
}

impl Output {
    fn open(path: Option<&Path>) -> Result<(Output, Box<dyn Write>), Failure> {
        if is_std(path) {
            let out = Output {
                path: None,
                kept: true,
            };
            return Ok((
                out,
                Box::new(std::io::BufWriter::with_capacity(
                    CHUNK,
                    std::io::stdout().lock(),
                )),
            ));
        }
        let path = path.unwrap_or(Path::new("-")).to_path_buf();
        let file = std::fs::File::create(&path).map_err(|e| io_failure("write", &path, e))?;
        let out = Output {
            path: Some(path),
            kept: false,
        };
        Ok((
            out,
            Box::new(std::io::BufWriter::with_capacity(CHUNK, file)),
        ))
    }

    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let (false, Some(path)) = (self.kept, &self.path) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Counts bytes and prints a progress line now and then, and the throughput at the end.
struct Progress {
    verb: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last: Instant,
    shown: bool,
    tty: bool,
}

impl Progress {
    fn new(verb: &'static str, args: &EnvelopeArgs, total: Option<u64>) -> Progress {
        let large = total.is_none_or(|t| t >= PROGRESS_THRESHOLD);
        let now = Instant::now();
        Progress {
            verb,
            total,
            done: 0,
            started: now,
            last: now,
            shown: !args.quiet && (args.progress || large),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn rate(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        self.done as f64 / (1024.0 * 1024.0) / secs
    }

    fn add(&mut self, n: usize) {
        self.done += n as u64;
        if !self.shown || !self.tty || self.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        let mib = self.done as f64 / (1024.0 * 1024.0);
        match self.total.filter(|&t| t > 0) {
            Some(total) => eprint!(
                "\r{} {mib:.1} MiB ({:.0}%), {:.1} MiB/s   ",
                self.verb,
                100.0 * self.done as f64 / total as f64,
                self.rate()
            ),
            None => eprint!("\r{} {mib:.1} MiB, {:.1} MiB/s   ", self.verb, self.rate()),
        }
    }

    fn finish(&self) {
        if !self.shown {
            return;
        }
        if self.tty {
            eprint!("\r");
        }
        eprintln!(
            "{} {:.1} MiB in {:.2} s: {:.1} MiB/s",
            self.verb,
            self.done as f64 / (1024.0 * 1024.0),
            self.started.elapsed().as_secs_f64(),
            self.rate()
        );
    }
}

fn stream_failure(err: std::io::Error, what: &str) -> Failure {
    let engine_error = err.get_ref().is_some_and(|e| e.is::<Error>());
    if engine_error {
        Failure::from(keyplane::envelope::error_from_io(err))
    } else {
        io_failure(what, Path::new("the stream"), err)
    }
}

pub fn encrypt_file(ctx: &Context, args: EncryptFileArgs) -> Result<(), Failure> {
    let env = &args.envelope;
    let mut config = config(env)?;
    if let Some(suite) = &args.suite {
        config.suite = AlgorithmSuite::from_name(suite)
            .ok_or_else(|| Failure::usage(format!("unknown algorithm suite {suite:?}")))?;
    }
    if env.commitment_policy.is_none() && !config.suite.is_committing() {
        config.commitment_policy = CommitmentPolicy::ForbidEncryptAllowDecrypt;
    }
    config.frame_length = args.frame_length;
    let context = pairs(&env.context.context, "encryption context")?;
    let (keyrings, engine) = keyrings(ctx, env, false, true)?;
    if let (None, Some(engine)) = (&config.pool, &engine) {
        config.pool = Some(engine.worker_pool());
    }
    let (mut input, total) = open_input(env.input.as_deref())?;
    let (output, sink) = Output::open(env.output.as_deref())?;
    let mut encryptor = Encryptor::new(sink, &keyrings, &config, &context)?;
    let mut progress = Progress::new("encrypted", env, total);
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_failure("read", Path::new("the input"), e)),
        };
        encryptor
            .write_all(&buf[..n])
            .map_err(|e| stream_failure(e, "write"))?;
        progress.add(n);
    }
    encryptor.finish()?;
    output.keep();
    progress.finish();
    Ok(())
}

pub fn decrypt_file(ctx: &Context, args: DecryptFileArgs) -> Result<(), Failure> {
    let env = &args.envelope;
    let mut config = config(env)?;
    // A file output is removed again if anything fails, the signature included, so frames may
    // be written as they authenticate; standard output cannot be taken back, so a signed
    // message's plaintext is held until its signature verified (unless --release-unverified).
    if args.release_unverified || !is_std(env.output.as_deref()) {
        config.signed_release = SignedRelease::PerFrame;
    }
    if let Some(max) = args.max_buffered {
        config.max_buffered_plaintext = max;
    }
    let required = pairs(&env.context.context, "encryption context")?;
    let (keyrings, engine) = keyrings(ctx, env, args.discovery, false)?;
    if let (None, Some(engine)) = (&config.pool, &engine) {
        config.pool = Some(engine.worker_pool());
    }
    let (input, total) = open_input(env.input.as_deref())?;
    // The decryptor reads each frame's fields and ciphertext with exact reads, four per frame,
    // which unbuffered would each be a system call. Only ciphertext passes through this buffer:
    // encrypt-file reads its plaintext straight into its zeroized chunk.
    let input = std::io::BufReader::with_capacity(CHUNK, input);
    let mut decryptor = Decryptor::new(input, &keyrings, &config)?;
    let found = &decryptor.header().encryption_context;
    for (key, value) in &required {
        if found.get(key) != Some(value) {
            return Err(Failure::refused(
                "InvalidCiphertextException",
                format!(
                    "the message's encryption context does not have {key}={value}; it was not \
                     encrypted with the context you require"
                ),
            ));
        }
    }
    let (output, mut sink) = Output::open(env.output.as_deref())?;
    let mut progress = Progress::new("decrypted", env, total);
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        let n = match decryptor.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(stream_failure(e, "read")),
        };
        sink.write_all(&buf[..n])
            .map_err(|e| io_failure("write", Path::new("the output"), e))?;
        progress.add(n);
    }
    sink.flush()
        .map_err(|e| io_failure("write", Path::new("the output"), e))?;
    drop(sink);
    output.keep();
    progress.finish();
    Ok(())
}
