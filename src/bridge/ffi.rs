//! FFI: the OpenSSL 3 functions openssl-sys does not declare, each wrapped in a safe
//! function right here. The only file of the crate with `unsafe` and `extern "C"`.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_long, c_ulong, c_void, CStr, CString};
use std::ptr;

use foreign_types::{foreign_type, ForeignType, ForeignTypeRef};
use openssl::conf::{Conf, ConfMethod, ConfRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::PKeyRef;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::{GeneralName, X509Crl, X509Extension, X509Req, X509ReqRef, X509};
use openssl_sys as sys;

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
    fn X509V3_EXT_CRL_add_nconf(
        conf: *mut sys::CONF,
        ctx: *mut sys::X509V3_CTX,
        section: *const c_char,
        crl: *mut sys::X509_CRL,
    ) -> c_int;
}

/// `cvt`: OpenSSL's "1 is success" convention to a Result with the error queue.
fn cvt(ret: c_int) -> Result<c_int, ErrorStack> {
    if ret <= 0 {
        Err(ErrorStack::get())
    } else {
        Ok(ret)
    }
}

fn cstring(s: &str) -> Result<CString, ErrorStack> {
    // An interior NUL cannot name a real file, URI or section; report it like OpenSSL would.
    CString::new(s).map_err(|_| ErrorStack::get())
}

/// Parses an OpenSSL config held in memory and runs its modules
/// (`NCONF_load_bio` + `CONF_modules_load`, what `OSSL_LIB_CTX_load_config` does for
/// a file) in the default library context: the providers it activates become
/// available to every EVP call. No temporary file is involved.
pub fn load_config_text(text: &str) -> Result<(), String> {
    let conf = parse_config_text(text)?;
    // SAFETY: `conf` is a live, loaded CONF; NULL appname reads `openssl_conf` from
    // its default section; flags 0 reports module errors.
    cvt(unsafe { CONF_modules_load(conf.as_ptr(), ptr::null(), 0) })
        .map_err(|e| stack_reason(&e, "the configuration's modules failed to load"))?;
    Ok(())
}

fn stack_reason(err: &ErrorStack, fallback: &str) -> String {
    err.errors()
        .first()
        .and_then(|e| e.reason())
        .unwrap_or(fallback)
        .to_string()
}

fn new_conf() -> Result<Conf, String> {
    Conf::new(ConfMethod::default()).map_err(|e| stack_reason(&e, "NCONF_new failed"))
}

/// `NCONF_load_bio` over a memory BIO: a config file's text, parsed as `openssl req`
/// would parse the file. On a syntax error the message carries the line number.
pub fn parse_config_text(text: &str) -> Result<Conf, String> {
    let conf = new_conf()?;
    let len = c_int::try_from(text.len()).map_err(|_| "config too large".to_string())?;
    // SAFETY: the BIO reads `text` in place, which outlives it (freed below, before
    // return); wrapped right after the null check.
    let bio = unsafe { sys::BIO_new_mem_buf(text.as_ptr().cast(), len) };
    if bio.is_null() {
        return Err(stack_reason(&ErrorStack::get(), "BIO_new_mem_buf failed"));
    }
    let mut eline: c_long = 0;
    // SAFETY: `conf` and `bio` are live; `eline` is valid for the call.
    let rc = unsafe { NCONF_load_bio(conf.as_ptr(), bio, &mut eline) };
    // SAFETY: `bio` came from BIO_new_mem_buf above and is freed exactly once.
    unsafe { sys::BIO_free_all(bio) };
    loaded(conf, rc, eline)
}

fn loaded(conf: Conf, rc: c_int, eline: c_long) -> Result<Conf, String> {
    if rc > 0 {
        return Ok(conf);
    }
    let reason = stack_reason(&ErrorStack::get(), "cannot be read");
    Err(if eline > 0 {
        format!("line {eline}: {reason}")
    } else {
        reason
    })
}

/// `OSSL_PROVIDER_available(NULL, name)`.
pub fn provider_available(name: &str) -> bool {
    let Ok(name) = CString::new(name) else {
        return false;
    };
    // SAFETY: NULL is the default library context; `name` is a valid C string.
    unsafe { OSSL_PROVIDER_available(ptr::null_mut(), name.as_ptr()) == 1 }
}

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

