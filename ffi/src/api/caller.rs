//! What the C caller promised, stated once.
//!
//! Every export that takes pointers is an `unsafe extern "C" fn` whose `# Safety` section says
//! what its caller promises of them: each is NULL or valid for what it names (a NUL-terminated
//! string, `len` readable bytes, `count` items, `capacity` writable bytes, a live handle this
//! library returned, an out-parameter), including the pointers inside the structs it points to,
//! and each stays valid, unchanged and used by nobody else until the export returns.
//!
//! The helpers that turn such pointers into Rust values (`bytes_arg`, `str_arg`, `handle_ref`,
//! `out_bytes`, ...), and the helpers built on them (a request from an item, a call that takes a
//! key id), are `unsafe fn`s whose own `# Safety` section asks exactly that promise of their
//! pointer arguments and nothing else. They check the rest themselves: NULL where a value is
//! required, lengths and counts against their limits, alignment, and a handle's magic number.
//!
//! [`from_caller!`] calls one of those helpers, and only those (they are listed in the macro), on
//! pointers that an export received or that an item it received holds, with the one `// SAFETY:`
//! justification all these calls share. An `unsafe` block justified by anything else (writing
//! through an output pointer whose room was checked, freeing a handle, reading memory of our
//! own) is written out with its own `// SAFETY:` comment.

/// Calls a helper whose `# Safety` section asks only what the C caller promised of its pointers
/// (see the [module](self)): `from_caller!(bytes_arg(item.message, item.message_len, "message"))`,
/// `from_caller!(memo.key_id(item.key_id, "key_id"))`.
///
/// Use it only inside an `unsafe fn`, on pointers its `# Safety` section covers: in an export, its
/// own arguments and the pointers in the items they point to, which that section promises valid
/// as the helper asks; in a helper, the pointers its own `# Safety` section passes that same
/// promise on for ("as [`bytes_arg`](super::ffi::bytes_arg)", "valid as `kp_sign_item`
/// documents"). Never on a pointer of the library's own making (a handle it just created): that
/// call gets its own `unsafe` block and comment. A helper missing from the list does not compile
/// here.
///
/// The arguments, closures included, are evaluated before the `unsafe` block, so that it holds
/// the helper's call and nothing else: an unsafe operation in an argument needs its own block
/// (or `from_caller!`). Bound outside the call, a closure gets no parameter types from the
/// helper's signature: write them (`|c: &mut ConfigInner| ...`).
macro_rules! from_caller {
    ($helper:ident ( $($args:tt)* )) => {{
        $crate::api::caller::from_caller!(@listed $helper);
        $crate::api::caller::from_caller!(@bind ($helper) [] $($args)*)
    }};
    ($receiver:ident . $helper:ident ( $($args:tt)* )) => {{
        $crate::api::caller::from_caller!(@listed $helper);
        $crate::api::caller::from_caller!(@bind ($receiver.$helper) [] $($args)*)
    }};
    // Binds the arguments one by one (each `arg` is a distinct variable: macro hygiene).
    (@bind $callee:tt [$($bound:ident)*] $arg:expr $(, $($rest:tt)*)?) => {{
        let arg = $arg;
        $crate::api::caller::from_caller!(@bind $callee [$($bound)* arg] $($($rest)*)?)
    }};
    (@bind $callee:tt [$($bound:ident)*]) => {
        $crate::api::caller::from_caller!(@call $callee [$($bound)*])
    };
    (@call ($($callee:tt)*) [$($bound:ident)*]) => {
        // SAFETY: the helper's `# Safety` section asks of its pointer arguments only what the C
        // caller promised of them in the enclosing export's `# Safety` section (NULL or valid
        // for the length, count or type they name, unchanged and unshared until the export
        // returns), and this macro is used only on such pointers (see its documentation). What
        // the caller did not promise, the helper checks itself: NULL, lengths and counts against
        // their limits, alignment, handles' magic numbers.
        unsafe { $($callee)*($($bound),*) }
    };
    // The helpers whose `# Safety` section asks the caller's promise and nothing else, by file.
    // ffi.rs:
    (@listed bytes_arg) => {};
    (@listed str_arg) => {};
    (@listed opt_str_arg) => {};
    (@listed array_arg) => {};
    (@listed out_bytes) => {};
    (@listed write_out) => {};
    // handles.rs:
    (@listed handle_ref) => {};
    (@listed handle_mut) => {};
    (@listed free_handle) => {};
    (@listed context_arg) => {};
    (@listed set) => {};
    // record.rs:
    (@listed give_record) => {};
    (@listed give_opt_record) => {};
    (@listed give_page) => {};
    // overlap.rs:
    (@listed out_spans) => {};
    (@listed refuse_batch_overlap) => {};
    // control.rs, access.rs, store.rs, custom_key_stores.rs:
    (@listed engine_arg) => {};
    (@listed parse_opt) => {};
    (@listed tags_arg) => {};
    (@listed create_key_request) => {};
    (@listed key_call) => {};
    (@listed metadata_call) => {};
    (@listed alias_call) => {};
    (@listed change) => {};
    (@listed set_store) => {};
    (@listed store_call) => {};
    (@listed password_arg) => {};
    (@listed xks_options_arg) => {};
    // data.rs (`key_id`, `opt_key_id` and `context` are `Memo`'s):
    (@listed key_id) => {};
    (@listed opt_key_id) => {};
    (@listed context) => {};
    (@listed item_arg) => {};
    (@listed outputs_arg) => {};
    (@listed out_room) => {};
    (@listed fill) => {};
    (@listed write_sizes) => {};
    (@listed blob_plaintext_len) => {};
    (@listed decrypt_size) => {};
    (@listed re_encrypt_size) => {};
    (@listed encrypt_request) => {};
    (@listed decrypt_request) => {};
    (@listed re_encrypt_request) => {};
    (@listed data_key_request) => {};
    // asymmetric.rs:
    (@listed sign_request) => {};
    (@listed verify_request) => {};
    (@listed mac_request) => {};
    (@listed verify_mac_request) => {};
    (@listed status_batch) => {};
    (@listed key_pair_request) => {};
    (@listed single_out) => {};
    (@listed pair_outs) => {};
    (@listed deliver_pair) => {};
    (@listed refuse_pair_overlap) => {};
    // envelope.rs (`step` is `EnvelopeStream`'s):
    (@listed keyrings_arg) => {};
    (@listed pool_engine) => {};
    (@listed decrypt_config) => {};
    (@listed give_keyring) => {};
    (@listed step_outs) => {};
    (@listed step) => {};
}
pub(crate) use from_caller;
