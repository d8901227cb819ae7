//! Random bytes from the kernel (`/dev/urandom`, a device node procd creates on OpenWrt): API tokens and
//! GENA subscription IDs must not be guessable from the clock or the process id.

use std::io::Read;

/// `N` random bytes, or why the kernel's source could not be read.
pub fn bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_differ_and_print_as_hex() {
        let (a, b) = (super::bytes::<16>().unwrap(), super::bytes::<16>().unwrap());
        assert_ne!(a, b);
        assert_eq!(super::hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
