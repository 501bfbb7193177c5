//! PEM (RFC 7468) in and out, for the files hsm-demo reads and writes whole.

/// The DER inside the one PEM block labelled `label` that `text` holds (RFC 7468),
/// or None when it holds anything else around or beside it.
pub fn pem_contents(text: &[u8], label: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?.trim();
    let body = text.strip_prefix(&format!("-----BEGIN {label}-----"))?.strip_suffix(&format!("-----END {label}-----"))?;
    let b64: String = body.split_whitespace().collect();
    openssl::base64::decode_block(&b64).ok()
}

/// PEM (RFC 7468): base64 of `der` in lines of 64 characters between the `label` lines.
pub fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = openssl::base64::encode_block(der);
    let mut out = Vec::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.extend_from_slice(format!("-----BEGIN {label}-----\n").as_bytes());
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
    out
}