/// An open `OSSL_STORE_CTX`; closed on drop.
struct StoreCtx(*mut OSSL_STORE_CTX);

impl Drop for StoreCtx {
    fn drop(&mut self) {
        // SAFETY: the pointer came non-null from OSSL_STORE_open_ex and is closed once.
        unsafe {
            OSSL_STORE_close(self.0);
        }
    }
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
        StoreCtx(c)
    };
    // SAFETY: `ctx.0` is a live store context; expecting a type before the first load is allowed.
    cvt(unsafe { OSSL_STORE_expect(ctx.0, OSSL_STORE_INFO_PKEY) })?;
    let mut keys = Vec::new();
    // SAFETY: `ctx.0` is live for the whole loop.
    while unsafe { OSSL_STORE_eof(ctx.0) } == 0 {
        // SAFETY: as above; a non-null result is owned by `info` right away.
        let info = unsafe {
            let i = OSSL_STORE_load(ctx.0);
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

/// Reading a parsed config (`openssl::conf::Conf` only owns it).
pub trait ConfExt {
    fn get(&self, section: &str, name: &str) -> Option<String>;
    fn section(&self, section: &str) -> Option<Vec<(String, String)>>;
    fn add_extensions_self_signed(&self, section: &str, cert: &mut X509)
        -> Result<(), ErrorStack>;
    fn add_extensions(&self, section: &str, cert: &mut X509, issuer: &X509)
        -> Result<(), ErrorStack>;
    fn add_crl_extensions(&self, section: &str, crl: &mut X509Crl, issuer: &X509)
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
        add_nconf(self, section, issuer, Target::Cert(cert.as_ptr()))
    }

    /// `X509V3_EXT_add_nconf` with `issuer` as the issuing certificate
    /// (authorityKeyIdentifier = keyid takes the issuer's subjectKeyIdentifier).
    fn add_extensions(&self, section: &str, cert: &mut X509, issuer: &X509) -> Result<(), ErrorStack> {
        add_nconf(self, section, issuer.as_ptr(), Target::Cert(cert.as_ptr()))
    }

    /// `X509V3_EXT_CRL_add_nconf`: a CRL's extensions from `section`, issued by `issuer`.
    fn add_crl_extensions(&self, section: &str, crl: &mut X509Crl, issuer: &X509) -> Result<(), ErrorStack> {
        add_nconf(self, section, issuer.as_ptr(), Target::Crl(crl.as_ptr()))
    }
}

enum Target {
    Cert(*mut sys::X509),
    Crl(*mut sys::X509_CRL),
}

fn add_nconf(conf: &ConfRef, section: &str, issuer: *mut sys::X509, target: Target) -> Result<(), ErrorStack> {
    let csection = cstring(section)?;
    let mut ctx = std::mem::MaybeUninit::<sys::X509V3_CTX>::zeroed();
    let (subject, crl) = match target {
        Target::Cert(c) => (c, ptr::null_mut()),
        Target::Crl(c) => (ptr::null_mut(), c),
    };
    // SAFETY: X509V3_set_ctx initialises the zeroed context with live objects the
    // caller borrows for the call (issuer, and the certificate or CRL being extended);
    // X509V3_set_nconf stores `conf`, which outlives the call that uses it.
    unsafe {
        sys::X509V3_set_ctx(ctx.as_mut_ptr(), issuer, subject, ptr::null_mut(), crl, 0);
        sys::X509V3_set_nconf(ctx.as_mut_ptr(), conf.as_ptr());
        match target {
            Target::Cert(c) => cvt(X509V3_EXT_add_nconf(conf.as_ptr(), ctx.as_mut_ptr(), csection.as_ptr(), c))?,
            Target::Crl(c) => cvt(X509V3_EXT_CRL_add_nconf(conf.as_ptr(), ctx.as_mut_ptr(), csection.as_ptr(), c))?,
        };
    }
    Ok(())
}

/// The subjectAltName a certificate request asks for (`X509_REQ_get_extensions` +
/// `X509V3_get_d2i`), or None. `Err` for a request whose extensions do not decode.
pub fn requested_alt_names(req: &X509ReqRef) -> Result<Option<Stack<GeneralName>>, ErrorStack> {
    // SAFETY: `req` is live; the extension stack returned is ours and freed below; the
    // decoded GENERAL_NAMES is a new object whose ownership passes to the Stack.
    unsafe {
        let exts = sys::X509_REQ_get_extensions(req.as_ptr());
        if exts.is_null() {
            let _ = ErrorStack::get();
            return Ok(None);
        }
        let mut crit: c_int = 0;
        let names = sys::X509V3_get_d2i(exts as *const _, sys::NID_subject_alt_name, &mut crit, ptr::null_mut());
        sys::OPENSSL_sk_pop_free(exts as *mut _, Some(x509_extension_free));
        if names.is_null() {
            // crit -1: absent; -2: present more than once; otherwise undecodable.
            return if crit == -1 { Ok(None) } else { Err(ErrorStack::get()) };
        }
        Ok(Some(Stack::from_ptr(names as *mut _)))
    }
}

unsafe extern "C" fn x509_extension_free(p: *mut c_void) {
    // SAFETY: the stack holds X509_EXTENSION pointers it owns.
    unsafe { sys::X509_EXTENSION_free(p as *mut sys::X509_EXTENSION) }
}

/// `X509_REQ_sign` (the openssl crate's builder has it, but not for a built request).
pub fn sign_request(req: &mut X509Req, key: &PKeyRef<Private>, md: MessageDigest) -> Result<(), ErrorStack> {
    // SAFETY: `req` is exclusively borrowed and live; key and digest live for the call.
    cvt(unsafe { sys::X509_REQ_sign(req.as_ptr(), key.as_ptr(), md.as_ptr()) })?;
    Ok(())
}

/// A CRL v2 (RFC 5280 §5.1) without entries, built with OpenSSL's X509_CRL API: issuer
/// name, thisUpdate, nextUpdate, the crlNumber given as a DER INTEGER, the
/// extensions of `section` (authorityKeyIdentifier), signed by `key` (the throwaway
/// key: `pkix::build_crl` adds the entries and the token signs the TBSCertList).
pub fn build_crl_header(
    issuer: &X509,
    (this_update, next_update): (i64, i64),
    number: &[u8],
    conf: (&ConfRef, &str),
    (key, md): (&PKeyRef<Private>, MessageDigest),
) -> Result<X509Crl, ErrorStack> {
    // SAFETY: every object created here is handed to the CRL (set1/add copy it, as
    // documented) or owned by a Rust wrapper; `crl` is owned by the X509Crl from the
    // moment it is created, so an early return frees it.
    unsafe {
        let mut crl = X509Crl::from_ptr(cvt_p(sys::X509_CRL_new())?);
        cvt(sys::X509_CRL_set_version(crl.as_ptr(), 1))?;
        cvt(sys::X509_CRL_set_issuer_name(crl.as_ptr(), sys::X509_get_subject_name(issuer.as_ptr())))?;
        let this = openssl::asn1::Asn1Time::from_unix(this_update)?;
        let next = openssl::asn1::Asn1Time::from_unix(next_update)?;
        cvt(sys::X509_CRL_set1_lastUpdate(crl.as_ptr(), this.as_ptr()))?;
        cvt(sys::X509_CRL_set1_nextUpdate(crl.as_ptr(), next.as_ptr()))?;
        let number = crl_number_extension(number)?;
        cvt(sys::X509_CRL_add_ext(crl.as_ptr(), number.as_ptr(), -1))?;
        conf.0.add_crl_extensions(conf.1, &mut crl, issuer)?;
        cvt(sys::X509_CRL_sign(crl.as_ptr(), key.as_ptr(), md.as_ptr()))?;
        Ok(crl)
    }
}

fn cvt_p<T>(p: *mut T) -> Result<*mut T, ErrorStack> {
    if p.is_null() {
        Err(ErrorStack::get())
    } else {
        Ok(p)
    }
}

/// cRLNumber (RFC 5280 §5.2.3): a non-critical INTEGER.
fn crl_number_extension(integer: &[u8]) -> Result<X509Extension, ErrorStack> {
    let oid = openssl::asn1::Asn1Object::from_str("2.5.29.20")?;
    let value = openssl::asn1::Asn1OctetString::new_from_bytes(integer)?;
    X509Extension::new_from_der(&oid, false, &value)
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

/// A message digest fetched once (`EVP_MD_fetch`) and shared: OpenSSL 3.0's implicit
/// fetch inside every `EVP_DigestSignInit` takes the method store's lock, which bounds
/// signing threads in one process (OpenSSL's "Performance" guide: fetch explicitly,
/// reuse).
pub struct FetchedMd(*mut sys::EVP_MD);

// SAFETY: a fetched EVP_MD is immutable and reference-counted; OpenSSL documents fetched
// algorithm objects as safe to share between threads.
unsafe impl Send for FetchedMd {}
// SAFETY: as for Send: it is only read.
unsafe impl Sync for FetchedMd {}

impl FetchedMd {
    pub fn fetch(name: &str) -> Result<FetchedMd, ErrorStack> {
        let cname = cstring(name)?;
        // SAFETY: default library context, no property query; the result is owned here.
        let md = unsafe { sys::EVP_MD_fetch(ptr::null_mut(), cname.as_ptr(), ptr::null()) };
        if md.is_null() {
            return Err(ErrorStack::get());
        }
        Ok(FetchedMd(md))
    }
}

impl Drop for FetchedMd {
    fn drop(&mut self) {
        // SAFETY: owned since the fetch; freed once.
        unsafe { sys::EVP_MD_free(self.0) }
    }
}

/// RSA padding for a [`PreparedSigner`].
pub enum RsaPadding<'a> {
    None,
    Pkcs1,
    /// PSS, MGF1 with this digest, salt length = digest length.
    Pss(&'a FetchedMd),
}

/// The RSA padding of a DigestSign/DigestVerify context just initialised.
///
/// # Safety
/// `pctx` is the live EVP_PKEY_CTX that EVP_DigestSignInit/EVP_DigestVerifyInit returned.
unsafe fn set_padding(pctx: *mut sys::EVP_PKEY_CTX, padding: &RsaPadding<'_>) -> Result<(), ErrorStack> {
    // SAFETY: per this function's contract; `mgf1` outlives the call.
    unsafe {
        match padding {
            RsaPadding::None => {}
            RsaPadding::Pkcs1 => {
                cvt(sys::EVP_PKEY_CTX_set_rsa_padding(pctx, sys::RSA_PKCS1_PADDING))?;
            }
            RsaPadding::Pss(mgf1) => {
                cvt(sys::EVP_PKEY_CTX_set_rsa_padding(pctx, sys::RSA_PKCS1_PSS_PADDING))?;
                // RSA_PSS_SALTLEN_DIGEST (-1): salt length = digest length.
                cvt(sys::EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1))?;
                cvt(sys::EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, mgf1.0))?;
            }
        }
    }
    Ok(())
}

