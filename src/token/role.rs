//! Whose PIN: the two PKCS#11 user types (CKU_SO, CKU_USER), named once.

/// A PKCS#11 role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// CKU_SO: initialises the token and the user PIN.
    SecurityOfficer,
    /// CKU_USER: uses the keys.
    User,
}

impl Role {
    /// "SO" or "user".
    pub fn name(self) -> &'static str {
        match self {
            Role::SecurityOfficer => "SO",
            Role::User => "user",
        }
    }

    /// "SO PIN" or "user PIN".
    pub fn pin_name(self) -> &'static str {
        match self {
            Role::SecurityOfficer => "SO PIN",
            Role::User => "user PIN",
        }
    }
}
