//! The log writer: a lock-free queue into one thread that commits records in groups.
//!
//! [`AuditLog::append`] serializes the event on the caller's thread and pushes the line onto a
//! bounded crossbeam channel (lock-free while it has room; when full, appends wait: back-pressure
//! rather than unbounded memory). One writer thread takes everything queued, numbers and chains
//! it, adds a digest when one is due, writes the group with one `write` and one `fdatasync`, and
//! only then marks the group's [`Ticket`]s durable and wakes their waiters. The writer hands the
//! serialization buffers back through a second channel, so a steady stream of appends reuses them
//! instead of allocating on one thread and freeing on another.
//!
//! Fail closed: if a write or `fdatasync` fails, the writer cuts the file back to its last
//! acknowledged length (best effort), stores the error, fails every ticket of that group and every
//! job still queued, and never writes again. Every later append fails at once with the same error.
//! A log that failed is reopened with [`AuditLog::open`] once the cause is fixed.
//!
//! One `AuditLog` per file: the writer owns the chain. Opening a path this process already has open
//! fails; two processes appending to one file (opened with [`AuditConfig::new`]) is not detected
//! and breaks the chain. Many processes share an audit directory ([`AuditConfig::directory`]):
//! each takes a segment of its own (see the segments module).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::chain::append_record_line;
use super::digest::{digest_line_hash, Digest, DigestSigner, DigestVerifier};
use super::record::{now_millis, rfc3339_millis, AuditEvent, UserIdentity};
use super::recover::TailState;
use super::segments::{self, recover_segment};
use super::AuditError;
use crate::fork::ProcessLock;
use crate::locked_memory::LockedBytes;

/// When a caller's request may be answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// After its record is on disk (`fdatasync` returned): [`Ticket::wait`] blocks until then.
    #[default]
    Synced,
    /// As soon as its record is queued: [`Ticket::wait`] returns at once unless the log has
    /// already failed. Records are still written and synced in groups; a crash can lose the last
    /// ones.
    Queued,
}

/// How a log is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// The log file (created if missing, continued if present), or with `directory` the audit
    /// directory.
    pub path: PathBuf,
    /// `path` is an audit directory: this process writes a segment of its own there (see
    /// [`AuditConfig::directory`]).
    pub directory: bool,
    /// The principal a segment's writer record names (the engine puts its account's root when
    /// none is given).
    pub principal: Option<UserIdentity>,
    /// The region a segment's writer record names (the engine puts its own when empty).
    pub region: String,
    /// When callers are released: [`Durability::Synced`] by default.
    pub durability: Durability,
    /// Write a digest after this many records since the last one (0: never by count).
    pub digest_every_records: u64,
    /// Write a digest when records are waiting for one and this long has passed since the last
    /// (zero: never by time).
    pub digest_every: Duration,
    /// Jobs the queue holds before appends wait for the writer.
    pub queue_capacity: usize,
    /// A group is written once it reaches this many bytes, even if more is queued.
    pub max_group_bytes: usize,
}

impl AuditConfig {
    /// Defaults: synced, a digest every 4096 records or every second, a queue of 65,536 jobs,
    /// groups of up to 4 MiB.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditConfig {
            path: path.into(),
            directory: false,
            principal: None,
            region: String::new(),
            durability: Durability::Synced,
            digest_every_records: 4096,
            digest_every: Duration::from_secs(1),
            queue_capacity: 1 << 16,
            max_group_bytes: 4 << 20,
        }
    }

    /// The same defaults, for the audit directory `dir` (created if missing): this process takes
    /// a segment `dir/segments/….log` of its own, and any number of processes write the
    /// directory at once. `dir/audit.log`, a log from before segments, is read, never continued.
    pub fn directory(dir: impl Into<PathBuf>) -> Self {
        AuditConfig {
            directory: true,
            ..AuditConfig::new(dir)
        }
    }
}

const PENDING: u8 = 0;
const DURABLE: u8 = 1;
const FAILED: u8 = 2;

/// The state of one append (or flush), set once by the writer.
#[derive(Debug)]
struct Completion(AtomicU8);

