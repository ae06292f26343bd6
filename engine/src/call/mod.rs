//! How every request runs: its rate quota, then the operation, then its audit record.
//!
//! Audit fails closed: when the audit log has failed, requests are refused before they run; a
//! request whose record cannot be written returns that error instead of its result. A batch call
//! is one record with its item count, per-error counts and every key its items used, with the
//! number of items per key. The records of successful
//! cryptographic operations also feed GetKeyLastUsage.

pub(crate) mod audit;
pub(crate) mod params;
pub(crate) mod request_id;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;
use zeroize::Zeroize;

use crate::access::Caller;
use crate::audit::{AuditEvent, AuditLog, BatchKey, RecordedUse};
use crate::dataplane::output::Written;
use crate::dataplane::tally::{KeyTally, KeyUse};
use crate::dataplane::IntoError;
use crate::dataplane::WrittenItems;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::key::identifier::KeyReference;
use crate::operation::Operation;

use self::audit::identity;
use self::request_id::with_request_id;

/// The control-plane request running on this thread, whose record is written at its commit.
struct Pending {
    event_name: Operation,
    key_id: Option<String>,
    written: bool,
}

thread_local! {
    static PENDING: std::cell::RefCell<Option<Pending>> = const { std::cell::RefCell::new(None) };
}

fn audit_failed(e: impl std::fmt::Display) -> Error {
    Error::AuditUnavailable(format!(
        "the request was refused because its audit record could not be written: {e}"
    ))
}

impl Engine {
    /// The keys a request names, as ids: by identifier (key id, ARN, alias), skipping
    /// any that name nothing.
    fn named_keys(&self, identifiers: &[Option<&str>]) -> Vec<Uuid> {
        let keyring = self.inner.data.keyring.load();
        let mut keys: Vec<Uuid> = Vec::new();
        for identifier in identifiers.iter().flatten() {
            let id = match self.inner.scope.parse(identifier) {
                Ok(KeyReference::Key(id)) => id,
                Ok(KeyReference::Alias(name)) => match keyring.aliases.get(name) {
                    Some(id) => *id,
                    None => continue,
                },
                Err(_) => continue,
            };
            if !keys.contains(&id) {
                keys.push(id);
            }
        }
        keys
    }

    /// The key a ciphertext was encrypted under, by its id as a string, when the audit log needs
    /// it (a Decrypt or ReEncrypt that does not name its key still records it).
    pub(crate) fn blob_key(&self, named: Option<&str>, blob: &[u8]) -> Option<String> {
        self.inner.audit.as_ref()?;
        match named {
            Some(key) => Some(key.to_owned()),
            None => crate::ciphertext::key_id_of(blob)
                .ok()
                .map(|id| id.to_string()),
        }
    }

    /// Refuses requests while the audit log is failed (fail closed).
    fn audit_ready(&self) -> Result<()> {
        match &self.inner.audit {
            Some(audit) => audit.log.usable().map_err(audit_failed),
            None => Ok(()),
        }
    }

    /// Writes one request's record and waits for it per the log's durability. The record names
    /// the keys `key_ids` name; a successful cryptographic operation becomes their last usage.
    pub(crate) fn record(
        &self,
        event_name: Operation,
        key_ids: &[Option<&str>],
        parameters: impl FnOnce() -> Value,
        outcome: std::result::Result<(), &Error>,
    ) -> Result<()> {
        self.record_as(event_name, key_ids, parameters, outcome, None)
    }

    /// As [`Engine::record`], with the record's id decided beforehand (`None`: a new one).
    fn record_as(
        &self,
        event_name: Operation,
        key_ids: &[Option<&str>],
        parameters: impl FnOnce() -> Value,
        outcome: std::result::Result<(), &Error>,
        request_id: Option<&str>,
    ) -> Result<()> {
        if self.inner.audit.is_none() {
            return Ok(());
        }
        let used = outcome.is_ok();
        let keys: Vec<(Uuid, KeyUse)> = self
            .named_keys(key_ids)
            .into_iter()
            .map(|id| {
                let uses = KeyUse {
                    items: 1,
                    succeeded: u64::from(used),
                };
                (id, uses)
            })
            .collect();
        self.write_record(event_name, &keys, parameters, outcome, None, request_id)
    }

