//! CK_TOKEN_INFO as hsm-demo reads it: defensively, field by field, so that one field
//! a module fills wrongly is shown as unknown instead of hiding the token.

use cryptoki_sys::{
    CK_FLAGS, CK_TOKEN_INFO, CK_ULONG, CKF_CLOCK_ON_TOKEN, CKF_LOGIN_REQUIRED, CKF_RNG,
    CKF_SO_PIN_LOCKED, CKF_TOKEN_INITIALIZED, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY,
    CKF_USER_PIN_INITIALIZED, CKF_USER_PIN_LOCKED, CK_UNAVAILABLE_INFORMATION,
};

/// The facts about a token that hsm-demo uses or shows.
#[derive(Debug, Clone)]
pub struct TokenFacts {
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    flags: CK_FLAGS,
    /// ulMinPinLen (0 when the token does not say).
    pub min_pin: usize,
    /// ulMaxPinLen; `None` for no limit: 0 is CK_EFFECTIVELY_INFINITE (PKCS#11 3.0
    /// §3.2), and CK_UNAVAILABLE_INFORMATION says nothing either.
    pub max_pin: Option<usize>,
    /// The token's clock, when it has one (CKF_CLOCK_ON_TOKEN).
    pub clock: Option<TokenClock>,
}

/// What `utcTime` held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenClock {
    /// `YYYYMMDDhhmmss00` as the spec says, shown as RFC 3339.
    Utc(String),
    /// Anything else, as the module wrote it (printable characters only).
    Malformed(String),
}

/// A CK_TOKEN_INFO or CK_SLOT_INFO text field: blank-padded by the spec (PKCS#11 v2.40
/// §3.2); some modules pad with NULs instead (tpm2-pkcs11), which must not reach
/// text, JSON or URIs. Everything from the first NUL on is dropped, then the blanks.
pub fn padded_text(s: &str) -> String {
    let s = s.split('\0').next().unwrap_or_default();
    s.trim_end_matches(' ').to_string()
}

fn field(bytes: &[u8]) -> String {
    padded_text(&String::from_utf8_lossy(bytes))
}

fn length(v: CK_ULONG) -> Option<usize> {
    if v == 0 || v == CK_UNAVAILABLE_INFORMATION {
        None
    } else {
        usize::try_from(v).ok()
    }
}

impl TokenFacts {
    pub fn from_raw(info: &CK_TOKEN_INFO) -> TokenFacts {
        let clock = (info.flags & CKF_CLOCK_ON_TOKEN != 0).then(|| TokenClock::parse(&info.utcTime));
        TokenFacts {
            label: field(&info.label),
            manufacturer: field(&info.manufacturerID),
            model: field(&info.model),
            serial: field(&info.serialNumber),
            flags: info.flags,
            min_pin: length(info.ulMinPinLen).unwrap_or(0),
            max_pin: length(info.ulMaxPinLen),
            clock,
        }
    }

    fn flag(&self, f: CK_FLAGS) -> bool {
        self.flags & f != 0
    }
    pub fn token_initialized(&self) -> bool {
        self.flag(CKF_TOKEN_INITIALIZED)
    }
    pub fn login_required(&self) -> bool {
        self.flag(CKF_LOGIN_REQUIRED)
    }
    pub fn user_pin_initialized(&self) -> bool {
        self.flag(CKF_USER_PIN_INITIALIZED)
    }
    pub fn user_pin_count_low(&self) -> bool {
        self.flag(CKF_USER_PIN_COUNT_LOW)
    }
    pub fn user_pin_final_try(&self) -> bool {
        self.flag(CKF_USER_PIN_FINAL_TRY)
    }
    pub fn user_pin_locked(&self) -> bool {
        self.flag(CKF_USER_PIN_LOCKED)
    }
    pub fn so_pin_locked(&self) -> bool {
        self.flag(CKF_SO_PIN_LOCKED)
    }
    pub fn rng(&self) -> bool {
        self.flag(CKF_RNG)
    }

