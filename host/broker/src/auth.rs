//! Who a client is and what it may do: users with Argon2id password hashes,
//! per-user topic ACLs for publish and subscribe, and the tenant each user
//! belongs to (`default` unless the users file says otherwise), which is
//! the namespace every call of that user acts in.
//!
//! ACL patterns are topic filters in which `%u` stands for the username and
//! `%c` for the client id, so `devices/%c/#` gives each device its own tree.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use sha2::{Digest, Sha256};
use sluice_core::{TenantId, TopicFilter, TopicName};

/// Credentials remembered as verified, at most; when full, the memory is
/// cleared and refilled (each entry costs one Argon2 verification again).
const VERIFIED_CREDENTIALS_MAX: usize = 4096;

/// One user as configured (the `sluice` binary reads the users file into these).
#[derive(Debug, Clone)]
pub struct UserSpec {
    pub name: String,
    /// A PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$…` (see `sluice passwd`).
    pub password_hash: String,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    /// A superuser: every topic, whatever `publish` and `subscribe` say,
    /// and the HTTP calls for admins (managing streams, handlers and
    /// pipelines, `/metrics`, reversing tokens, the audit log), within
    /// its own tenant only.
    pub admin: bool,
    /// The tenant whose streams, handlers, pipelines, secret and vault the
    /// user's calls reach; no call reaches another tenant's.
    pub tenant: TenantId,
}

/// Authentication options of a node.
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// `None`: no users file; every client is anonymous with full access.
    pub users: Option<Vec<UserSpec>>,
    /// With a users file: whether clients without a username may connect
    /// (with the ACL of a user named `anonymous`, if there is one, else none).
    pub allow_anonymous: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("user {user:?}: the password hash is not a PHC string: {reason}")]
    BadHash { user: String, reason: String },
    #[error("user {user:?}: ACL pattern {pattern:?} is not a topic filter: {reason}")]
    BadPattern {
        user: String,
        pattern: String,
        reason: String,
    },
    #[error("user {0:?} is listed twice")]
    Duplicate(String),
}

/// Why a CONNECT was refused; maps to a CONNACK reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadCredentials,
    NotAuthorized,
}

/// Topic permissions.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    publish: Vec<String>,
    subscribe: Vec<String>,
}

impl Acl {
    fn check(
        patterns: &[String],
        user: Option<&str>,
        client: &str,
        allowed: impl Fn(&TopicFilter) -> bool,
    ) -> bool {
        patterns.iter().any(|p| {
            let p = p
                .replace("%u", user.unwrap_or("\u{0}"))
                .replace("%c", client);
            TopicFilter::new(&p).is_ok_and(|f| allowed(&f))
        })
    }
}

/// An authenticated client.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    pub username: Option<String>,
    pub client_id: String,
    /// `None`: everything is allowed.
    acl: Option<Arc<Acl>>,
    /// `admin = true` in the users file (or no users file at all).
    pub admin: bool,
}

impl Principal {
    pub fn may_publish(&self, topic: &TopicName) -> bool {
        match &self.acl {
            None => true,
            Some(acl) => Acl::check(
                &acl.publish,
                self.username.as_deref(),
                &self.client_id,
                |f| f.matches(topic),
            ),
        }
    }

    /// A subscription is allowed when an ACL filter covers every topic it can match.
    pub fn may_subscribe(&self, filter: &TopicFilter) -> bool {
        match &self.acl {
            None => true,
            Some(acl) => Acl::check(
                &acl.subscribe,
                self.username.as_deref(),
                &self.client_id,
                |f| covers(f, filter),
            ),
        }
    }
}

