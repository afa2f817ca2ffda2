//! `host-probe`: a test guest that calls one host import per message, as
//! the message's JSON payload commands, and answers in its output payload.
//! It exists so the runtime's tests can check each import (state rollback,
//! pseudonyms per tenant, counters, logging) and that WASI gives a guest no
//! environment, files or network to find the tenant secret in.
//!
//! Commands: `{"op": "pseudonymize", "domain": d, "value": v}`,
//! `{"op": "get", "key": k}`, `{"op": "set", "key": k, "value": v}`,
//! `{"op": "set-then-panic", ...}`, `{"op": "set-then-error", ...}`,
//! `{"op": "delete", "key": k}`, `{"op": "count", "name": n}`,
//! `{"op": "log"}`, `{"op": "clock"}`, `{"op": "snoop"}` (env, files, net),
//! `{"op": "echo"}`, `{"op": "calls"}` (messages this instance has seen).

use serde::Deserialize;
use sluice_handler_sdk::host::{self, Level};
use sluice_handler_sdk::{Handler, HandlerError, Message, Output, export_handler};

#[derive(Deserialize)]
struct Cmd {
    op: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    name: String,
}

struct Probe {
    calls: u64,
}

impl Handler for Probe {
    fn init(config: &str) -> Result<Self, String> {
        if config == "fail" {
            return Err("init refused: config was \"fail\"".into());
        }
        Ok(Probe { calls: 0 })
    }

    fn handle(&mut self, message: Message) -> Result<Vec<Output>, HandlerError> {
        self.calls += 1;
        let cmd: Cmd = message.json()?;
        let answer: String = match cmd.op.as_str() {
            "pseudonymize" => host::pseudonymize(&cmd.domain, &cmd.value),
            "get" => match host::state::get(&cmd.key) {
                Some(v) => String::from_utf8_lossy(&v).into_owned(),
                None => "<none>".into(),
            },
            "set" => match host::state::set(&cmd.key, cmd.value.as_bytes()) {
                Ok(()) => "ok".into(),
                Err(e) => e.name().to_owned(),
            },
            "set-then-panic" => {
                let _ = host::state::set(&cmd.key, cmd.value.as_bytes());
                panic!("probe panicked after a state write");
            }
            "set-then-error" => {
                let _ = host::state::set(&cmd.key, cmd.value.as_bytes());
                return Err(HandlerError::new("probe", "failed after a state write"));
            }
            "delete" => {
                host::state::delete(&cmd.key);
                "ok".into()
            }
            "count" => {
                host::counter_add(&cmd.name, 1);
                "ok".into()
            }
            "log" => {
                host::log(Level::Info, "probe says hello", &[("k", "v")]);
                "ok".into()
            }
            "clock" => host::now_ms().to_string(),
            "snoop" => snoop(),
            "echo" => return Ok(vec![Output::default_topic(message)]),
            "calls" => self.calls.to_string(),
            other => return Err(HandlerError::new("unknown_op", other)),
        };
        Ok(vec![Output::default_topic(Message::new(
            message.topic,
            answer,
        ))])
    }
}

/// Everything a guest could use to find a secret outside the contract.
fn snoop() -> String {
    let env = std::env::vars().count();
    let args = std::env::args().count();
    let root = std::fs::read_dir("/").is_ok();
    let cwd = std::fs::read_dir(".").is_ok();
    let environ = std::fs::read("/proc/self/environ").is_ok();
    let net = std::net::TcpStream::connect("127.0.0.1:80").is_ok();
    format!("env={env} args={args} root={root} cwd={cwd} environ={environ} net={net}")
}

export_handler!(Probe);
