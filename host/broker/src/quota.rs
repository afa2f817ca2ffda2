//! Per-tenant quotas, so that tenants sharing a node cannot crowd each
//! other out: how many streams a tenant may hold, how many messages and
//! payload bytes it may publish per second over every protocol (its
//! pipelines' outputs included), how many MQTT clients it may have
//! connected at once and how many subscriptions each may hold (which
//! together bound the copies of a message its subscribers can ask the node
//! to make). Each rate is a token bucket holding one second's
//! worth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    /// Payload bytes per second the tenant may publish, with bursts of up
    /// to one second's worth (a single larger message passes only when the
    /// allowance is full, and is paid back before the next).
    pub publish_bytes_per_s_max: Option<u64>,
    /// MQTT clients (distinct client ids) connected at once.
    pub mqtt_connections_max: Option<usize>,
    /// Subscriptions each of the tenant's MQTT sessions may hold (below the
    /// node's `subscriptions_per_client_max`).
    pub mqtt_subscriptions_per_client_max: Option<usize>,
    /// Retained messages the tenant holds (MQTT and HTTP `sluice-retain`).
    pub retained_messages_max: Option<usize>,
    /// Runner threads the tenant's pipelines may use together (each
    /// pipeline has `runners` of them): its share of the node's cores.
    pub pipeline_runners_max: Option<usize>,
}

/// A token bucket refilled continuously at `per_s`, holding at most `per_s`.
#[derive(Debug)]
struct Bucket {
    per_s: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_s: f64, now: Instant) -> Self {
        Bucket {
            per_s,
            tokens: per_s,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.per_s;
        self.tokens = (self.tokens + refill).min(self.per_s);
        self.at = now;
    }

    /// Whether `n` tokens may be taken now. More than the bucket holds may
    /// be taken from a full bucket (the debt is refilled before the next).
    fn allows(&self, n: f64) -> bool {
        self.tokens >= n.min(self.per_s)
    }
}

/// A tenant's rate buckets: messages and bytes, taken together or not at all.
#[derive(Debug, Default)]
struct Rates {
    messages: Option<Bucket>,
    bytes: Option<Bucket>,
}

/// Why a publish was refused: the quota it ran into, for the error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateRefusal {
    Messages(u32),
    Bytes(u64),
}

impl std::fmt::Display for RateRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateRefusal::Messages(n) => write!(f, "{n} messages a second"),
            RateRefusal::Bytes(n) => write!(f, "{n} payload bytes a second"),
        }
    }
}

/// Connected MQTT client ids of one tenant, with how many connections
/// each has (two, briefly, while one takes over the other's session).
type ConnectionTable = Arc<Mutex<HashMap<String, u32>>>;

/// A connected client's place in its tenant's connection quota, given
/// back when dropped (when the connection ends).
#[derive(Debug)]
pub struct ConnectionSlot {
    table: ConnectionTable,
    client_id: String,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = t.get_mut(&self.client_id) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.client_id);
            }
        }
    }
}

/// Every tenant's quotas and the state of their limits.
#[derive(Debug, Default)]
pub struct Quotas {
    quotas: HashMap<TenantId, TenantQuota>,
    rates: HashMap<TenantId, Mutex<Rates>>,
    connections: HashMap<TenantId, ConnectionTable>,
}

impl Quotas {
    pub fn new(quotas: HashMap<TenantId, TenantQuota>) -> Self {
        let now = Instant::now();
        let rates = quotas
            .iter()
            .filter(|(_, q)| {
                q.publish_messages_per_s_max.is_some() || q.publish_bytes_per_s_max.is_some()
            })
            .map(|(t, q)| {
                let rates = Rates {
                    messages: q
                        .publish_messages_per_s_max
                        .map(|n| Bucket::new(f64::from(n), now)),
                    bytes: q
                        .publish_bytes_per_s_max
                        .map(|n| Bucket::new(n as f64, now)),
                };
                (t.clone(), Mutex::new(rates))
            })
            .collect();
        let connections = quotas
            .iter()
            .filter(|(_, q)| q.mqtt_connections_max.is_some())
            .map(|(t, _)| (t.clone(), ConnectionTable::default()))
            .collect();
        Quotas {
            quotas,
            rates,
            connections,
        }
    }

    pub fn streams_max(&self, tenant: &TenantId) -> Option<usize> {
        self.quotas.get(tenant)?.streams_max
    }

    pub fn pipeline_runners_max(&self, tenant: &TenantId) -> Option<usize> {
        self.quotas.get(tenant)?.pipeline_runners_max
    }

    pub fn retained_messages_max(&self, tenant: &TenantId) -> Option<usize> {
        self.quotas.get(tenant)?.retained_messages_max
    }

    /// Subscriptions a session of `tenant` may hold, given the node's cap.
    pub fn subscriptions_per_client_max(&self, tenant: &TenantId, node_max: usize) -> usize {
        self.quotas
            .get(tenant)
            .and_then(|q| q.mqtt_subscriptions_per_client_max)
            .map_or(node_max, |n| n.min(node_max))
    }

