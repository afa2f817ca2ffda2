//! The Rust SDK for Sluice handlers. It exists so that a handler is a few
//! lines: implement [`Handler`], call [`export_handler!`], build with
//! `cargo build --target wasm32-wasip2 --release`. It hides the generated
//! wit-bindgen code, keeps the handler's state between calls, implements the
//! batch entry point on top of `handle` (so the host is free to call either),
//! and adds typed access to messages and JSON payloads.
//!
//! ```ignore
//! use sluice_handler_sdk::{export_handler, Handler, HandlerError, Message, Output};
//!
//! struct Upper;
//! impl Handler for Upper {
//!     fn init(_config: &str) -> Result<Self, String> { Ok(Upper) }
//!     fn handle(&mut self, mut msg: Message) -> Result<Vec<Output>, HandlerError> {
//!         msg.payload = msg.payload.to_ascii_uppercase();
//!         Ok(vec![Output::default_topic(msg)])
//!     }
//! }
//! export_handler!(Upper);
//! ```

// The generated code names this crate by its absolute path (so that it
// also works from the guests' `export_handler!` expansion).
extern crate self as sluice_handler_sdk;

#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    // One `generate!` for the whole SDK; guests never call wit-bindgen
    // themselves, so they cannot drift from the contract in `wit/`.
    wit_bindgen::generate!({
        path: "../../wit",
        world: "sluice:handler/handler",
        pub_export_macro: true,
        export_macro_name: "__export_handler_world",
        default_bindings_module: "::sluice_handler_sdk::bindings",
        runtime_path: "::sluice_handler_sdk::__private::wit_bindgen::rt",
    });
}

#[cfg(all(feature = "call-arena", target_family = "wasm"))]
mod arena;
pub mod host;
mod message;

/// The guest's allocator: a per-call arena over the general one (see
/// `arena.rs`). Off with `default-features = false`, for a handler that
/// brings its own; only in Wasm, since a native build may have threads.
#[cfg(all(feature = "call-arena", target_family = "wasm"))]
#[global_allocator]
static ALLOCATOR: arena::CallArena = arena::CallArena::new();

/// Runs `f` (a handler's `init`) with what it allocates kept out of the
/// per-call arena.
#[cfg(all(feature = "call-arena", target_family = "wasm"))]
fn persistent<R>(f: impl FnOnce() -> R) -> R {
    ALLOCATOR.persistent(f)
}
#[cfg(not(all(feature = "call-arena", target_family = "wasm")))]
fn persistent<R>(f: impl FnOnce() -> R) -> R {
    f()
}

pub use bindings::sluice::handler::types::{HandlerError, Message, Output};
pub use serde_json as json;

/// The anonymisation library (`features = ["anon"]`): detectors, operators
/// and policies. Pass [`host_pseudonymizer`] where it asks for a
/// pseudonymizer, so pseudonyms come from the tenant's secret in the host.
#[cfg(feature = "anon")]
pub use sluice_anon as anon;

/// The host's keyed pseudonyms and tokens as an [`anon::Pseudonymizer`].
#[cfg(feature = "anon")]
pub fn host_pseudonymizer() -> impl anon::Pseudonymizer {
    struct HostKeys;
    impl anon::Pseudonymizer for HostKeys {
        fn pseudonymize(&mut self, domain: &str, value: &str) -> String {
            host::pseudonymize(domain, value)
        }
        fn tokenize(&mut self, domain: &str, value: &str) -> Result<String, String> {
            host::tokenize(domain, value)
        }
    }
    HostKeys
}

/// A message handler. One value lives per Wasm instance: `init` builds it
/// from the pipeline step's config, then `handle` is called once per message.
/// The host may throw the instance away at any time (after a trap, or to
/// recycle memory), so keep durable state in [`host::state`], not here.
pub trait Handler: Sized + 'static {
    /// Parses the configuration (usually JSON, see [`parse_config`]). An
    /// error here fails the deployment of the pipeline.
    fn init(config: &str) -> Result<Self, String>;

    /// Handles one message: return no output to drop it, one to pass it on,
    /// several to fan out. Return a [`HandlerError`] for bad input: the host
    /// retries and then dead-letters the message. A panic ends the instance.
    fn handle(&mut self, message: Message) -> Result<Vec<Output>, HandlerError>;
}

/// Parses a JSON configuration into `T`, turning an empty string into `{}`
/// so handlers with all-default options need no config.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    let text = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    serde_json::from_str(text).map_err(|e| format!("invalid handler config: {e}"))
}

/// Exports a [`Handler`] implementation as the component's `handler` world.
/// Use it once per crate, at the top level.
#[macro_export]
macro_rules! export_handler {
    ($handler:ty) => {
        const _: () = {
            struct __SluiceExport;

            ::std::thread_local! {
                static __SLUICE_HANDLER: ::core::cell::RefCell<::core::option::Option<$handler>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            impl $crate::bindings::Guest for __SluiceExport {
                fn init(config: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::init::<$handler>(&__SLUICE_HANDLER, &config)
                }
                fn handle(
                    message: $crate::Message,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::Output>, $crate::HandlerError> {
                    $crate::__private::handle::<$handler>(&__SLUICE_HANDLER, message)
                }
                fn handle_batch(
                    messages: ::std::vec::Vec<$crate::Message>,
                ) -> ::std::vec::Vec<::core::result::Result<::std::vec::Vec<$crate::Output>, $crate::HandlerError>> {
                    $crate::__private::handle_batch::<$handler>(&__SLUICE_HANDLER, messages)
                }
            }

            $crate::bindings::__export_handler_world!(__SluiceExport with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    //! Support for [`export_handler!`]; not a public API.
    pub use wit_bindgen;

    use super::{Handler, HandlerError, Message, Output};
    use std::cell::RefCell;
    use std::thread::LocalKey;

    pub type Slot<H> = LocalKey<RefCell<Option<H>>>;

    pub fn init<H: Handler>(slot: &'static Slot<H>, config: &str) -> Result<(), String> {
        let handler = super::persistent(|| H::init(config))?;
        slot.with(|s| *s.borrow_mut() = Some(handler));
        Ok(())
    }

    pub fn handle<H: Handler>(
        slot: &'static Slot<H>,
        message: Message,
    ) -> Result<Vec<Output>, HandlerError> {
        slot.with(|s| match s.borrow_mut().as_mut() {
            Some(h) => h.handle(message),
            None => Err(not_initialised()),
        })
    }

    pub fn handle_batch<H: Handler>(
        slot: &'static Slot<H>,
        messages: Vec<Message>,
    ) -> Vec<Result<Vec<Output>, HandlerError>> {
        slot.with(|s| match s.borrow_mut().as_mut() {
            Some(h) => messages.into_iter().map(|m| h.handle(m)).collect(),
            None => messages.iter().map(|_| Err(not_initialised())).collect(),
        })
    }

    fn not_initialised() -> HandlerError {
        // The host always calls `init` first; reaching this is a host bug,
        // reported as a value so it shows up in the dead-letter reason.
        HandlerError::new("not_initialised", "handle called before init")
    }
}
