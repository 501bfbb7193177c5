//! FFI: the OpenSSL 3 functions openssl-sys does not declare, each wrapped in a safe
//! function right here: what the openssl crate has no owner for (config loading and
//! reading, OSSL_STORE with a PIN callback, X509V3_EXT_add_nconf, X509_sign of a built
//! certificate, EVP_MD_CTX_copy_ex). With token/ffi.rs, the only `unsafe` of the crate.
#![allow(unsafe_code)]


use std::ffi::{c_char, c_int, c_long, c_ulong, c_void, CStr, CString};
use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::conf::{Conf, ConfMethod, ConfRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::Stack;
use openssl::md_ctx::MdCtxRef;
use openssl::x509::{GeneralName, X509ReqRef, X509};
use openssl_sys as sys;

mod nc;
mod store;
pub use nc::{name_constraint_violation, Constraints};
pub use store::load_private_keys;

use super::BridgeError;

#[allow(non_camel_case_types)]
#[repr(C)]
pub struct OSSL_STORE_CTX {
    _opaque: [u8; 0],
}

#[allow(non_camel_case_types)]
#[repr(C)]
pub struct OSSL_STORE_INFO {
    _opaque: [u8; 0],
}

#[allow(non_camel_case_types)]
#[repr(C)]
pub struct UI_METHOD {
    _opaque: [u8; 0],
}

#[allow(non_camel_case_types)]
#[repr(C)]
pub struct CONF_VALUE {
    section: *mut c_char,
    name: *mut c_char,
    value: *mut c_char,
}

/// `pem_password_cb` from <openssl/pem.h>.
type PemPasswordCb =
    unsafe extern "C" fn(buf: *mut c_char, size: c_int, rwflag: c_int, u: *mut c_void) -> c_int;

/// <openssl/store.h>: `#define OSSL_STORE_INFO_PKEY 4`.
const OSSL_STORE_INFO_PKEY: c_int = 4;

extern "C" {
    fn OSSL_PROVIDER_available(ctx: *mut sys::OSSL_LIB_CTX, name: *const c_char) -> c_int;
    fn OSSL_STORE_open_ex(
        uri: *const c_char,
        libctx: *mut sys::OSSL_LIB_CTX,
        propq: *const c_char,
        ui_method: *const UI_METHOD,
        ui_data: *mut c_void,
        params: *const c_void,
        post_process: *const c_void,
        post_process_data: *mut c_void,
    ) -> *mut OSSL_STORE_CTX;
    fn OSSL_STORE_expect(ctx: *mut OSSL_STORE_CTX, expected_type: c_int) -> c_int;
    fn OSSL_STORE_load(ctx: *mut OSSL_STORE_CTX) -> *mut OSSL_STORE_INFO;
    fn OSSL_STORE_eof(ctx: *mut OSSL_STORE_CTX) -> c_int;
    fn OSSL_STORE_close(ctx: *mut OSSL_STORE_CTX) -> c_int;
    fn OSSL_STORE_INFO_get_type(info: *const OSSL_STORE_INFO) -> c_int;
    fn OSSL_STORE_INFO_get1_PKEY(info: *const OSSL_STORE_INFO) -> *mut sys::EVP_PKEY;
    fn OSSL_STORE_INFO_free(info: *mut OSSL_STORE_INFO);
    fn UI_UTIL_wrap_read_pem_callback(cb: Option<PemPasswordCb>, rwflag: c_int) -> *mut UI_METHOD;
    fn UI_destroy_method(method: *mut UI_METHOD);
    fn NCONF_load_bio(conf: *mut sys::CONF, bp: *mut sys::BIO, eline: *mut c_long) -> c_int;
    fn CONF_modules_load(conf: *const sys::CONF, appname: *const c_char, flags: c_ulong) -> c_int;
    fn NCONF_get_string(
        conf: *const sys::CONF,
        group: *const c_char,
        name: *const c_char,
    ) -> *mut c_char;
    fn NCONF_get_section(conf: *const sys::CONF, section: *const c_char) -> *mut c_void;
    fn OPENSSL_sk_num(stack: *const c_void) -> c_int;
    fn OPENSSL_sk_value(stack: *const c_void, i: c_int) -> *mut c_void;
    fn X509V3_EXT_add_nconf(
        conf: *mut sys::CONF,
        ctx: *mut sys::X509V3_CTX,
        section: *const c_char,
        cert: *mut sys::X509,
    ) -> c_int;
}

/// <openssl/err.h>: `ERR_LIB_USER`, and `ERR_R_PASSED_INVALID_ARGUMENT` (262 |
/// ERR_RFLAG_COMMON, the latter `0x2 << ERR_RFLAGS_OFFSET` with offset 18).
const ERR_LIB_USER: c_int = 128;
const ERR_R_PASSED_INVALID_ARGUMENT: c_int = 262 | (0x2 << 18);

/// `cvt`: OpenSSL's "1 is success" convention to a Result with the error queue.
fn cvt(ret: c_int) -> Result<c_int, ErrorStack> {
    if ret <= 0 {
        Err(ErrorStack::get())
    } else {
        Ok(ret)
    }
}

/// A C string for OpenSSL. An interior NUL cannot name a real file, URI or section: it
/// is reported as an OpenSSL error with that reason (ERR_LIB_USER, ERR_R_PASSED_INVALID_ARGUMENT),
/// not as an empty error stack.
fn cstring(s: &str) -> Result<CString, ErrorStack> {
    CString::new(s).map_err(|_| {
        const REASON: &CStr = c"%s";
        const TEXT: &CStr = c"a string handed to OpenSSL holds a NUL byte";
        // SAFETY: ERR_new starts a record on this thread's queue; ERR_set_error fills it
        // with a format and one C string argument, both static and NUL-terminated.
        unsafe {
            sys::ERR_new();
            sys::ERR_set_error(ERR_LIB_USER, ERR_R_PASSED_INVALID_ARGUMENT, REASON.as_ptr(), TEXT.as_ptr());
        }
        ErrorStack::get()
    })
}

/// Parses an OpenSSL config held in memory and runs its modules
/// (`NCONF_load_bio` + `CONF_modules_load`, what `OSSL_LIB_CTX_load_config` does for
/// a file) in the default library context: the providers it activates become
/// available to every EVP call. No temporary file is involved.
pub fn load_config_text(text: &str) -> Result<(), BridgeError> {
    let conf = parse_config_text(text)?;
    // SAFETY: `conf` is a live, loaded CONF; NULL appname reads `openssl_conf` from
    // its default section; flags 0 reports module errors.
    cvt(unsafe { CONF_modules_load(conf.as_ptr(), ptr::null(), 0) }).map_err(|e| BridgeError::ConfigSyntax {
        line: None,
        reason: stack_reason(&e, "the configuration's modules failed to load"),
    })?;
    Ok(())
}

fn stack_reason(err: &ErrorStack, fallback: &str) -> String {
    err.errors()
        .first()
        .and_then(|e| e.reason())
        .unwrap_or(fallback)
        .to_string()
}

/// `NCONF_load_bio` over a memory BIO: a config file's text, parsed as `openssl req`
/// would parse the file. On a syntax error the error carries the line number.
pub fn parse_config_text(text: &str) -> Result<Conf, BridgeError> {
    let syntax = |line: Option<i64>, reason: String| BridgeError::ConfigSyntax { line, reason };
    let conf = Conf::new(ConfMethod::default()).map_err(|e| syntax(None, stack_reason(&e, "NCONF_new failed")))?;
    let len = c_int::try_from(text.len()).map_err(|_| syntax(None, "the configuration is too large".into()))?;
    // SAFETY: the BIO reads `text` in place, which outlives it (freed below, before
    // return); wrapped right after the null check.
    let bio = unsafe { sys::BIO_new_mem_buf(text.as_ptr().cast(), len) };
    if bio.is_null() {
        return Err(syntax(None, stack_reason(&ErrorStack::get(), "BIO_new_mem_buf failed")));
    }
    let mut eline: c_long = 0;
    // SAFETY: `conf` and `bio` are live; `eline` is valid for the call.
    let rc = unsafe { NCONF_load_bio(conf.as_ptr(), bio, &mut eline) };
    // SAFETY: `bio` came from BIO_new_mem_buf above and is freed exactly once.
    unsafe { sys::BIO_free_all(bio) };
    if rc > 0 {
        return Ok(conf);
    }
    let reason = stack_reason(&ErrorStack::get(), "cannot be read");
    Err(syntax((eline > 0).then_some(eline as i64), reason))
}

/// `OSSL_PROVIDER_available(NULL, name)`.
pub fn provider_available(name: &str) -> bool {
    let Ok(name) = CString::new(name) else {
        return false;
    };
    // SAFETY: NULL is the default library context; `name` is a valid C string.
    unsafe { OSSL_PROVIDER_available(ptr::null_mut(), name.as_ptr()) == 1 }
}

/// Reading a parsed config (`openssl::conf::Conf` only owns it).
pub trait ConfExt {
    fn get(&self, section: &str, name: &str) -> Option<String>;
    fn section(&self, section: &str) -> Option<Vec<(String, String)>>;
    fn add_extensions_self_signed(&self, section: &str, cert: &mut X509)
        -> Result<(), ErrorStack>;
    fn add_extensions(&self, section: &str, cert: &mut X509, issuer: &X509)
        -> Result<(), ErrorStack>;
}

impl ConfExt for ConfRef {
    /// `NCONF_get_string(conf, section, name)`: None when absent.
    fn get(&self, section: &str, name: &str) -> Option<String> {
        let section = CString::new(section).ok()?;
        let name = CString::new(name).ok()?;
        // SAFETY: `self` is a live CONF; the returned string belongs to `conf` and is copied
        // before anything else touches the config.
        let value = unsafe { NCONF_get_string(self.as_ptr(), section.as_ptr(), name.as_ptr()) };
        // A missing value leaves an error on the queue; it is not an error here.
        let _ = ErrorStack::get();
        if value.is_null() {
            return None;
        }
        // SAFETY: non-null, NUL-terminated, owned by `conf`.
        Some(
            unsafe { CStr::from_ptr(value) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// The (name, value) pairs of a section, in file order.
    fn section(&self, section: &str) -> Option<Vec<(String, String)>> {
        let csection = CString::new(section).ok()?;
        // SAFETY: `self` is a live CONF; the stack and its values belong to `conf` and are
        // copied out before returning.
        unsafe {
            let stack = NCONF_get_section(self.as_ptr(), csection.as_ptr());
            if stack.is_null() {
                let _ = ErrorStack::get();
                return None;
            }
            let n = OPENSSL_sk_num(stack);
            let mut out = Vec::with_capacity(n.max(0) as usize);
            for i in 0..n {
                let v = OPENSSL_sk_value(stack, i) as *const CONF_VALUE;
                if v.is_null() || (*v).name.is_null() || (*v).value.is_null() {
                    continue;
                }
                out.push((
                    CStr::from_ptr((*v).name).to_string_lossy().into_owned(),
                    CStr::from_ptr((*v).value).to_string_lossy().into_owned(),
                ));
            }
            Some(out)
        }
    }

    /// `X509V3_EXT_add_nconf`: adds the extensions of `section` to `cert`, with the
    /// certificate as its own issuer (self-signed: subjectKeyIdentifier and
    /// authorityKeyIdentifier = keyid resolve against its own public key).
    fn add_extensions_self_signed(
        &self,
        section: &str,
        cert: &mut X509,
    ) -> Result<(), ErrorStack> {
        let issuer = cert.as_ptr();
        add_nconf(self, section, issuer, cert.as_ptr())
    }

    /// `X509V3_EXT_add_nconf` with `issuer` as the issuing certificate
    /// (authorityKeyIdentifier = keyid takes the issuer's subjectKeyIdentifier).
    fn add_extensions(&self, section: &str, cert: &mut X509, issuer: &X509) -> Result<(), ErrorStack> {
        add_nconf(self, section, issuer.as_ptr(), cert.as_ptr())
    }
}

fn add_nconf(conf: &ConfRef, section: &str, issuer: *mut sys::X509, subject: *mut sys::X509) -> Result<(), ErrorStack> {
    let csection = cstring(section)?;
    let mut ctx = std::mem::MaybeUninit::<sys::X509V3_CTX>::zeroed();
    // SAFETY: X509V3_set_ctx initialises the zeroed context with live objects the
    // caller borrows for the call (issuer, and the certificate or CRL being extended);
    // X509V3_set_nconf stores `conf`, which outlives the call that uses it.
    unsafe {
        sys::X509V3_set_ctx(ctx.as_mut_ptr(), issuer, subject, ptr::null_mut(), ptr::null_mut(), 0);
        sys::X509V3_set_nconf(ctx.as_mut_ptr(), conf.as_ptr());
        cvt(X509V3_EXT_add_nconf(conf.as_ptr(), ctx.as_mut_ptr(), csection.as_ptr(), subject))?;
    }
    Ok(())
}

/// What a request's extensions say of subjectAltName.
pub enum RequestedNames {
    Absent,
    /// The extension appears more than once (RFC 5280 §4.2: at most one instance).
    Repeated,
    Names(Stack<GeneralName>),
}

/// The subjectAltName a certificate request asks for (`X509_REQ_get_extensions` +
/// `X509V3_get_d2i`), or None. `Err` for a request whose extensions do not decode.
pub fn requested_alt_names(req: &X509ReqRef) -> Result<RequestedNames, ErrorStack> {
    // SAFETY: `req` is live; the extension stack returned is ours and freed below; the
    // decoded GENERAL_NAMES is a new object whose ownership passes to the Stack.
    unsafe {
        let exts = sys::X509_REQ_get_extensions(req.as_ptr());
        if exts.is_null() {
            let _ = ErrorStack::get();
            return Ok(RequestedNames::Absent);
        }
        let mut crit: c_int = 0;
        let names = sys::X509V3_get_d2i(exts as *const _, sys::NID_subject_alt_name, &mut crit, ptr::null_mut());
        sys::OPENSSL_sk_pop_free(exts as *mut _, Some(x509_extension_free));
        if names.is_null() {
            // crit -1: absent; -2: present more than once; otherwise undecodable.
            return match crit {
                -1 => Ok(RequestedNames::Absent),
                -2 => Ok(RequestedNames::Repeated),
                _ => Err(ErrorStack::get()),
            };
        }
        Ok(RequestedNames::Names(Stack::from_ptr(names as *mut _)))
    }
}

unsafe extern "C" fn x509_extension_free(p: *mut c_void) {
    // SAFETY: the stack holds X509_EXTENSION pointers it owns.
    unsafe { sys::X509_EXTENSION_free(p as *mut sys::X509_EXTENSION) }
}

/// `X509_sign`: signs a certificate with `key` (for a provider key, through
/// EVP_DigestSign in the key's provider, i.e. in the token).
pub fn sign_certificate(
    cert: &mut X509,
    key: &PKeyRef<Private>,
    md: MessageDigest,
) -> Result<(), ErrorStack> {
    // SAFETY: `cert` is exclusively borrowed and live; `key` and the digest are live for
    // the call; X509_sign re-encodes the certificate it owns.
    cvt(unsafe { sys::X509_sign(cert.as_ptr(), key.as_ptr(), md.as_ptr()) })?;
    Ok(())
}

/// Whether `cert` says it is a CA: basicConstraints cA TRUE (`X509_get_extension_flags`
/// & EXFLAG_CA, which also caches the extensions).
pub fn is_ca(cert: &X509) -> bool {
    // SAFETY: `cert` is live; the call only reads and caches its extensions.
    unsafe { sys::X509_get_extension_flags(cert.as_ptr()) & sys::EXFLAG_CA != 0 }
}

/// `EVP_MD_CTX_copy_ex(dst, src)`: the openssl crate's `MdCtx` has no copy.
pub fn md_ctx_copy(dst: &mut MdCtxRef, src: &MdCtxRef) -> Result<(), ErrorStack> {
    // SAFETY: both contexts are live; `dst` is exclusively borrowed; copy_ex resets it
    // and copies the initialised `src` (its EVP_PKEY_CTX included) into it.
    cvt(unsafe { sys::EVP_MD_CTX_copy_ex(dst.as_ptr(), src.as_ptr()) })?;
    Ok(())
}