/// A DigestSign context initialised once for one key and scheme (the key's provider,
/// keymgmt and signature implementation resolved then); every signature starts from a
/// copy of it (`EVP_MD_CTX_copy_ex`), so no fetch happens per signature. One per thread.
pub struct PreparedSigner {
    template: *mut sys::EVP_MD_CTX,
    work: *mut sys::EVP_MD_CTX,
    max_len: usize,
}

// SAFETY: both contexts are owned by this value alone and used by one thread at a time
// (`sign` takes &mut self); moving them to another thread is what OpenSSL allows for
// contexts that are not shared.
unsafe impl Send for PreparedSigner {}

impl PreparedSigner {
    pub fn new(key: &PKeyRef<Private>, md: Option<&FetchedMd>, padding: RsaPadding<'_>) -> Result<PreparedSigner, ErrorStack> {
        // SAFETY: the contexts are created here and owned by the returned value (freed
        // in Drop, or below on error); `key` and `md` outlive the init call, which takes
        // its own references.
        unsafe {
            let template = sys::EVP_MD_CTX_new();
            let work = sys::EVP_MD_CTX_new();
            let mut s = PreparedSigner { template, work, max_len: 0 };
            if template.is_null() || work.is_null() {
                return Err(ErrorStack::get());
            }
            let mut pctx: *mut sys::EVP_PKEY_CTX = ptr::null_mut();
            let md_ptr = md.map_or(ptr::null(), |m| m.0 as *const sys::EVP_MD);
            cvt(sys::EVP_DigestSignInit(template, &mut pctx, md_ptr, ptr::null_mut(), key.as_ptr()))?;
            set_padding(pctx, &padding)?;
            s.max_len = usize::try_from(sys::EVP_PKEY_get_size(key.as_ptr())).unwrap_or(0);
            Ok(s)
        }
    }