impl Completion {
    fn new() -> Arc<Self> {
        Arc::new(Completion(AtomicU8::new(PENDING)))
    }
}

/// What the log's handles and the writer share.
#[derive(Debug)]
struct Shared {
    /// The first write error; set once, never cleared.
    failure: OnceLock<AuditError>,
    /// The writer thread has exited.
    stopped: AtomicBool,
    /// Waiters sleep here; the writer notifies after each group.
    lock: Mutex<()>,
    woken: Condvar,
    /// The latest durable digest line.
    last_digest: Mutex<Option<String>>,
}

impl Shared {
    fn error(&self) -> AuditError {
        self.failure.get().cloned().unwrap_or(AuditError::Closed)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_all(&self) {
        let _guard = self.lock();
        self.woken.notify_all();
    }
}

/// The promise of one append: [`wait`](Ticket::wait) says when the caller may go on.
#[derive(Debug)]
pub struct Ticket {
    done: Arc<Completion>,
    shared: Arc<Shared>,
    durability: Durability,
}

impl Ticket {
    /// Blocks as the log's [`Durability`] says: under `Synced` until the record is durable, under
    /// `Queued` not at all. `Err` when the record cannot be made durable (the write error) or the
    /// log has already failed.
    pub fn wait(&self) -> Result<(), AuditError> {
        match self.durability {
            Durability::Synced => self.wait_durable(),
            Durability::Queued => match self.poll() {
                Some(Err(e)) => Err(e),
                _ => Ok(()),
            },
        }
    }