/// Whether every topic `inner` matches is also matched by `outer`.
pub fn covers(outer: &TopicFilter, inner: &TopicFilter) -> bool {
    let mut o = outer.as_str().split('/');
    let mut i = inner.as_str().split('/');
    loop {
        match (o.next(), i.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(l)) if l != "#" => {}
            (Some(a), Some(b)) if a == b && a != "+" && a != "#" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

struct User {
    hash: String,
    acl: Arc<Acl>,
    admin: bool,
    tenant: TenantId,
}

/// The node's users.
pub struct Authenticator {
    users: Option<HashMap<String, User>>,
    allow_anonymous: bool,
    /// Name and salted SHA-256 of password pairs that passed Argon2, so a
    /// client sending the same credentials on every HTTP request pays the
    /// deliberately slow hash once, not per request. The salt is random per
    /// process; no password is kept.
    verified: Mutex<HashSet<(String, [u8; 32])>>,
    salt: [u8; 32],
}

impl Authenticator {
    pub fn new(options: &AuthOptions) -> Result<Self, AuthError> {
        let users = match &options.users {
            None => None,
            Some(specs) => {
                let mut users = HashMap::new();
                for u in specs {
                    PasswordHash::new(&u.password_hash).map_err(|e| AuthError::BadHash {
                        user: u.name.clone(),
                        reason: e.to_string(),
                    })?;
                    for p in u.publish.iter().chain(&u.subscribe) {
                        let probe = p.replace("%u", "u").replace("%c", "c");
                        TopicFilter::new(&probe).map_err(|e| AuthError::BadPattern {
                            user: u.name.clone(),
                            pattern: p.clone(),
                            reason: e.to_string(),
                        })?;
                    }
                    let acl = Arc::new(Acl {
                        publish: u.publish.clone(),
                        subscribe: u.subscribe.clone(),
                    });
                    if users
                        .insert(
                            u.name.clone(),
                            User {
                                hash: u.password_hash.clone(),
                                acl,
                                admin: u.admin,
                                tenant: u.tenant.clone(),
                            },
                        )
                        .is_some()
                    {
                        return Err(AuthError::Duplicate(u.name.clone()));
                    }
                }
                Some(users)
            }
        };
        Ok(Self {
            users,
            allow_anonymous: options.allow_anonymous,
            verified: Mutex::default(),
            salt: rand::random(),
        })
    }

    /// Whether checking credentials costs real work (a users file is
    /// configured); without one every client is admitted at once.
    pub fn checks_passwords(&self) -> bool {
        self.users.is_some()
    }

    /// Checks credentials. Blocking: Argon2 is deliberately slow, so call it
    /// off the I/O threads.
    pub fn authenticate(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
        client_id: &str,
    ) -> Result<Principal, Refusal> {
        let principal = |username: Option<&str>, acl, admin, tenant| Principal {
            tenant,
            username: username.map(str::to_owned),
            client_id: client_id.to_owned(),
            acl,
            admin,
        };
        let Some(users) = &self.users else {
            return Ok(principal(username, None, true, TenantId::default_tenant()));
        };
        match (username, password) {
            (None, _) if self.allow_anonymous => {
                let (acl, tenant) = users
                    .get("anonymous")
                    .map(|u| (u.acl.clone(), u.tenant.clone()))
                    .unwrap_or_else(|| (Arc::default(), TenantId::default_tenant()));
                Ok(principal(None, Some(acl), false, tenant))
            }
            (None, _) => Err(Refusal::NotAuthorized),
            (Some(name), Some(pw)) => {
                let user = self
                    .verify(users, name, pw)
                    .ok_or(Refusal::BadCredentials)?;
                // An admin is a superuser: no ACL limits it.
                let acl = (!user.admin).then(|| user.acl.clone());
                Ok(principal(Some(name), acl, user.admin, user.tenant.clone()))
            }
            (Some(_), None) => Err(Refusal::BadCredentials),
        }
    }

    /// Whether credentials would be answered from memory, without Argon2
    /// (so a caller can skip moving the check off the I/O threads).
    pub fn remembers(&self, name: &str, password: &[u8]) -> bool {
        self.is_verified(&self.key(name, password))
    }

    /// What a verified pair is remembered by.
    fn key(&self, name: &str, password: &[u8]) -> (String, [u8; 32]) {
        let fingerprint = Sha256::new()
            .chain_update(self.salt)
            .chain_update(password)
            .finalize()
            .into();
        (name.to_owned(), fingerprint)
    }

    fn is_verified(&self, key: &(String, [u8; 32])) -> bool {
        self.verified
            .lock()
            .expect("credentials lock")
            .contains(key)
    }

    /// The user `name` if `password` is theirs: from memory, or by Argon2
    /// (blocking). Only successes are remembered.
    fn verify<'a>(
        &self,
        users: &'a HashMap<String, User>,
        name: &str,
        password: &[u8],
    ) -> Option<&'a User> {
        let user = users.get(name)?;
        let key = self.key(name, password);
        if self.is_verified(&key) {
            return Some(user);
        }
        let hash = PasswordHash::new(&user.hash).ok()?;
        Argon2::default().verify_password(password, &hash).ok()?;
        let mut verified = self.verified.lock().expect("credentials lock");
        if verified.len() >= VERIFIED_CREDENTIALS_MAX {
            verified.clear();
        }
        verified.insert(key);
        Some(user)
    }
}