    /// One signature over `data`.
    pub fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        let mut sig = vec![0u8; self.max_len];
        let mut len = sig.len();
        // SAFETY: both contexts are live and owned; copy_ex resets `work` and copies the
        // initialised template into it; `sig` has room for `len` bytes and `data` is
        // valid for its length.
        unsafe {
            cvt(sys::EVP_MD_CTX_copy_ex(self.work, self.template))?;
            cvt(sys::EVP_DigestSign(self.work, sig.as_mut_ptr(), &mut len, data.as_ptr(), data.len()))?;
        }
        sig.truncate(len);
        Ok(sig)
    }
}

impl Drop for PreparedSigner {
    fn drop(&mut self) {
        // SAFETY: owned since `new`; EVP_MD_CTX_free accepts NULL; freed once.
        unsafe {
            sys::EVP_MD_CTX_free(self.work);
            sys::EVP_MD_CTX_free(self.template);
        }
    }
}

/// A DigestVerify context initialised once for one public key and scheme; every check
/// starts from a copy of it, like [`PreparedSigner`]. One per thread.
pub struct PreparedVerifier {
    template: *mut sys::EVP_MD_CTX,
    work: *mut sys::EVP_MD_CTX,
}

// SAFETY: as for PreparedSigner: both contexts are owned and used by one thread at a time.
unsafe impl Send for PreparedVerifier {}

