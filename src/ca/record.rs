//! The typed values of a CA's records: a certificate's state and a revocation's
//! reason, stored as the text and integer codes `ca.db` has always held (files made
//! before these types read unchanged).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;

/// Where a serial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertState {
    /// Reserved before the token signs; never seen outside a live issuance.
    Pending,
    /// Signed, checked and recorded with its certificate.
    Issued,
    /// Reserved by an issuance that did not finish; the serial is never reused.
    Abandoned,
    /// Taken over from an `openssl ca` index (no certificate held).
    Imported,
}

impl CertState {
    pub fn as_str(self) -> &'static str {
        match self {
            CertState::Pending => "pending",
            CertState::Issued => "issued",
            CertState::Abandoned => "abandoned",
            CertState::Imported => "imported",
        }
    }

    /// How `list-issued` shows it.
    pub fn describe(self) -> &'static str {
        match self {
            CertState::Abandoned => "abandoned (never issued)",
            other => other.as_str(),
        }
    }
}

impl FromSql for CertState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "pending" => Ok(CertState::Pending),
            "issued" => Ok(CertState::Issued),
            "abandoned" => Ok(CertState::Abandoned),
            "imported" => Ok(CertState::Imported),
            other => Err(FromSqlError::Other(format!("unknown certificate state '{other}'").into())),
        }
    }
}

impl ToSql for CertState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// CRLReason (RFC 5280 §5.3.1). certificateHold and removeFromCRL are left out: a CA of
/// this kind does not suspend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl CrlReason {
    pub const ALL: [CrlReason; 8] = [
        CrlReason::Unspecified,
        CrlReason::KeyCompromise,
        CrlReason::CaCompromise,
        CrlReason::AffiliationChanged,
        CrlReason::Superseded,
        CrlReason::CessationOfOperation,
        CrlReason::PrivilegeWithdrawn,
        CrlReason::AaCompromise,
    ];

    /// The ASN.1 ENUMERATED value.
    pub fn code(self) -> u8 {
        match self {
            CrlReason::Unspecified => 0,
            CrlReason::KeyCompromise => 1,
            CrlReason::CaCompromise => 2,
            CrlReason::AffiliationChanged => 3,
            CrlReason::Superseded => 4,
            CrlReason::CessationOfOperation => 5,
            CrlReason::PrivilegeWithdrawn => 9,
            CrlReason::AaCompromise => 10,
        }
    }

    /// The RFC's name (`keyCompromise`), as `openssl ca -crl_reason` takes it.
    pub fn name(self) -> &'static str {
        match self {
            CrlReason::Unspecified => "unspecified",
            CrlReason::KeyCompromise => "keyCompromise",
            CrlReason::CaCompromise => "cACompromise",
            CrlReason::AffiliationChanged => "affiliationChanged",
            CrlReason::Superseded => "superseded",
            CrlReason::CessationOfOperation => "cessationOfOperation",
            CrlReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            CrlReason::AaCompromise => "aACompromise",
        }
    }

    pub fn from_code(code: u8) -> Option<CrlReason> {
        CrlReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// A name in any case.
    pub fn from_name(name: &str) -> Option<CrlReason> {
        CrlReason::ALL.into_iter().find(|r| r.name().eq_ignore_ascii_case(name))
    }

    /// What the CRL entry carries: no reasonCode for unspecified, as RFC 5280 §5.3.1
    /// recommends.
    pub fn entry_code(self) -> Option<u8> {
        (self != CrlReason::Unspecified).then_some(self.code())
    }
}

impl Serialize for CrlReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl FromSql for CrlReason {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let code = value.as_i64()?;
        u8::try_from(code)
            .ok()
            .and_then(CrlReason::from_code)
            .ok_or(FromSqlError::OutOfRange(code))
    }
}

impl ToSql for CrlReason {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(i64::from(self.code())))
    }
}
