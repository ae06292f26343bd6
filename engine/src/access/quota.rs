//! Request-rate quotas: one lock-free token bucket per operation family.
//!
//! Each bucket runs the generic cell rate algorithm: one atomic holds the "theoretical arrival
//! time"; a request of `n` units advances it by `n` emission intervals and is refused if that
//! would put it more than one second's burst ahead of now. A batch of N items costs N units in one
//! compare-and-swap. Quotas are off by default (an embedded engine's host decides its own load);
//! [`RateQuotas::service_defaults`] gives the service's default rates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::{Error, Result};

/// Operation families that share a request-rate quota. The operations' table
/// ([`crate::operation::Operation::quota_family`]) gives each operation its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaFamily {
    /// Symmetric cryptography, data keys, MACs and random bytes. (Encrypt and Decrypt are
    /// charged here whatever the key, RSA keys included: the family is chosen before the key is
    /// resolved.)
    SymmetricCrypto,
    /// Signatures, key agreement, public keys.
    AsymmetricCrypto,
    /// Data key pairs.
    DataKeyPair,
    /// Every control-plane operation.
    ControlPlane,
}

/// Requests per second allowed per family; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateQuotas {
    pub symmetric_crypto: Option<u32>,
    pub asymmetric_crypto: Option<u32>,
    pub data_key_pair: Option<u32>,
    pub control_plane: Option<u32>,
}

impl RateQuotas {
    /// No rate limits (the default).
    pub fn off() -> Self {
        RateQuotas::default()
    }

    /// The service's default per-account rates: 10,000/s symmetric cryptographic operations,
    /// 500/s asymmetric (RSA), 500/s GenerateDataKeyPair, 100/s control plane.
    pub fn service_defaults() -> Self {
        RateQuotas {
            symmetric_crypto: Some(10_000),
            asymmetric_crypto: Some(500),
            data_key_pair: Some(500),
            control_plane: Some(100),
        }
    }
}

/// A token bucket (GCRA) allowing `rate` units per second with one second of burst.
#[derive(Debug)]
struct Bucket {
    /// Nanoseconds between units.
    interval_ns: u64,
    /// How far ahead of now the theoretical arrival time may run.
    burst_ns: u64,
    /// Theoretical arrival time, in nanoseconds since `Limiter::start`.
    tat_ns: AtomicU64,
}

impl Bucket {
    fn new(rate: u32) -> Bucket {
        let interval_ns = 1_000_000_000 / u64::from(rate.max(1));
        Bucket {
            interval_ns,
            burst_ns: 1_000_000_000,
            tat_ns: AtomicU64::new(0),
        }
    }

    /// Takes `units`, or says how long until they would be available.
    fn take(&self, now_ns: u64, units: u64) -> std::result::Result<(), u64> {
        let cost = units.saturating_mul(self.interval_ns);
        let mut tat = self.tat_ns.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now_ns).saturating_add(cost);
            let ahead = next - now_ns;
            if ahead > self.burst_ns.max(cost) {
                return Err(ahead - self.burst_ns.max(cost));
            }
            match self
                .tat_ns
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }
}

/// The engine's rate limiter.
#[derive(Debug)]
pub(crate) struct Limiter {
    start: Instant,
    symmetric: Option<Bucket>,
    asymmetric: Option<Bucket>,
    data_key_pair: Option<Bucket>,
    control: Option<Bucket>,
}

impl Limiter {
    pub(crate) fn new(quotas: RateQuotas) -> Limiter {
        Limiter {
            start: Instant::now(),
            symmetric: quotas.symmetric_crypto.map(Bucket::new),
            asymmetric: quotas.asymmetric_crypto.map(Bucket::new),
            data_key_pair: quotas.data_key_pair.map(Bucket::new),
            control: quotas.control_plane.map(Bucket::new),
        }
    }

    /// Takes `units` requests of `family`, or fails with Throttling and a retry hint.
    pub(crate) fn take(&self, family: QuotaFamily, units: usize) -> Result<()> {
        let bucket = match family {
            QuotaFamily::SymmetricCrypto => &self.symmetric,
            QuotaFamily::AsymmetricCrypto => &self.asymmetric,
            QuotaFamily::DataKeyPair => &self.data_key_pair,
            QuotaFamily::ControlPlane => &self.control,
        };
        let Some(bucket) = bucket else {
            return Ok(());
        };
        let now = self.start.elapsed().as_nanos() as u64;
        bucket.take(now, units as u64).map_err(|wait_ns| {
            Error::Throttling(format!(
                "the {family:?} request rate quota is exceeded; retry after {} ms",
                wait_ns.div_ceil(1_000_000).max(1)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_one_second_of_burst_then_refills_at_its_rate() {
        let bucket = Bucket::new(100);
        let mut allowed = 0;
        while bucket.take(0, 1).is_ok() {
            allowed += 1;
            assert!(allowed <= 101, "burst must be bounded");
        }
        assert_eq!(allowed, 100);
        // 50 ms later, five more units (100/s).
        let later = 50_000_000;
        for _ in 0..5 {
            bucket.take(later, 1).unwrap();
        }
        let wait = bucket.take(later, 1).unwrap_err();
        assert!(wait > 0 && wait <= 10_000_000, "retry hint {wait} ns");
    }

    #[test]
    fn a_batch_costs_its_size() {
        let bucket = Bucket::new(1000);
        bucket.take(0, 600).unwrap();
        assert!(bucket.take(0, 600).is_err());
        bucket.take(0, 400).unwrap();
    }

    #[test]
    fn throttling_names_a_retry_hint() {
        let limiter = Limiter::new(RateQuotas {
            control_plane: Some(1),
            ..RateQuotas::off()
        });
        limiter.take(QuotaFamily::ControlPlane, 1).unwrap();
        let err = limiter.take(QuotaFamily::ControlPlane, 1).unwrap_err();
        assert_eq!(err.code(), "ThrottlingException");
        assert!(err.message().contains("retry after"));
        limiter
            .take(QuotaFamily::SymmetricCrypto, 1_000_000)
            .unwrap();
    }
}
