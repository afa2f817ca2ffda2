//! Per-tenant quotas, so that tenants sharing a node cannot crowd each
//! other out: how many streams a tenant may hold, and how many messages it
//! may publish per second over every protocol (its pipelines' outputs
//! included). The rate is a token bucket holding one second's worth.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sluice_core::TenantId;

/// One tenant's quotas (`[[tenants]]` in the config file); `None` is no
/// limit. The default tenant, the operator's, has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantQuota {
    /// Streams the tenant may hold, its pipelines' dead-letter streams
    /// included.
    pub streams_max: Option<usize>,
    /// Messages per second the tenant may publish, with bursts of up to
    /// one second's worth.
    pub publish_messages_per_s_max: Option<u32>,
}

/// A token bucket refilled continuously at `per_s`, holding at most `per_s`.
#[derive(Debug)]
struct Bucket {
    per_s: u32,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_s: u32, now: Instant) -> Self {
        Bucket {
            per_s,
            tokens: f64::from(per_s),
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let cap = f64::from(self.per_s);
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * cap;
        self.tokens = (self.tokens + refill).min(cap);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Every tenant's quotas and the state of their rate limits.
#[derive(Debug, Default)]
pub struct Quotas {
    quotas: HashMap<TenantId, TenantQuota>,
    buckets: HashMap<TenantId, Mutex<Bucket>>,
}

impl Quotas {
    pub fn new(quotas: HashMap<TenantId, TenantQuota>) -> Self {
        let now = Instant::now();
        let buckets = quotas
            .iter()
            .filter_map(|(t, q)| {
                let per_s = q.publish_messages_per_s_max?;
                Some((t.clone(), Mutex::new(Bucket::new(per_s, now))))
            })
            .collect();
        Quotas { quotas, buckets }
    }

    pub fn streams_max(&self, tenant: &TenantId) -> Option<usize> {
        self.quotas.get(tenant)?.streams_max
    }

    /// Takes one publish from `tenant`'s allowance; `Err(per_s)` when it is
    /// spent for now.
    pub fn take_publish(&self, tenant: &TenantId) -> Result<(), u32> {
        let Some(bucket) = self.buckets.get(tenant) else {
            return Ok(());
        };
        let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
        if b.take(Instant::now()) {
            Ok(())
        } else {
            Err(b.per_s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_one_seconds_worth_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10, t0);
        assert_eq!((0..20).filter(|_| b.take(t0)).count(), 10, "the burst");
        assert!(!b.take(t0 + Duration::from_millis(50)), "half a token");
        assert!(b.take(t0 + Duration::from_millis(110)), "one more token");
        // Idle for a minute: still only one second's worth.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| b.take(later)).count(), 10);
    }

    #[test]
    fn only_tenants_with_a_rate_are_limited() {
        let acme = TenantId::new("acme").unwrap();
        let q = Quotas::new(HashMap::from([(
            acme.clone(),
            TenantQuota {
                streams_max: Some(2),
                publish_messages_per_s_max: Some(1),
            },
        )]));
        assert_eq!(q.take_publish(&acme), Ok(()));
        assert_eq!(q.take_publish(&acme), Err(1));
        let default = TenantId::default_tenant();
        assert!((0..1000).all(|_| q.take_publish(&default).is_ok()));
        assert_eq!(q.streams_max(&acme), Some(2));
        assert_eq!(q.streams_max(&default), None);
    }
}
