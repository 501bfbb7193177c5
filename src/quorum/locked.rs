//! Secret bytes kept out of swap: a buffer locked in RAM (`mlock(2)`) before the secret
//! is copied in, zeroized on drop.
//!
//! The pages stay locked until the process exits: locks do not nest (one `munlock`
//! would unlock a page another secret shares), and hsm-demo's processes are short. A
//! process that may not lock memory (`RLIMIT_MEMLOCK` 0 in some containers) says so
//! once on stderr and goes on: the secret is still zeroized, and core dumps are off.

use std::sync::Once;

use zeroize::Zeroizing;

pub struct Locked(Zeroizing<Vec<u8>>);

impl Locked {
    /// A locked copy of `secret`; the caller zeroizes its own copy.
    pub fn copy_of(secret: &[u8]) -> Locked {
        let mut buf = Zeroizing::new(Vec::with_capacity(secret.len().max(1)));
        lock(buf.as_ptr(), buf.capacity());
        buf.extend_from_slice(secret);
        Locked(buf)
    }
}

/// Never the bytes: a secret must not reach a log or a panic message.
impl std::fmt::Debug for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Locked({} secret bytes)", self.0.len())
    }
}

impl std::ops::Deref for Locked {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Locks the pages holding `len` bytes at `ptr` (a note on stderr, once, if it cannot).
#[allow(unsafe_code)]
pub fn lock(ptr: *const u8, len: usize) {
    // SAFETY: mlock only changes the residency of the pages that hold this live
    // allocation; it reads or writes no memory.
    let rc = unsafe { libc::mlock(ptr.cast(), len) };
    if rc != 0 {
        static NOTE: Once = Once::new();
        let why = std::io::Error::last_os_error();
        NOTE.call_once(|| {
            crate::console::note(&format!(
                "secrets are zeroized after use but could not be locked against swapping (mlock: {why}; raise RLIMIT_MEMLOCK)"
            ))
        });
    }
}