    /// The id a data-plane request's audit record will carry, decided before it runs: the id a
    /// network front end answered the client with (its single origin's), else a new one. `None`
    /// without an audit log (no record; a proxy then gets a fresh id per call).
    fn data_request_id(&self, batch: bool) -> Option<Arc<str>> {
        self.inner.audit.as_ref()?;
        let origin = match self.origins.as_deref() {
            Some([one]) => Some(one),
            Some([first, ..]) if !batch => Some(first),
            _ => None,
        };
        Some(Arc::from(
            origin
                .and_then(|o| o.request_id.clone())
                .unwrap_or_else(crate::audit::new_request_id)
                .as_str(),
        ))
    }

    /// Writes a record naming `keys` (with how many items used each, for a batch) and waits for
    /// it per the log's durability. Each key that a succeeding item of a cryptographic operation
    /// used gets this record as its last usage.
    fn write_record(
        &self,
        event_name: Operation,
        keys: &[(Uuid, KeyUse)],
        parameters: impl FnOnce() -> Value,
        outcome: std::result::Result<(), &Error>,
        batch: Option<(u64, BTreeMap<String, u64>)>,
        request_id: Option<&str>,
    ) -> Result<()> {
        let Some(audit) = &self.inner.audit else {
            return Ok(());
        };
        let now = self.inner.clock.now();
        let account = &self.inner.config.account_id;
        let mut event = AuditEvent::new(
            event_name.name(),
            &self.inner.config.region,
            identity(&self.caller),
        )
        .at(now.0)
        .with_request_parameters(parameters())
        .with_recipient_account(account)
        .read_only(event_name.is_read_only());
        let arns: Vec<String> = keys
            .iter()
            .map(|(id, _)| self.inner.scope.key_arn(id))
            .collect();
        for arn in &arns {
            event = event.with_key(account, arn);
        }
        if let Err(e) = outcome {
            event = event.with_error(e.code(), e.message());
        }
        if let Some((count, errors)) = batch {
            let per_key = keys
                .iter()
                .zip(&arns)
                .map(|((_, uses), arn)| BatchKey {
                    arn: arn.clone(),
                    item_count: uses.items,
                    error_count: uses.items - uses.succeeded,
                })
                .collect();
            event = event.with_batch(count, errors).with_batch_keys(per_key);
            match self.origins.as_deref() {
                Some([one]) => event = event.with_origin(one),
                Some(many) if !many.is_empty() => event = event.with_batch_origins(many),
                _ => {}
            }
        } else if let Some(origin) = self.origins.as_deref().and_then(<[_]>::first) {
            event = event.with_origin(origin);
        }
        if let Some(id) = request_id {
            event = event.with_request_id(id);
        }
        let usage = event_name.is_cryptographic().then(|| RecordedUse {
            operation: event_name.name().to_owned(),
            time_ms: now.0,
            event_id: event.event_id.clone(),
            request_id: event.request_id.clone(),
        });
        audit
            .log
            .append(event)
            .and_then(|ticket| ticket.wait())
            .map_err(audit_failed)?;
        if let Some(usage) = usage {
            if let Ok(mut last) = audit.last_usage.lock() {
                for (id, _) in keys.iter().filter(|(_, uses)| uses.succeeded > 0) {
                    last.note(*id, usage.clone());
                }
            }
        }
        Ok(())
    }

