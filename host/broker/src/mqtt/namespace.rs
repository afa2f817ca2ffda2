//! Tenants inside MQTT's single namespace. The router, the retained
//! messages and the session store know nothing of tenants; instead another
//! tenant's topics, filters and client ids are given a `$tenant/{name}/`
//! prefix on the way in and lose it on the way out. The prefix is a
//! `$`-level, which wildcards at the first level never match (MQTT 5.0
//! §4.7.2), and the default tenant's clients may not name it, so no
//! tenant's subscriptions can reach another's messages.

use std::borrow::Cow;

use sluice_core::topic::{TOPIC_BYTES_MAX, TOPIC_LEVELS_MAX};
use sluice_core::{TenantId, TopicFilter, TopicName};

/// The first level of every other tenant's topics inside the broker.
const LEVEL: &str = "$tenant";
/// What every other tenant's names start with: `LEVEL` and a `/`.
const LEVEL_SLASH: &str = "$tenant/";
/// Levels the prefix adds: `$tenant` and the tenant's name.
const PREFIX_LEVELS: usize = 2;

fn prefix(tenant: &TenantId) -> Option<String> {
    (!tenant.is_default()).then(|| format!("{LEVEL_SLASH}{tenant}/"))
}

/// Whether `topic` still is a topic under `tenant`'s prefix, worked out
/// without building it: a refusal up front costs no allocation.
pub fn fits(tenant: &TenantId, topic: &TopicName) -> bool {
    if tenant.is_default() {
        return true;
    }
    let bytes = LEVEL_SLASH.len() + tenant.as_str().len() + 1 + topic.as_str().len();
    topic.levels().count() + PREFIX_LEVELS <= TOPIC_LEVELS_MAX && bytes <= TOPIC_BYTES_MAX
}

/// `topic` as the router knows it (the default tenant's, borrowed as
/// is); `None` when the prefix makes it too deep or too long to be a topic.
pub fn topic<'a>(tenant: &TenantId, topic: &'a TopicName) -> Option<Cow<'a, TopicName>> {
    if !fits(tenant, topic) {
        return None;
    }
    match prefix(tenant) {
        None => Some(Cow::Borrowed(topic)),
        Some(p) => TopicName::new(&format!("{p}{topic}")).ok().map(Cow::Owned),
    }
}

/// `filter` (without any `$share/{group}/`) as the router knows it.
pub fn filter(tenant: &TenantId, filter: &TopicFilter) -> Option<TopicFilter> {
    match prefix(tenant) {
        None => Some(filter.clone()),
        Some(p) => TopicFilter::new(&format!("{p}{filter}")).ok(),
    }
}

/// A client id as the router and the session store know it. Two tenants'
/// clients may use the same id without meeting.
pub fn client_id(tenant: &TenantId, id: &str) -> String {
    match prefix(tenant) {
        None => id.to_owned(),
        Some(p) => format!("{p}{id}"),
    }
}

/// Whether a default-tenant client names the reserved level, which only
/// the broker may write (topics, filters and client ids alike).
pub fn is_reserved(name: &str) -> bool {
    name == LEVEL || name.starts_with(LEVEL_SLASH)
}

/// The topic as its subscriber's tenant writes it: the router's topic
/// without the prefix.
pub fn external_topic(internal: &str) -> &str {
    &internal[tenant_prefix(internal).map_or(0, str::len)..]
}

/// The tenant a router topic belongs to: the one its prefix names, or
/// the default tenant's when it has none; `None` for a prefix that names
/// no valid tenant.
pub fn tenant_of(internal: &str) -> Option<TenantId> {
    match tenant_prefix(internal) {
        Some(p) => TenantId::new(&p[LEVEL_SLASH.len()..p.len() - 1]).ok(),
        None => Some(TenantId::default_tenant()),
    }
}

/// The `$tenant/{name}/` a router topic starts with, if it is another
/// tenant's.
pub fn tenant_prefix(internal: &str) -> Option<&str> {
    let rest = internal.strip_prefix(LEVEL_SLASH)?;
    let end = internal.len() - rest.len() + rest.find('/')? + 1;
    Some(&internal[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TopicName {
        TopicName::new(s).unwrap()
    }

    #[test]
    fn a_router_topic_names_its_tenant() {
        let acme = TenantId::new("acme").unwrap();
        let name = t("a/b");
        let inside = topic(&acme, &name).unwrap();
        assert_eq!(tenant_of(inside.as_str()), Some(acme));
        assert_eq!(tenant_of("a/b"), Some(TenantId::default_tenant()));
    }

    #[test]
    fn the_default_tenant_is_unchanged_and_others_are_prefixed() {
        let default = TenantId::default_tenant();
        let acme = TenantId::new("acme").unwrap();
        assert_eq!(topic(&default, &t("a/b")).unwrap().as_str(), "a/b");
        let ab = t("a/b");
        let inside = topic(&acme, &ab).unwrap();
        assert_eq!(inside.as_str(), "$tenant/acme/a/b");
        assert_eq!(external_topic(inside.as_str()), "a/b");
        assert_eq!(external_topic("a/b"), "a/b");
        assert_eq!(tenant_prefix(inside.as_str()), Some("$tenant/acme/"));
        assert_eq!(tenant_prefix("a/b"), None);
        assert_eq!(client_id(&acme, "c1"), "$tenant/acme/c1");
        assert_eq!(client_id(&default, "c1"), "c1");
        let f = filter(&acme, &TopicFilter::new("#").unwrap()).unwrap();
        assert!(f.matches(&inside));
        assert!(
            !TopicFilter::new("#").unwrap().matches(&inside),
            "the $ rule"
        );
        assert!(!TopicFilter::new("+/acme/#").unwrap().matches(&inside));
        assert!(is_reserved("$tenant/acme/#") && is_reserved("$tenant"));
        assert!(!is_reserved("$tenants/x") && !is_reserved("tenant/x"));
        // The two extra levels count against the topic depth limit.
        let deep = vec!["x"; 127].join("/");
        assert!(topic(&default, &t(&deep)).is_some());
        assert!(topic(&acme, &t(&deep)).is_none());
        assert!(!fits(&acme, &t(&deep)) && fits(&default, &t(&deep)));
        let shallower = vec!["x"; 126].join("/");
        assert!(fits(&acme, &t(&shallower)) && topic(&acme, &t(&shallower)).is_some());
        // And bytes: the prefix counts against the 65,535.
        let long = "x".repeat(TOPIC_BYTES_MAX - "$tenant/acme/".len());
        assert!(fits(&acme, &t(&long)) && topic(&acme, &t(&long)).is_some());
        let longer = format!("{long}x");
        assert!(!fits(&acme, &t(&longer)) && topic(&acme, &t(&longer)).is_none());
    }
}
