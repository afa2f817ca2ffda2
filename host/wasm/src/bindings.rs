//! Every `bindgen!` of the crate, in one place (EXAMPLES.md, "The Wasm
//! boundary"): the host side of `wit/handler.wit`. Keeping the generated
//! code in one module makes it obvious which Rust types come from the
//! contract and keeps the rest of the crate on plain structs.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "sluice:handler/handler",
    // Messages go into the guest borrowed from the caller's `Message`:
    // owning bindings meant cloning every field of every message on the
    // host before lowering copied it again into the guest.
    ownership: Borrowing { duplicate_if_necessary: true },
    // Host imports cannot fail in a way the guest must see as a trap: a
    // broken limit is reported as a WIT value (`state-error`), everything
    // else succeeds. So no import is `trappable`, and none is `async`:
    // handlers run on a blocking worker thread, never on the I/O reactor.
});