/// Hashes a password for the users file (Argon2id, random salt).
pub fn hash_password(password: &[u8]) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }

    #[test]
    fn covering_filters() {
        assert!(covers(&f("a/#"), &f("a/b/+")));
        assert!(covers(&f("a/#"), &f("a")));
        assert!(covers(&f("a/+"), &f("a/b")));
        assert!(covers(&f("a/+"), &f("a/+")));
        assert!(!covers(&f("a/+"), &f("a/#")));
        assert!(!covers(&f("a/b"), &f("a/+")));
        assert!(!covers(&f("a/b"), &f("a/b/c")));
        assert!(covers(&f("#"), &f("x/#")));
    }

    #[test]
    fn users_passwords_and_acls() {
        let alice = UserSpec {
            name: "alice".into(),
            password_hash: hash_password(b"wonderland"),
            publish: vec!["sensors/%c/#".into()],
            subscribe: vec!["alerts/+".into()],
            admin: false,
            tenant: TenantId::default_tenant(),
        };
        let carol = UserSpec {
            name: "carol".into(),
            password_hash: hash_password(b"acme"),
            publish: vec![],
            subscribe: vec![],
            admin: true,
            tenant: TenantId::new("acme").unwrap(),
        };
        let auth = Authenticator::new(&AuthOptions {
            users: Some(vec![alice, carol]),
            allow_anonymous: false,
        })
        .unwrap();
        let carol = auth
            .authenticate(Some("carol"), Some(b"acme"), "c")
            .unwrap();
        assert_eq!(
            carol.tenant.as_str(),
            "acme",
            "a user acts in its own tenant"
        );
        assert_eq!(
            auth.authenticate(Some("alice"), Some(b"wrong"), "c1")
                .unwrap_err(),
            Refusal::BadCredentials
        );
        assert_eq!(
            auth.authenticate(Some("bob"), Some(b"x"), "c1")
                .unwrap_err(),
            Refusal::BadCredentials
        );
        assert_eq!(
            auth.authenticate(None, None, "c1").unwrap_err(),
            Refusal::NotAuthorized
        );
        let p = auth
            .authenticate(Some("alice"), Some(b"wonderland"), "dev-1")
            .unwrap();
        assert_eq!(p.tenant, TenantId::default_tenant());
        assert!(p.may_publish(&TopicName::new("sensors/dev-1/temp").unwrap()));
        assert!(
            !p.may_publish(&TopicName::new("sensors/dev-2/temp").unwrap()),
            "%c is the client's own id"
        );
        assert!(p.may_subscribe(&f("alerts/fire")));
        assert!(
            !p.may_subscribe(&f("alerts/#")),
            "a wider filter than granted"
        );
    }

    #[test]
    fn verified_credentials_are_remembered_and_wrong_ones_are_not() {
        let alice = UserSpec {
            name: "alice".into(),
            password_hash: hash_password(b"wonderland"),
            publish: vec![],
            subscribe: vec![],
            admin: true,
            tenant: TenantId::default_tenant(),
        };
        let auth = Authenticator::new(&AuthOptions {
            users: Some(vec![alice]),
            allow_anonymous: false,
        })
        .unwrap();
        assert!(!auth.remembers("alice", b"wonderland"));
        assert!(
            auth.authenticate(Some("alice"), Some(b"nope"), "c")
                .is_err()
        );
        assert!(
            !auth.remembers("alice", b"nope"),
            "a failure is not remembered"
        );
        let p = auth
            .authenticate(Some("alice"), Some(b"wonderland"), "c")
            .unwrap();
        assert!(p.admin);
        assert!(
            p.may_publish(&TopicName::new("any/where").unwrap()),
            "an admin is a superuser"
        );
        assert!(auth.remembers("alice", b"wonderland"));
        assert!(!auth.remembers("alice", b"wonderlan"), "only that password");
        assert!(!auth.remembers("bob", b"wonderland"), "only that user");
        // Remembered or not, a wrong password still fails.
        assert!(
            auth.authenticate(Some("alice"), Some(b"nope"), "c")
                .is_err()
        );
        assert!(
            auth.authenticate(Some("alice"), Some(b"wonderland"), "c")
                .is_ok_and(|p| p.admin),
            "remembered, still an admin"
        );
    }

    #[test]
    fn bad_hashes_and_patterns_are_refused() {
        let bad = UserSpec {
            name: "x".into(),
            password_hash: "plain".into(),
            publish: vec![],
            subscribe: vec![],
            admin: false,
            tenant: TenantId::default_tenant(),
        };
        assert!(matches!(
            Authenticator::new(&AuthOptions {
                users: Some(vec![bad]),
                allow_anonymous: false
            }),
            Err(AuthError::BadHash { .. })
        ));
        let bad = UserSpec {
            name: "x".into(),
            password_hash: hash_password(b"p"),
            publish: vec!["a/#/b".into()],
            subscribe: vec![],
            admin: false,
            tenant: TenantId::default_tenant(),
        };
        assert!(matches!(
            Authenticator::new(&AuthOptions {
                users: Some(vec![bad]),
                allow_anonymous: false
            }),
            Err(AuthError::BadPattern { .. })
        ));
    }
}