    /// Blocks until the record is durable, whatever the log's durability; `Err` with the write
    /// error when it never will be.
    pub fn wait_durable(&self) -> Result<(), AuditError> {
        if let Some(result) = self.poll() {
            return result;
        }
        let mut guard = self.shared.lock();
        loop {
            if let Some(result) = self.poll() {
                return result;
            }
            guard = self
                .shared
                .woken
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Whether the record is durable.
    pub fn is_durable(&self) -> bool {
        self.done.0.load(Ordering::Acquire) == DURABLE
    }

    /// The outcome if there is one yet.
    fn poll(&self) -> Option<Result<(), AuditError>> {
        match self.done.0.load(Ordering::Acquire) {
            DURABLE => Some(Ok(())),
            FAILED => Some(Err(self.shared.error())),
            _ => {
                if self.shared.failure.get().is_none()
                    && !self.shared.stopped.load(Ordering::Acquire)
                {
                    return None;
                }
                // The writer marks groups before it records a failure or stops: look again.
                if self.done.0.load(Ordering::Acquire) == DURABLE {
                    Some(Ok(()))
                } else {
                    Some(Err(self.shared.error()))
                }
            }
        }
    }
}

/// Serialized events sent back by the writer for reuse, so that a steady stream of appends does
/// not allocate (and free on another thread) a buffer per record.
const POOL_BUFFERS: usize = 4096;
/// Buffers larger than this are freed rather than pooled.
const POOL_MAX_BYTES: usize = 16 * 1024;

/// Work for the writer.
enum Job {
    /// One serialized event.
    One(Vec<u8>, Arc<Completion>),
    /// Several, numbered consecutively.
    Many(Vec<Vec<u8>>, Arc<Completion>),
    /// Done once everything queued before it is durable.
    Flush(Arc<Completion>),
    /// Write a digest now (if any record is unsigned), then done once durable.
    Digest(Arc<Completion>),
    /// Final digest, sync, stop.
    Close(Arc<Completion>),
}

/// Paths this process has open as logs. A [`ProcessLock`]: a copy made by `fork` while a thread
/// of its parent opened or closed a log (and held the set) is told so, instead of waiting for
/// ever at its next open, or at the drop of the parent's log it lets go of.
static OPEN_PATHS: ProcessLock<BTreeSet<PathBuf>> = ProcessLock::new(BTreeSet::new());

/// This process's claim on a log path, released when dropped.
#[derive(Debug)]
struct PathClaim(PathBuf);

impl PathClaim {
    fn take(path: PathBuf) -> Result<Self, AuditError> {
        let mut open = OPEN_PATHS.lock().map_err(|e| {
            AuditError::Config(format!(
                "this process cannot tell which audit logs it has open ({e}); open audit logs \
                 from a process started afresh, or forked while none was being opened or closed"
            ))
        })?;
        if !open.insert(path.clone()) {
            return Err(AuditError::Config(format!(
                "{} is already open as an audit log in this process",
                path.display()
            )));
        }
        Ok(PathClaim(path))
    }
}

impl Drop for PathClaim {
    fn drop(&mut self) {
        // In a copy whose parent held the set at the fork, the claim stays: the copy cannot
        // open that path again, and nothing else reads its set.
        if let Ok(mut open) = OPEN_PATHS.lock() {
            open.remove(&self.0);
        }
    }
}

/// A tamper-evident audit log open for appending.
#[derive(Debug)]
pub struct AuditLog {
    tx: Sender<Job>,
    /// Buffers the writer has finished with.
    spare: Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    durability: Durability,
    public_key_der: Vec<u8>,
    path: PathBuf,
    thread: Option<JoinHandle<()>>,
    /// The process that opened the log, whose writer thread alone appends to it
    /// ([`AuditLog::usable`]).
    opened_in: crate::fork::Birthplace,
}

impl AuditLog {
    /// Opens (or creates) the log at `config.path`, signing digests with `signing_key_pkcs8` (an
    /// ECDSA P-256 private key, PKCS#8 DER in locked memory; the bytes are not kept). An existing log is
    /// continued: its torn last line, if any, is cut off, its tail is verified (see the recover
    /// module) and, if records after its last digest are waiting, a digest for them is written
    /// before this returns.
    pub fn open(config: AuditConfig, signing_key_pkcs8: &LockedBytes) -> Result<Self, AuditError> {
        if config.queue_capacity == 0 || config.max_group_bytes == 0 {
            return Err(AuditError::Config(
                "queue_capacity and max_group_bytes must be at least 1".into(),
            ));
        }
        let signer = DigestSigner::from_pkcs8(signing_key_pkcs8)?;
        let verifier = DigestVerifier::new(signer.public_key_der())?;
        let (file, path, state, claim, segment) = if config.directory {
            // The segment's flock keeps every other writer out, in this process too.
            let claimed = segments::claim(&config.path, &verifier)?;
            let claim = PathClaim::take(canonical(&claimed.path)?)?;
            let segment = (claimed.name, claimed.others);
            (
                claimed.file,
                claimed.path,
                claimed.state,
                claim,
                Some(segment),
            )
        } else {
            let (file, state, claim) = open_file(&config.path, &verifier)?;
            (file, config.path.clone(), state, claim, None)
        };
        let (spare_tx, spare) = crossbeam_channel::bounded(POOL_BUFFERS);
        let shared = Arc::new(Shared {
            failure: OnceLock::new(),
            stopped: AtomicBool::new(false),
            lock: Mutex::new(()),
            woken: Condvar::new(),
            last_digest: Mutex::new(None),
        });
        let mut writer = Writer {
            file,
            path: path.clone(),
            signer,
            shared: Arc::clone(&shared),
            digest_every_records: config.digest_every_records,
            digest_every: config.digest_every,
            max_group_bytes: config.max_group_bytes,
            next_seq: state.next_seq,
            chain: state.last_chain,
            last_digest_hash: state.last_digest_hash,
            last_digest_seq: state.last_digest_seq,
            last_digest_at: Instant::now(),
            committed_len: state.valid_len,
            buf: Vec::with_capacity(config.max_group_bytes.min(1 << 20)),
            pending: Vec::new(),
            new_digest: None,
            spare: spare_tx,
            failed: false,
            _claim: claim,
        };
        if state.unsigned() > 0 {
            writer.append_digest()?;
            writer.commit();
            if let Some(e) = shared.failure.get() {
                return Err(e.clone());
            }
        }
        let public_key_der = writer.signer.public_key_der().to_vec();
        let opened_in = crate::fork::Birthplace::here();
        let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity);
        let thread = std::thread::Builder::new()
            .name("keyplane-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::Io(format!("starting the audit writer thread: {e}")))?;
        let log = AuditLog {
            tx,
            spare,
            shared,
            durability: config.durability,
            public_key_der,
            path,
            thread: Some(thread),
            opened_in,
        };
        if let Some((name, others)) = segment {
            let principal = config.principal.unwrap_or_else(|| UserIdentity {
                identity_type: "Unknown".into(),
                principal_id: String::new(),
                arn: String::new(),
                account_id: String::new(),
                access_key_id: None,
            });
            let event = segments::writer_event(&name, &others, &principal, &config.region);
            log.append(event)?.wait_durable()?;
        }
        Ok(log)
    }

    /// Queues `event`; the ticket says when it is durable. Fails at once if the log has failed.
    pub fn append(&self, event: AuditEvent) -> Result<Ticket, AuditError> {
        self.usable()?;
        let mut body = self.spare.try_recv().unwrap_or_default();
        event.write_json(&mut body)?;
        let done = Completion::new();
        self.send(Job::One(body, Arc::clone(&done)))?;
        Ok(self.ticket(done))
    }

    /// Queues `events` as consecutive records; one ticket for all of them.
    pub fn append_many(&self, events: Vec<AuditEvent>) -> Result<Ticket, AuditError> {
        self.usable()?;
        let bodies = events
            .iter()
            .map(|event| {
                let mut body = self.spare.try_recv().unwrap_or_default();
                event.write_json(&mut body).map(|()| body)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let done = Completion::new();
        if bodies.is_empty() {
            done.0.store(DURABLE, Ordering::Release);
        } else {
            self.send(Job::Many(bodies, Arc::clone(&done)))?;
        }
        Ok(self.ticket(done))
    }

    /// Appends `event` and waits as the log's durability says: the call a request makes before
    /// it answers.
    pub fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        self.append(event)?.wait()
    }

    /// Blocks until every record appended before this call is durable.
    pub fn flush(&self) -> Result<(), AuditError> {
        self.usable()?;
        let done = Completion::new();
        self.send(Job::Flush(Arc::clone(&done)))?;
        self.ticket(done).wait_durable()
    }

    /// Writes a digest now for the records not yet covered by one (if any), and waits until it is
    /// durable.
    pub fn write_digest(&self) -> Result<(), AuditError> {
        self.usable()?;
        let done = Completion::new();
        self.send(Job::Digest(Arc::clone(&done)))?;
        self.ticket(done).wait_durable()
    }

    /// Writes a final digest, syncs and stops the writer. Dropping the log does the same but
    /// cannot report an error.
    pub fn close(mut self) -> Result<(), AuditError> {
        self.shutdown()
    }

    /// The audit public key as DER SubjectPublicKeyInfo: what [`verify`](super::verify()) takes.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.public_key_der.clone()
    }

    /// The latest digest line made durable since this log was opened, to be kept elsewhere: a
    /// copy elsewhere shows a log cut after that digest.
    pub fn last_digest(&self) -> Option<String> {
        self.shared
            .last_digest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When callers are released ([`AuditConfig::durability`]).
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The write error the log failed with, if it has.
    pub fn failure(&self) -> Option<AuditError> {
        self.shared.failure.get().cloned()
    }

    /// Whether this process can append to the log: not if the log failed ([`AuditLog::failure`]),
    /// nor in a copy of the process that opened it made by `fork`, which has no writer thread
    /// (an append would wait for ever) and must not continue the parent's chain. A child of fork
    /// opens a log of its own (an engine of its own).
    pub fn usable(&self) -> Result<(), AuditError> {
        if self.in_other_process() {
            return Err(AuditError::OtherProcess(format!(
                "{} is written by the writer thread of process {}, which opened it; this process \
                 is a copy of it made by fork, without that thread, and may not continue its \
                 chain: start an engine (open an audit log) in this process",
                self.path.display(),
                self.opened_in.pid()
            )));
        }
        match self.shared.failure.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn in_other_process(&self) -> bool {
        self.opened_in.is_elsewhere()
    }

    fn send(&self, job: Job) -> Result<(), AuditError> {
        self.tx.send(job).map_err(|_| self.shared.error())
    }

    fn ticket(&self, done: Arc<Completion>) -> Ticket {
        Ticket {
            done,
            shared: Arc::clone(&self.shared),
            durability: self.durability,
        }
    }

    fn shutdown(&mut self) -> Result<(), AuditError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        if self.in_other_process() {
            // The writer thread is the parent's: there is nothing here to stop or join (joining
            // would wait on a thread this process does not have), and the parent keeps the file.
            std::mem::forget(thread);
            // Nor are the channels' last ends dropped here: that disconnects them, which takes
            // the wakers' locks, and the parent's writer may have held one at the fork. A count
            // never given back keeps the fields' drops to an atomic decrement.
            std::mem::forget(self.tx.clone());
            std::mem::forget(self.spare.clone());
            return self.usable();
        }
        let done = Completion::new();
        let sent = self.tx.send(Job::Close(Arc::clone(&done))).is_ok();
        let joined = thread.join();
        if joined.is_err() {
            return Err(AuditError::Io("the audit writer thread panicked".into()));
        }
        if !sent {
            return Err(self.shared.error());
        }
        self.ticket(done).wait_durable()
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Opens (or creates) the single log file `path` and recovers it.
fn open_file(
    path: &Path,
    verifier: &DigestVerifier,
) -> Result<(File, TailState, PathClaim), AuditError> {
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| AuditError::io("opening", path, &e))?;
    if !existed {
        sync_parent(path)?;
    }
    // Claimed before recovery, which may cut the file: never under a writer of this process.
    let claim = PathClaim::take(canonical(path)?)?;
    let state = recover_segment(&file, path, verifier)?;
    Ok((file, state, claim))
}

fn canonical(path: &Path) -> Result<PathBuf, AuditError> {
    path.canonicalize()
        .map_err(|e| AuditError::io("resolving", path, &e))
}

/// Syncs the directory holding `path`, so that a newly created log file's name is durable.
fn sync_parent(path: &Path) -> Result<(), AuditError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| AuditError::io("syncing the directory", parent, &e))
}

/// Marks the writer stopped however its thread ends, so that no waiter waits forever.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
        self.0.wake_all();
    }
}

/// The writer thread's state.
struct Writer {
    file: File,
    path: PathBuf,
    signer: DigestSigner,
    shared: Arc<Shared>,
    digest_every_records: u64,
    digest_every: Duration,
    max_group_bytes: usize,
    /// The seq the next record gets.
    next_seq: u64,
    /// The chain value of the last record.
    chain: [u8; 32],
    last_digest_hash: Option<[u8; 32]>,
    last_digest_seq: u64,
    last_digest_at: Instant,
    /// The file's length after the last durable group.
    committed_len: u64,
    /// The group being built.
    buf: Vec<u8>,
    /// Completions of the group being built.
    pending: Vec<Arc<Completion>>,
    /// A digest line in the group being built, published once durable.
    new_digest: Option<String>,
    /// Where finished event buffers go back for reuse.
    spare: Sender<Vec<u8>>,
    failed: bool,
    _claim: PathClaim,
}

impl Writer {
    fn run(mut self, rx: Receiver<Job>) {
        let _stop = StopGuard(Arc::clone(&self.shared));
        let mut closing = false;
        while !closing {
            let first = match self.digest_due_at() {
                Some(due) => match rx.recv_deadline(due) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(job) => Some(job),
                    Err(_) => break,
                },
            };
            if let Some(job) = first {
                closing = self.take(job);
                while !closing && self.buf.len() < self.max_group_bytes {
                    match rx.try_recv() {
                        Ok(job) => closing = self.take(job),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closing = true;
                        }
                    }
                }
            }
            if !self.failed
                && self
                    .digest_due_at()
                    .is_some_and(|due| Instant::now() >= due)
            {
                self.digest_or_fail();
            }
            self.commit();
        }
        // Every handle is gone or closing: sign what is unsigned and finish.
        if !self.failed && self.unsigned() > 0 {
            self.digest_or_fail();
        }
        self.commit();
        // Jobs queued after a close (none, with one handle) fail rather than hang.
        while let Ok(job) = rx.try_recv() {
            self.fail_job(job);
        }
    }

    /// Records written since the last digest.
    fn unsigned(&self) -> u64 {
        self.next_seq - 1 - self.last_digest_seq
    }

    /// When the next time-based digest is due, if one will be.
    fn digest_due_at(&self) -> Option<Instant> {
        if self.failed || self.digest_every.is_zero() || self.unsigned() == 0 {
            return None;
        }
        Some(self.last_digest_at + self.digest_every)
    }

    /// Adds `job` to the group; true if it asks the writer to close.
    fn take(&mut self, job: Job) -> bool {
        if self.failed {
            return self.fail_job(job);
        }
        match job {
            Job::One(body, done) => {
                self.append_record(body);
                self.pending.push(done);
            }
            Job::Many(bodies, done) => {
                for body in bodies {
                    self.append_record(body);
                }
                self.pending.push(done);
            }
            Job::Flush(done) => self.pending.push(done),
            Job::Digest(done) => {
                if self.unsigned() > 0 {
                    self.digest_or_fail();
                }
                self.pending.push(done);
            }
            Job::Close(done) => {
                if self.unsigned() > 0 {
                    self.digest_or_fail();
                }
                self.pending.push(done);
                return true;
            }
        }
        false
    }

    fn fail_job(&mut self, job: Job) -> bool {
        let (done, closing) = match job {
            Job::One(_, done) | Job::Many(_, done) | Job::Flush(done) | Job::Digest(done) => {
                (done, false)
            }
            Job::Close(done) => (done, true),
        };
        done.0.store(FAILED, Ordering::Release);
        closing
    }

    fn append_record(&mut self, body: Vec<u8>) {
        let seq = self.next_seq;
        self.chain = append_record_line(&mut self.buf, seq, &body, &self.chain);
        self.next_seq += 1;
        if body.capacity() <= POOL_MAX_BYTES {
            let _ = self.spare.try_send(body);
        }
        if self.digest_every_records > 0 && self.unsigned() >= self.digest_every_records {
            self.digest_or_fail();
        }
    }

    fn digest_or_fail(&mut self) {
        if let Err(e) = self.append_digest() {
            self.fail(e);
        }
    }

    /// Adds a digest of the records since the last one to the group.
    fn append_digest(&mut self) -> Result<(), AuditError> {
        let digest = Digest {
            seq_first: self.last_digest_seq + 1,
            seq_last: self.next_seq - 1,
            last_chain: self.chain,
            previous_digest: self.last_digest_hash,
            digest_time: rfc3339_millis(now_millis()),
            key_fingerprint: self.signer.fingerprint(),
        };
        let line = self.signer.sign_line(&digest)?;
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        self.last_digest_hash = Some(digest_line_hash(line.as_bytes()));
        self.last_digest_seq = digest.seq_last;
        self.last_digest_at = Instant::now();
        self.new_digest = Some(line);
        Ok(())
    }

    /// Writes and syncs the group, then settles its completions and wakes waiters.
    fn commit(&mut self) {
        if self.pending.is_empty() && self.buf.is_empty() {
            return;
        }
        if !self.failed && !self.buf.is_empty() {
            let written = self
                .file
                .write_all(&self.buf)
                .and_then(|()| self.file.sync_data());
            match written {
                Ok(()) => {
                    self.committed_len += self.buf.len() as u64;
                    if let Some(line) = self.new_digest.take() {
                        *self
                            .shared
                            .last_digest
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(line);
                    }
                }
                Err(e) => {
                    // Nothing of this group was acknowledged: take it back off the file if we can.
                    let _ = self
                        .file
                        .set_len(self.committed_len)
                        .and_then(|()| self.file.sync_data());
                    self.fail(AuditError::io("writing", &self.path, &e));
                }
            }
        }
        self.buf.clear();
        let state = if self.failed { FAILED } else { DURABLE };
        for done in self.pending.drain(..) {
            done.0.store(state, Ordering::Release);
        }
        self.shared.wake_all();
    }

    fn fail(&mut self, error: AuditError) {
        self.failed = true;
        self.new_digest = None;
        let _ = self.shared.failure.set(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::example_identity;
    use crate::audit::{generate_signing_key, verify, Verdict};

    fn event(n: u64) -> AuditEvent {
        AuditEvent::new("Encrypt", "eu-west-1", example_identity())
            .with_request_parameters(serde_json::json!({ "n": n }))
    }

    #[test]
    fn append_wait_close_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key(crate::LockPolicy::default()).unwrap();
        let log = AuditLog::open(AuditConfig::new(&path), &key).unwrap();
        let public = log.public_key_der();
        for n in 0..10 {
            let ticket = log.append(event(n)).unwrap();
            ticket.wait().unwrap();
            assert!(ticket.is_durable());
        }
        log.append_many((10..15).map(event).collect())
            .unwrap()
            .wait()
            .unwrap();
        assert!(log.append_many(Vec::new()).unwrap().is_durable());
        log.flush().unwrap();
        assert!(log.last_digest().is_none());
        log.write_digest().unwrap();
        let digest = log.last_digest().unwrap();
        assert!(digest.contains("\"seqFirst\":1,\"seqLast\":15,"));
        log.close().unwrap();
        let report = verify(&path, &public).unwrap();
        assert_eq!(report.verdict(), Verdict::Intact, "{report}");
        assert_eq!((report.records, report.digests), (15, 1));
    }

    #[test]
    fn handles_are_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<AuditLog>();
        shared::<Ticket>();
    }

    #[test]
    fn one_log_per_path_in_a_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key(crate::LockPolicy::default()).unwrap();
        let log = AuditLog::open(AuditConfig::new(&path), &key).unwrap();
        let again = AuditLog::open(
            AuditConfig::new(dir.path().join(".").join("audit.log")),
            &key,
        );
        assert!(matches!(again, Err(AuditError::Config(_))));
        drop(log);
        AuditLog::open(AuditConfig::new(&path), &key)
            .unwrap()
            .close()
            .unwrap();
    }

    #[test]
    fn digest_by_count_and_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_signing_key(crate::LockPolicy::default()).unwrap();
        let path = dir.path().join("count.log");
        let mut config = AuditConfig::new(&path);
        config.digest_every_records = 4;
        config.digest_every = Duration::ZERO;
        let log = AuditLog::open(config, &key).unwrap();
        log.append_many((0..10).map(event).collect())
            .unwrap()
            .wait()
            .unwrap();
        assert!(log
            .last_digest()
            .unwrap()
            .contains("\"seqFirst\":5,\"seqLast\":8,"));
        let public = log.public_key_der();
        log.close().unwrap();
        let report = verify(&path, &public).unwrap();
        assert_eq!((report.records, report.digests), (10, 3), "{report}");

        let path = dir.path().join("time.log");
        let mut config = AuditConfig::new(&path);
        config.digest_every_records = 0;
        config.digest_every = Duration::from_millis(20);
        let log = AuditLog::open(config, &key).unwrap();
        log.record(event(1)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.last_digest().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(log.last_digest().unwrap().contains("\"seqLast\":1,"));
        log.close().unwrap();
    }

    #[test]
    fn queued_tickets_do_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key(crate::LockPolicy::default()).unwrap();
        let mut config = AuditConfig::new(&path);
        config.durability = Durability::Queued;
        let log = AuditLog::open(config, &key).unwrap();
        let tickets: Vec<Ticket> = (0..100).map(|n| log.append(event(n)).unwrap()).collect();
        for ticket in &tickets {
            ticket.wait().unwrap();
        }
        tickets.last().unwrap().wait_durable().unwrap();
        assert!(tickets.iter().all(Ticket::is_durable));
        log.close().unwrap();
    }

    #[test]
    fn bad_configuration_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_signing_key(crate::LockPolicy::default()).unwrap();
        let mut config = AuditConfig::new(dir.path().join("a.log"));
        config.queue_capacity = 0;
        assert!(matches!(
            AuditLog::open(config, &key),
            Err(AuditError::Config(_))
        ));
        assert!(matches!(
            AuditLog::open(
                AuditConfig::new(dir.path().join("b.log")),
                &crate::LockedBytes::copy_from(b"nope", crate::LockPolicy::default()).unwrap()
            ),
            Err(AuditError::Key(_))
        ));
        assert!(matches!(
            AuditLog::open(AuditConfig::new(dir.path().join("missing/c.log")), &key),
            Err(AuditError::Io(_))
        ));
    }
}
