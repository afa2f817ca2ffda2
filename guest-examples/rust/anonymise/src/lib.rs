//! `anonymise`: the ready-made handler that takes personal data out of
//! messages as a policy says, with no code: rules by JSON path and
//! free-text scanning of every other string (docs/anonymisation.md). The
//! work is `sluice-anon`'s; this file only binds it to the handler world.
//! Pseudonyms and tokens come from the host, keyed by the tenant's secret,
//! which the guest never sees; a token the host refuses fails the message. Each output carries `sluice-anon-audit`, the count of
//! entities handled per kind (never their values), and the same counts go
//! to the handler's counters.
//!
//! Config: the policy, e.g. `{"rules": [{"path": "$.email", "op":
//! "pseudonymize"}], "scan": {"default": {"op": "replace"}}}`. A bad policy
//! fails `init`, so the pipeline is refused with the reason.

use sluice_handler_sdk::anon::{Policy, policy::ApplyError};
use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler, host};

/// The header each output carries with the audit counts.
const AUDIT_HEADER: &str = "sluice-anon-audit";

struct Anonymise {
    policy: Policy,
}

impl Handler for Anonymise {
    fn init(config: &str) -> Result<Self, String> {
        let policy = Policy::from_json(config).map_err(|e| e.to_string())?;
        Ok(Anonymise { policy })
    }

    fn handle(&mut self, mut message: Message) -> Result<Vec<Output>, HandlerError> {
        let mut pseudo = sluice_handler_sdk::host_pseudonymizer();
        let outcome = self
            .policy
            .apply(&message.payload, message.content_type.as_deref(), &mut pseudo)
            .map_err(|e| match e {
                ApplyError::BadJson(m) => HandlerError::new("bad_json", m),
                ApplyError::Binary => HandlerError::new("binary_payload", e.to_string()),
                ApplyError::Tokenize(m) => HandlerError::new("tokenize_refused", m),
            })?;
        for (kind, n) in &outcome.audit {
            host::counter_add(kind, u64::from(*n));
        }
        message.payload = outcome.payload;
        message.headers.retain(|(k, _)| k != AUDIT_HEADER);
        let audit = serde_json::to_string(&outcome.audit).expect("counts serialise");
        message.headers.push((AUDIT_HEADER.to_owned(), audit));
        Ok(vec![Output::default_topic(message)])
    }
}

export_handler!(Anonymise);