impl PreparedVerifier {
    pub fn new<T: openssl::pkey::HasPublic>(
        key: &PKeyRef<T>,
        md: Option<&FetchedMd>,
        padding: RsaPadding<'_>,
    ) -> Result<PreparedVerifier, ErrorStack> {
        // SAFETY: as in PreparedSigner::new: contexts owned by the returned value (freed
        // in Drop, also on the error paths), `key` and `md` outlive the init call.
        unsafe {
            let s = PreparedVerifier { template: sys::EVP_MD_CTX_new(), work: sys::EVP_MD_CTX_new() };
            if s.template.is_null() || s.work.is_null() {
                return Err(ErrorStack::get());
            }
            let mut pctx: *mut sys::EVP_PKEY_CTX = ptr::null_mut();
            let md_ptr = md.map_or(ptr::null(), |m| m.0 as *const sys::EVP_MD);
            cvt(sys::EVP_DigestVerifyInit(s.template, &mut pctx, md_ptr, ptr::null_mut(), key.as_ptr()))?;
            set_padding(pctx, &padding)?;
            Ok(s)
        }
    }

    /// Whether `sig` is a valid signature over `data`.
    pub fn verify(&mut self, sig: &[u8], data: &[u8]) -> Result<bool, ErrorStack> {
        // SAFETY: both contexts are live and owned; the slices are valid for their lengths.
        let rc = unsafe {
            cvt(sys::EVP_MD_CTX_copy_ex(self.work, self.template))?;
            sys::EVP_DigestVerify(self.work, sig.as_ptr(), sig.len(), data.as_ptr(), data.len())
        };
        // 0 is "does not verify", below 0 an error; neither is left on the error queue.
        let _ = ErrorStack::get();
        Ok(rc == 1)
    }
}

impl Drop for PreparedVerifier {
    fn drop(&mut self) {
        // SAFETY: owned since `new`; EVP_MD_CTX_free accepts NULL; freed once.
        unsafe {
            sys::EVP_MD_CTX_free(self.work);
            sys::EVP_MD_CTX_free(self.template);
        }
    }
}
