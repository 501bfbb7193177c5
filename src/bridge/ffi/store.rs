//! OSSL_STORE with a PIN callback: a token key loaded through the pkcs11-provider by
//! its URI, the PIN handed over in memory and asked for at most once.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use foreign_types::{foreign_type, ForeignType};
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};

use super::{
    cstring, cvt, OSSL_STORE_INFO_get1_PKEY, OSSL_STORE_INFO_get_type, OSSL_STORE_INFO_free, OSSL_STORE_close,
    OSSL_STORE_eof, OSSL_STORE_expect, OSSL_STORE_load, OSSL_STORE_open_ex, UI_UTIL_wrap_read_pem_callback,
    UI_destroy_method, OSSL_STORE_CTX, OSSL_STORE_INFO, OSSL_STORE_INFO_PKEY, UI_METHOD,
};

foreign_type! {
    type CType = UI_METHOD;
    fn drop = UI_destroy_method;
    /// An owned `UI_METHOD`.
    pub struct UiMethod;
    /// A borrowed `UI_METHOD`.
    pub struct UiMethodRef;
}

foreign_type! {
    type CType = OSSL_STORE_INFO;
    fn drop = OSSL_STORE_INFO_free;
    /// An owned `OSSL_STORE_INFO`.
    pub struct StoreInfo;
    /// A borrowed `OSSL_STORE_INFO`.
    pub struct StoreInfoRef;
}

/// `OSSL_STORE_close` as a drop function (it returns a status foreign_type! cannot take).
unsafe fn store_close(ctx: *mut OSSL_STORE_CTX) {
    // SAFETY: called once by StoreCtx's drop on the pointer it owns.
    unsafe {
        OSSL_STORE_close(ctx);
    }
}

foreign_type! {
    type CType = OSSL_STORE_CTX;
    fn drop = store_close;
    /// An open `OSSL_STORE_CTX`; closed on drop.
    pub struct StoreCtx;
    /// A borrowed `OSSL_STORE_CTX`.
    pub struct StoreCtxRef;
}

/// What the PIN callback reads: the PIN bytes, and how often it was asked.
struct PinData<'a> {
    pin: &'a [u8],
    calls: Cell<u32>,
}

/// The `pem_password_cb` behind the UI_METHOD: copies the PIN into OpenSSL's buffer.
/// Answers once only: a provider that asks again after a failed login gets nothing,
/// so a wrong PIN is never retried (tokens lock the PIN after a few failures).
unsafe extern "C" fn pin_callback(
    buf: *mut c_char,
    size: c_int,
    _rwflag: c_int,
    u: *mut c_void,
) -> c_int {
    if u.is_null() || buf.is_null() {
        return -1;
    }
    // SAFETY: `u` is the `PinData` that `load_private_key` passes as ui_data; it outlives
    // the store context, and this callback only runs inside OSSL_STORE calls made there.
    let data = unsafe { &*(u as *const PinData) };
    let n = data.calls.get();
    data.calls.set(n + 1);
    let len = data.pin.len();
    if n > 0 || size < 0 || len > size as usize {
        return -1;
    }
    // SAFETY: `buf` has room for `size` bytes (OpenSSL's contract) and `len <= size`.
    unsafe { ptr::copy_nonoverlapping(data.pin.as_ptr(), buf.cast::<u8>(), len) };
    len as c_int
}

/// The outcome of loading private keys through OSSL_STORE.
pub struct LoadedKeys {
    pub keys: Vec<PKey<Private>>,
    /// How many times the provider asked for the PIN.
    pub pin_requests: u32,
}

/// Opens `uri` with OSSL_STORE (through whichever provider handles the scheme),
/// expecting private keys, and returns every private key it yields. The PIN goes to
/// the provider through a UI_METHOD and stays in memory.
pub fn load_private_keys(uri: &str, pin: &[u8]) -> Result<LoadedKeys, ErrorStack> {
    let uri = cstring(uri)?;
    // SAFETY: `pin_callback` has the pem_password_cb signature; the returned method is
    // owned by `ui` (freed with UI_destroy_method) right after the null check.
    let ui = unsafe {
        let m = UI_UTIL_wrap_read_pem_callback(Some(pin_callback), 0);
        if m.is_null() {
            return Err(ErrorStack::get());
        }
        UiMethod::from_ptr(m)
    };
    let data = PinData {
        pin,
        calls: Cell::new(0),
    };
    // SAFETY: every pointer is valid for the call; `data` outlives the store context
    // (the context is closed at the end of this function, before `data` is dropped).
    let ctx = unsafe {
        let c = OSSL_STORE_open_ex(
            uri.as_ptr(),
            ptr::null_mut(),
            ptr::null(),
            ui.as_ptr(),
            &data as *const PinData as *mut c_void,
            ptr::null(),
            ptr::null(),
            ptr::null_mut(),
        );
        if c.is_null() {
            return Err(ErrorStack::get());
        }
        StoreCtx::from_ptr(c)
    };
    // SAFETY: `ctx.as_ptr()` is a live store context; expecting a type before the first load is allowed.
    cvt(unsafe { OSSL_STORE_expect(ctx.as_ptr(), OSSL_STORE_INFO_PKEY) })?;
    let mut keys = Vec::new();
    // SAFETY: `ctx.as_ptr()` is live for the whole loop.
    while unsafe { OSSL_STORE_eof(ctx.as_ptr()) } == 0 {
        // SAFETY: as above; a non-null result is owned by `info` right away.
        let info = unsafe {
            let i = OSSL_STORE_load(ctx.as_ptr());
            if i.is_null() {
                continue;
            }
            StoreInfo::from_ptr(i)
        };
        // SAFETY: `info` is a live OSSL_STORE_INFO.
        if unsafe { OSSL_STORE_INFO_get_type(info.as_ptr()) } != OSSL_STORE_INFO_PKEY {
            continue;
        }
        // SAFETY: get1 returns a new reference (or NULL) that `PKey` then owns.
        let key = unsafe {
            let k = OSSL_STORE_INFO_get1_PKEY(info.as_ptr());
            if k.is_null() {
                return Err(ErrorStack::get());
            }
            PKey::<Private>::from_ptr(k)
        };
        keys.push(key);
    }
    drop(ctx);
    Ok(LoadedKeys {
        keys,
        pin_requests: data.calls.get(),
    })
}