    /// [`audited`](Self::audited), the request's `members` checked first against the service
    /// model's rules for `action` (inside the audited call, so a refused request is audited too).
    pub(crate) fn audited_request<T>(
        &self,
        action: crate::access::Action,
        key_id: Option<&str>,
        members: &[(&str, crate::validation::Value<'_>)],
        run: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.audited(action, key_id, || {
            crate::validation::check_request(action, members)?;
            run()
        })
    }

    /// Runs one control-plane request: its quota, the request, its audit record. A request that
    /// changes the store has its record written (and made durable) just before the store commits,
    /// by [`Engine::write_pending_record`]: if the record cannot be written, nothing is changed.
    pub(crate) fn audited<T>(
        &self,
        action: crate::access::Action,
        key_id: Option<&str>,
        run: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.audit_ready()?;
        let previous = PENDING.with(|p| {
            p.replace(Some(Pending {
                event_name: action.as_operation(),
                key_id: key_id.map(str::to_owned),
                written: false,
            }))
        });
        let result = self
            .inner
            .limiter
            .take(action.as_operation().quota_family(), 1)
            .and_then(|()| run())
            .and_then(|value| self.unless_dry_run(value));
        let pending = PENDING.with(|p| p.replace(previous));
        let written = pending.as_ref().is_some_and(|p| p.written);
        if !written || result.is_err() {
            // Not written yet (a read, or a refusal), or written before a store commit that then
            // failed: record the outcome.
            self.record(
                action.as_operation(),
                &[key_id],
                || params::key_opt(key_id),
                result.as_ref().map(|_| ()),
            )?;
        }
        result
    }

    /// A dry run's answer where the real call succeeded: DryRunOperationException.
    fn unless_dry_run<T>(&self, value: T) -> Result<T> {
        if self.dry_run {
            return Err(crate::messages::dry_run_succeeded());
        }
        Ok(value)
    }

    /// Refuses a store commit made for the request of a dry-run handle: everything the real call
    /// checks has been checked by then, so the dry run answers DryRunOperationException and
    /// nothing changes. Commits outside a request (due deletions and rotations) go ahead.
    pub(crate) fn refuse_dry_run_commit(&self) -> Result<()> {
        if self.dry_run && PENDING.with(|p| p.borrow().is_some()) {
            return Err(crate::messages::dry_run_succeeded());
        }
        Ok(())
    }

    /// Writes the record of the control-plane request running on this thread, as succeeded, if it
    /// has not been written yet; called just before the store commits its change, so that a
    /// change is never made without its record. `changed` names the keys the commit touches.
    pub(crate) fn write_pending_record(&self, changed: &[Uuid]) -> Result<()> {
        let Some((event_name, key_id)) = PENDING.with(|p| {
            p.borrow()
                .as_ref()
                .filter(|pending| !pending.written)
                .map(|pending| (pending.event_name, pending.key_id.clone()))
        }) else {
            return Ok(());
        };
        let changed: Vec<String> = changed.iter().map(Uuid::to_string).collect();
        let mut keys: Vec<Option<&str>> = vec![key_id.as_deref()];
        keys.extend(changed.iter().map(|k| Some(k.as_str())));
        self.record(
            event_name,
            &keys,
            || params::key_opt(key_id.as_deref()),
            Ok(()),
        )?;
        PENDING.with(|p| {
            if let Some(pending) = p.borrow_mut().as_mut() {
                pending.written = true;
            }
        });
        Ok(())
    }

    /// Follows the store now, for a data-plane request that named a key or alias this engine
    /// does not hold: another engine sharing the store may have just made it (its client saw the
    /// change acknowledged) and this one not followed yet. Costs one read of the store's
    /// generation when nothing changed; true when the view is now current, so the request is
    /// worth running again. Skipped (false) while the store has not answered for longer than
    /// twice the scheduler interval plus a second: an unreachable store must not hold up every request for
    /// an unknown key by its connect timeout. A failure leaves the original answer.
    pub(crate) fn caught_up(&self) -> bool {
        if let Some(every) = self.inner.config.scheduler_interval {
            if self.inner.data.freshness.age() > every * 2 + std::time::Duration::from_secs(1) {
                return false;
            }
        }
        if self.store_usable_here().is_err() {
            return false;
        }
        let Ok(mut state) = self.lock_control() else {
            return false;
        };
        // Run again even when this follow found nothing new: the scheduler's follow may have
        // applied the change between the request's lookup and this lock.
        self.reload_if_changed(&mut state).is_ok()
    }

    /// Runs `work` (scheduled deletions and rotations) outside the record of the request that
    /// triggered it.
    pub(crate) fn outside_request<T>(&self, work: impl FnOnce() -> T) -> T {
        let pending = PENDING.with(|p| p.take());
        let result = work();
        PENDING.with(|p| *p.borrow_mut() = pending);
        result
    }

    /// Runs one data-plane request: its quota, the request as the caller, its audit record.
    pub(crate) fn single<T>(
        &self,
        event_name: Operation,
        key_ids: &[Option<&str>],
        parameters: impl FnOnce() -> Value,
        mut run: impl FnMut(&Caller) -> Result<T>,
    ) -> Result<T> {
        self.audit_ready()?;
        let request_id = self.data_request_id(false);
        let result = self
            .inner
            .limiter
            .take(event_name.quota_family(), 1)
            .and_then(|()| {
                if event_name.creates_managed_keys() {
                    self.ensure_managed_keys(key_ids)?;
                }
                with_request_id(request_id.clone(), || match run(&self.caller) {
                    // Read-your-writes across the nodes of a shared store: a key or alias made
                    // on another node may not have reached this one yet.
                    Err(e) if names_unknown_key(&e) && self.caught_up() => run(&self.caller),
                    other => other,
                })
            })
            .and_then(|value| self.unless_dry_run(value));
        self.record_as(
            event_name,
            key_ids,
            parameters,
            result.as_ref().map(|_| ()),
            request_id.as_deref(),
        )?;
        result
    }

    /// Runs one data-plane request that writes into the caller's buffer `out`, as
    /// [`Engine::single`] (one quota unit, one audit record). A buffer too short for the output
    /// is [`IntoError::OutputTooSmall`], recorded as the ValidationException it converts to. A
    /// call that fails after `run` wrote (a dry run, or a record that cannot be written) zeroes
    /// what it wrote again, so a failed call leaves no output.
    pub(crate) fn single_into<T: Written>(
        &self,
        event_name: Operation,
        key_ids: &[Option<&str>],
        parameters: impl FnOnce() -> Value,
        out: &mut [u8],
        mut run: impl FnMut(&Caller, &mut [u8]) -> std::result::Result<T, IntoError>,
    ) -> std::result::Result<T, IntoError> {
        let mut too_small = None;
        let mut wrote = 0;
        let result = self.single(event_name, key_ids, parameters, |caller| {
            match run(caller, out) {
                Ok(value) => {
                    wrote = value.written();
                    Ok(value)
                }
                Err(IntoError::OutputTooSmall { needed }) => {
                    too_small = Some(needed);
                    Err(IntoError::OutputTooSmall { needed }.into())
                }
                Err(IntoError::Failed(e)) => Err(e),
            }
        });
        result.map_err(|e| {
            let wrote = wrote.min(out.len());
            out[..wrote].zeroize();
            match (too_small, &e) {
                (Some(needed), Error::Validation(_)) => IntoError::OutputTooSmall { needed },
                _ => IntoError::Failed(e),
            }
        })
    }

    /// Runs a batch of `n` requests: `n` units of quota (all refused with Throttling if over it),
    /// the requests as the caller, one audit record with the item count, error counts and every
    /// key the items used (with how many items used each, counted by the data plane's chunks
    /// into a [`KeyTally`]). If the record cannot be written, every item fails with that error.
    pub(crate) fn batch<R: BatchResults>(
        &self,
        event_name: Operation,
        key_id: Option<&str>,
        n: usize,
        mut run: impl FnMut(&Caller, &KeyTally) -> R,
    ) -> R {
        let every = |e: Error| R::every_failed(n, &e);
        if let Err(e) = self.audit_ready() {
            return every(e);
        }
        let new_tally = || {
            if self.inner.audit.is_some() {
                KeyTally::new()
            } else {
                KeyTally::inactive()
            }
        };
        let mut tally = new_tally();
        let request_id = self.data_request_id(true);
        let results = match self.inner.limiter.take(event_name.quota_family(), n) {
            Ok(()) => {
                // The data-plane view the batch runs on (one reference per batch), so that a
                // re-run happens only when the view has changed since.
                let before = self.inner.data.keyring.load_full();
                let mut results = with_request_id(request_id.clone(), || run(&self.caller, &tally));
                // Read-your-writes across nodes, as for single requests: when an item named a
                // key or alias this engine does not hold and the view changed by the time the
                // store was followed, the batch runs again (its first results and key uses
                // discarded). A batch whose unknown names exist nowhere runs once: a bogus id in
                // every batch costs a generation read, not the batch twice.
                if !tally.all_succeeded(n)
                    && results.errors().any(names_unknown_key)
                    && self.caught_up()
                    && !std::sync::Arc::ptr_eq(&before, &self.inner.data.keyring.load_full())
                {
                    tally = new_tally();
                    results = with_request_id(request_id.clone(), || run(&self.caller, &tally));
                }
                if self.dry_run {
                    results.fail_successes(crate::messages::dry_run_succeeded)
                } else {
                    // No pass over the results on the calling thread, while the helpers wait.
                    results
                }
            }
            Err(throttled) => every(throttled),
        };
        if self.inner.audit.is_some() {
            // A batch whose every item succeeded (as its chunks counted) has no errors to
            // count: no pass over its results on the calling thread.
            let any_failed = !tally.all_succeeded(n);
            let failures = || results.errors().filter(|_| any_failed);
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            for e in failures() {
                *errors.entry(e.code().to_owned()).or_default() += 1;
            }
            let first_error = failures().next();
            let outcome = match (
                first_error,
                errors.values().sum::<u64>() as usize == n && n > 0,
            ) {
                (Some(e), true) => Err(e),
                _ => Ok(()),
            };
            let mut keys = tally.into_keys();
            if keys.is_empty() {
                // Refused before any item ran (throttled): the record names the request's key.
                keys = self
                    .named_keys(&[key_id])
                    .into_iter()
                    .map(|id| (id, KeyUse::default()))
                    .collect();
            }
            if let Err(e) = self.write_record(
                event_name,
                &keys,
                || params::batch(key_id, n),
                outcome,
                Some((n as u64, errors)),
                request_id.as_deref(),
            ) {
                return every(e);
            }
        }
        results
    }

    /// The audit log, when one is configured.
    pub fn audit_log(&self) -> Option<&AuditLog> {
        self.inner.audit.as_ref().map(|a| &a.log)
    }
}

/// The results of a batch as [`Engine::batch`] handles them: one `Result` per item, or the
/// 4-byte counts of a batch into byte buffers ([`WrittenItems`]), read in place.
pub(crate) trait BatchResults {
    /// `n` items, each failed with `error`.
    fn every_failed(n: usize, error: &Error) -> Self;
    /// Every failed item's error, in item order.
    fn errors(&self) -> impl Iterator<Item = &Error>;
    /// The results with every success failed with `error()` (a dry run's answer).
    fn fail_successes(self, error: impl Fn() -> Error) -> Self;
}

impl<T> BatchResults for Vec<Result<T>> {
    fn every_failed(n: usize, error: &Error) -> Self {
        (0..n).map(|_| Err(error.clone())).collect()
    }

    fn errors(&self) -> impl Iterator<Item = &Error> {
        self.iter().filter_map(|r| r.as_ref().err())
    }

    fn fail_successes(self, error: impl Fn() -> Error) -> Self {
        self.into_iter()
            .map(|r| r.and_then(|_| Err(error())))
            .collect()
    }
}

impl BatchResults for WrittenItems {
    fn every_failed(n: usize, error: &Error) -> Self {
        WrittenItems::every_failed(n, error)
    }

    fn errors(&self) -> impl Iterator<Item = &Error> {
        WrittenItems::errors(self)
    }

    fn fail_successes(self, error: impl Fn() -> Error) -> Self {
        WrittenItems::fail_successes(self, error)
    }
}

/// Whether a data-plane error says that the request named a key (by id, alias or blob) that
/// this engine does not hold: the answers another node's recent change can make wrong.
fn names_unknown_key(e: &Error) -> bool {
    match e {
        Error::NotFound(_) => true,
        Error::InvalidCiphertext(m) => m == crate::messages::CIPHERTEXT_KEY_UNKNOWN,
        _ => false,
    }
}