    /// "4 to 8", "at least 4": the PIN lengths the token accepts.
    pub fn pin_range(&self) -> String {
        match self.max_pin {
            Some(max) => format!("{} to {max}", self.min_pin),
            None => format!("at least {}", self.min_pin),
        }
    }

    pub fn accepts_pin_len(&self, len: usize) -> bool {
        len >= self.min_pin && self.max_pin.is_none_or(|max| len <= max)
    }
}

impl TokenClock {
    fn parse(raw: &[u8; 16]) -> TokenClock {
        let digits = raw.iter().all(u8::is_ascii_digit);
        if digits {
            let s = std::str::from_utf8(raw).unwrap_or_default();
            let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
            let (mo, d, h, mi, se) = (n(4..6), n(6..8), n(8..10), n(10..12), n(12..14));
            if (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && se < 61 {
                return TokenClock::Utc(format!(
                    "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    &s[0..4], mo, d, h, mi, se
                ));
            }
        }
        let shown: String = raw
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| if b.is_ascii_graphic() || *b == b' ' { *b as char } else { '?' })
            .collect();
        TokenClock::Malformed(shown.trim_end().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(label: &[u8], flags: CK_FLAGS, utc: &[u8], min: CK_ULONG, max: CK_ULONG) -> CK_TOKEN_INFO {
        let mut i = crate::token::ffi::empty_token_info();
        i.label = [b' '; 32];
        i.label[..label.len()].copy_from_slice(label);
        i.flags = flags;
        i.utcTime[..utc.len()].copy_from_slice(utc);
        i.ulMinPinLen = min;
        i.ulMaxPinLen = max;
        i
    }

    #[test]
    fn opencryptoki_clock_is_unknown_not_fatal() {
        let f = TokenFacts::from_raw(&raw(b"ock", CKF_CLOCK_ON_TOKEN | CKF_RNG, b"10:53:44", 4, 8));
        assert_eq!(f.clock, Some(TokenClock::Malformed("10:53:44".into())));
        assert_eq!(f.label, "ock");
        assert!(f.rng() && !f.token_initialized());
        assert_eq!(f.pin_range(), "4 to 8");
        assert!(f.accepts_pin_len(8) && !f.accepts_pin_len(9) && !f.accepts_pin_len(3));
    }

    #[test]
    fn spec_clock_is_rfc3339() {
        let f = TokenFacts::from_raw(&raw(b"t", CKF_CLOCK_ON_TOKEN, b"2026112315210700", 4, 255));
        assert_eq!(f.clock, Some(TokenClock::Utc("2026-11-23T15:21:07Z".into())));
        let f = TokenFacts::from_raw(&raw(b"t", 0, b"garbage", 4, 255));
        assert_eq!(f.clock, None, "no CKF_CLOCK_ON_TOKEN, no clock");
    }

    #[test]
    fn max_pin_zero_or_unavailable_is_no_limit() {
        let f = TokenFacts::from_raw(&raw(b"k", 0, b"", 8, 0));
        assert_eq!(f.max_pin, None);
        assert!(f.accepts_pin_len(4096) && !f.accepts_pin_len(7));
        assert_eq!(f.pin_range(), "at least 8");
        let f = TokenFacts::from_raw(&raw(b"k", 0, b"", CK_UNAVAILABLE_INFORMATION, CK_UNAVAILABLE_INFORMATION));
        assert_eq!((f.min_pin, f.max_pin), (0, None));
    }

    #[test]
    fn nul_padding_and_trailing_garbage_are_dropped() {
        let mut label = [0u8; 32];
        label[..3].copy_from_slice(b"tpm");
        label[10] = b'x';
        let mut i = raw(b"", 0, b"", 0, 0);
        i.label = label;
        assert_eq!(TokenFacts::from_raw(&i).label, "tpm");
        assert_eq!(padded_text("abc   "), "abc");
        assert_eq!(padded_text("abc\0\0 \0"), "abc");
    }
}