    /// Takes one publish of `payload_bytes` from `tenant`'s allowances; the
    /// quota it runs into when one is spent for now (then nothing is taken).
    pub fn take_publish(&self, tenant: &TenantId, payload_bytes: usize) -> Result<(), RateRefusal> {
        let Some(rates) = self.rates.get(tenant) else {
            return Ok(());
        };
        let now = Instant::now();
        let mut r = rates.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = payload_bytes as f64;
        if let Some(b) = &mut r.messages {
            b.refill(now);
            if !b.allows(1.0) {
                return Err(RateRefusal::Messages(b.per_s as u32));
            }
        }
        if let Some(b) = &mut r.bytes {
            b.refill(now);
            if !b.allows(bytes) {
                return Err(RateRefusal::Bytes(b.per_s as u64));
            }
        }
        if let Some(b) = &mut r.messages {
            b.tokens -= 1.0;
        }
        if let Some(b) = &mut r.bytes {
            b.tokens -= bytes;
        }
        Ok(())
    }

    /// A place for MQTT client `client_id` among `tenant`'s connections:
    /// `Ok(None)` when the tenant has no such quota, `Err(max)` when it is
    /// full. A client id already connected (a reconnect taking over its
    /// session) does not count twice.
    pub fn claim_connection(
        &self,
        tenant: &TenantId,
        client_id: &str,
    ) -> Result<Option<ConnectionSlot>, usize> {
        let (Some(table), Some(max)) = (
            self.connections.get(tenant),
            self.quotas.get(tenant).and_then(|q| q.mqtt_connections_max),
        ) else {
            return Ok(None);
        };
        let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
        let full = t.len() >= max;
        match t.get_mut(client_id) {
            Some(n) => *n += 1,
            None if full => return Err(max),
            None => {
                t.insert(client_id.to_owned(), 1);
            }
        }
        Ok(Some(ConnectionSlot {
            table: table.clone(),
            client_id: client_id.to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn take(b: &mut Bucket, n: f64, now: Instant) -> bool {
        b.refill(now);
        let ok = b.allows(n);
        if ok {
            b.tokens -= n;
        }
        ok
    }

    #[test]
    fn a_bucket_allows_one_seconds_worth_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, t0);
        assert_eq!(
            (0..20).filter(|_| take(&mut b, 1.0, t0)).count(),
            10,
            "the burst"
        );
        assert!(
            !take(&mut b, 1.0, t0 + Duration::from_millis(50)),
            "half a token"
        );
        assert!(
            take(&mut b, 1.0, t0 + Duration::from_millis(110)),
            "one more token"
        );
        // Idle for a minute: still only one second's worth.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| take(&mut b, 1.0, later)).count(), 10);
    }

    #[test]
    fn a_message_larger_than_the_allowance_passes_only_from_a_full_bucket() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100.0, t0);
        assert!(take(&mut b, 250.0, t0), "a full bucket lets it through");
        // 150 in debt: 1.5 s until anything passes again.
        assert!(!take(&mut b, 1.0, t0 + Duration::from_millis(1_400)));
        assert!(take(&mut b, 1.0, t0 + Duration::from_millis(1_600)));
        assert!(
            !take(&mut b, 250.0, t0 + Duration::from_millis(1_700)),
            "not full"
        );
    }

    #[test]
    fn only_tenants_with_a_rate_are_limited() {
        let acme = TenantId::new("acme").unwrap();
        let q = Quotas::new(HashMap::from([(
            acme.clone(),
            TenantQuota {
                streams_max: Some(2),
                publish_messages_per_s_max: Some(1),
                ..TenantQuota::default()
            },
        )]));
        assert_eq!(q.take_publish(&acme, 10), Ok(()));
        assert_eq!(q.take_publish(&acme, 10), Err(RateRefusal::Messages(1)));
        let default = TenantId::default_tenant();
        assert!((0..1000).all(|_| q.take_publish(&default, 1 << 20).is_ok()));
        assert_eq!(q.streams_max(&acme), Some(2));
        assert_eq!(q.streams_max(&default), None);
    }

    #[test]
    fn a_refused_publish_takes_from_neither_allowance() {
        let acme = TenantId::new("acme").unwrap();
        let q = Quotas::new(HashMap::from([(
            acme.clone(),
            TenantQuota {
                publish_messages_per_s_max: Some(3),
                publish_bytes_per_s_max: Some(100),
                ..TenantQuota::default()
            },
        )]));
        assert_eq!(q.take_publish(&acme, 60), Ok(()));
        assert_eq!(q.take_publish(&acme, 60), Err(RateRefusal::Bytes(100)));
        // The refusal left the message allowance alone: two more fit.
        assert_eq!(q.take_publish(&acme, 10), Ok(()));
        assert_eq!(q.take_publish(&acme, 10), Ok(()));
        assert_eq!(q.take_publish(&acme, 0), Err(RateRefusal::Messages(3)));
    }

    #[test]
    fn connections_are_counted_per_client_id_and_given_back_on_drop() {
        let acme = TenantId::new("acme").unwrap();
        let q = Quotas::new(HashMap::from([(
            acme.clone(),
            TenantQuota {
                mqtt_connections_max: Some(2),
                ..TenantQuota::default()
            },
        )]));
        let a = q.claim_connection(&acme, "a").unwrap().expect("a slot");
        let b = q.claim_connection(&acme, "b").unwrap().expect("a slot");
        assert_eq!(q.claim_connection(&acme, "c").unwrap_err(), 2);
        // "a" reconnecting takes over its own place, whichever ends first.
        let a2 = q.claim_connection(&acme, "a").unwrap().expect("a slot");
        drop(a);
        assert_eq!(q.claim_connection(&acme, "c").unwrap_err(), 2);
        drop(a2);
        let c = q.claim_connection(&acme, "c").unwrap();
        assert!(c.is_some());
        drop(b);
        assert!(
            q.claim_connection(&TenantId::default_tenant(), "x")
                .unwrap()
                .is_none(),
            "no quota, no slot"
        );
    }
}
