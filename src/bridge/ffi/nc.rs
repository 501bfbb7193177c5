//! RFC 5280 §4.2.1.10 name constraints as OpenSSL's chain verification applies them
//! (`NAME_CONSTRAINTS_check`, and `NAME_CONSTRAINTS_check_CN` for a leaf's commonName
//! that looks like a host name): used before the token signs, so a name-constrained
//! CA never signs what `openssl verify` would then reject.

use std::ffi::{c_int, c_void, CStr};

use foreign_types::ForeignTypeRef;
use openssl::x509::X509Ref;
use openssl_sys as sys;

extern "C" {
    fn NAME_CONSTRAINTS_check(x: *mut sys::X509, nc: *mut c_void) -> c_int;
    fn NAME_CONSTRAINTS_check_CN(x: *mut sys::X509, nc: *mut c_void) -> c_int;
    fn NAME_CONSTRAINTS_free(nc: *mut c_void);
}

/// `X509_V_OK` from <openssl/x509_vfy.h>.
const X509_V_OK: c_int = 0;

/// Where a certificate stands against an issuer's nameConstraints.
pub enum Constraints {
    /// The issuer has none.
    None,
    Within,
    /// OpenSSL's reason (e.g. "permitted subtree violation").
    Violated(String),
}

/// `cert` against the nameConstraints of `ca`. `leaf`: its commonName is checked too,
/// where it looks like a host name.
pub fn name_constraint_violation(cert: &X509Ref, ca: &X509Ref, leaf: bool) -> Constraints {
    // SAFETY: X509_get_ext_d2i reads `ca`, a live certificate the reference keeps
    // alive, and returns a new NAME_CONSTRAINTS (or NULL) that we own and free below.
    let nc = unsafe { sys::X509_get_ext_d2i(ca.as_ptr(), sys::NID_name_constraints, std::ptr::null_mut(), std::ptr::null_mut()) };
    if nc.is_null() {
        return Constraints::None;
    }
    // SAFETY: `cert` is live for the call; the checks only read it (the pointer is
    // not const in the C declaration only) and `nc`, which is valid until freed.
    let mut code = unsafe { NAME_CONSTRAINTS_check(cert.as_ptr(), nc) };
    if code == X509_V_OK && leaf {
        // SAFETY: as above.
        code = unsafe { NAME_CONSTRAINTS_check_CN(cert.as_ptr(), nc) };
    }
    // SAFETY: `nc` came from X509_get_ext_d2i above and is freed once.
    unsafe { NAME_CONSTRAINTS_free(nc) };
    super::super::clear_openssl_errors();
    if code == X509_V_OK {
        return Constraints::Within;
    }
    // SAFETY: X509_verify_cert_error_string returns a static NUL-terminated string for
    // any code.
    let why = unsafe { CStr::from_ptr(sys::X509_verify_cert_error_string(code.into())) };
    Constraints::Violated(why.to_string_lossy().into_owned())
}
