//! Custody: the attributes that say whether and how a private key can leave the token.

/// The attributes that say whether a private key can ever leave the token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Custody {
    pub sensitive: bool,
    pub extractable: bool,
    pub always_sensitive: bool,
    pub never_extractable: bool,
    pub local: bool,
    /// CKA_WRAP_WITH_TRUSTED: extractable only wrapped by a key the SO made trusted.
    pub wrap_with_trusted: bool,
}

impl Custody {
    /// Whether the key can leave the token only wrapped by a trusted key (a key kept
    /// for backup under an M-of-N wrap key): extractable, but only that way.
    pub fn trusted_wrap_only(&self) -> bool {
        self.extractable && self.wrap_with_trusted
    }

    /// The ways in which this key falls short of "generated inside, never out", or, for
    /// a key kept for backup, of "generated inside, out only wrapped by a trusted key".
    pub fn shortfalls(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.sensitive {
            out.push("CKA_SENSITIVE is false");
        }
        if self.extractable && !self.wrap_with_trusted {
            out.push("CKA_EXTRACTABLE is true");
        }
        if !self.always_sensitive {
            out.push("CKA_ALWAYS_SENSITIVE is false");
        }
        if !self.never_extractable && !self.trusted_wrap_only() {
            out.push("CKA_NEVER_EXTRACTABLE is false");
        }
        if !self.local {
            out.push("CKA_LOCAL is false (not generated in the token)");
        }
        out
    }

    /// The shortfalls of a key restored from a backup (unwrapped in the token: PKCS#11
    /// sets CKA_LOCAL, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE false for it).
    pub fn restored_shortfalls(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.sensitive {
            out.push("CKA_SENSITIVE is false");
        }
        if self.extractable && !self.wrap_with_trusted {
            out.push("CKA_EXTRACTABLE is true without CKA_WRAP_WITH_TRUSTED");
        }
        out
    }

    /// The custody in words, as generate-key, list-keys and the transcript say it.
    pub fn describe(&self) -> &'static str {
        match (self.trusted_wrap_only(), self.local) {
            (false, _) if !self.extractable => "sensitive, never extractable",
            (true, true) => "sensitive, extractable only wrapped by a trusted key the SO installs (CKA_WRAP_WITH_TRUSTED), generated in the token",
            (true, false) => "sensitive, extractable only wrapped by a trusted key the SO installs (CKA_WRAP_WITH_TRUSTED), restored from a backup",
            _ => "EXTRACTABLE in the clear",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custody_shortfalls_name_each_attribute() {
        let good = Custody {
            sensitive: true,
            extractable: false,
            always_sensitive: true,
            never_extractable: true,
            local: true,
            wrap_with_trusted: false,
        };
        assert!(good.shortfalls().is_empty());
        assert_eq!(good.describe(), "sensitive, never extractable");
        let bad = Custody {
            extractable: true,
            never_extractable: false,
            ..good
        };
        assert_eq!(bad.shortfalls(), vec!["CKA_EXTRACTABLE is true", "CKA_NEVER_EXTRACTABLE is false"]);
        // Kept for backup: extractable only under a trusted key, generated in the token.
        let backup = Custody { wrap_with_trusted: true, ..bad };
        assert!(backup.shortfalls().is_empty());
        assert!(backup.describe().contains("extractable only wrapped by a trusted key"));
        // Restored: PKCS#11 sets LOCAL, ALWAYS_SENSITIVE, NEVER_EXTRACTABLE false.
        let restored = Custody { local: false, always_sensitive: false, ..backup };
        assert!(restored.restored_shortfalls().is_empty());
        assert!(!restored.shortfalls().is_empty());
        assert!(restored.describe().contains("restored from a backup"));
    }
}
