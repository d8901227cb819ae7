//! The ADB container of apk-tools v3 (apk-v3(5)): values on a heap, and the blocks of a file.
//!
//! A value is one little-endian 32-bit word: a 4-bit type and 28 bits of either the value itself (small
//! integers) or an offset into the heap, counted from the start of the ADB block's payload. Objects and
//! arrays are vectors of such words whose first word is their own length. Everything here is pure.

/// A value word; `NULL` (all zero) is also what an absent field reads as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Val(pub u32);

impl Val {
    pub const NULL: Val = Val(0);

    pub fn is_null(self) -> bool {
        self.0 == 0
    }
}

// The type nibble of a value word.
const INT: u32 = 0x1;
const INT_32: u32 = 0x2;
const INT_64: u32 = 0x3;
const BLOB_8: u32 = 0x8;
const BLOB_16: u32 = 0x9;
const BLOB_32: u32 = 0xa;
const ARRAY: u32 = 0xd;
const OBJECT: u32 = 0xe;

/// Offsets and immediate integers have 28 bits.
const IMMEDIATE_MAX: u64 = 0x0fff_ffff;

/// The ADB block header before the heap: compat version 0 (readers refuse others), version 0, two
/// reserved bytes, then the root value.
const HEADER_LEN: usize = 8;

/// What the heap cannot hold.
#[derive(Debug, PartialEq, Eq)]
pub struct HeapFull;

impl std::fmt::Display for HeapFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the package metadata is over 256 MiB, which ADB offsets cannot reach"
        )
    }
}

/// The payload of an ADB block under construction: the header, then values appended in order.
/// Children are written before their parents, which need their words.
pub struct Heap {
    bytes: Vec<u8>,
    full: bool,
}

impl Default for Heap {
    fn default() -> Self {
        Heap {
            bytes: vec![0; HEADER_LEN],
            full: false,
        }
    }
}

impl Heap {
    fn align(&mut self, to: usize) {
        while self.bytes.len() % to != 0 {
            self.bytes.push(0);
        }
    }

    /// A word of `kind` pointing at the end of the heap (after aligning to `align`).
    fn place(&mut self, kind: u32, align: usize) -> Val {
        self.align(align);
        let at = self.bytes.len() as u64;
        if at > IMMEDIATE_MAX {
            self.full = true;
            return Val::NULL;
        }
        Val(kind << 28 | at as u32)
    }

    pub fn int(&mut self, v: u64) -> Val {
        if v <= IMMEDIATE_MAX {
            return Val(INT << 28 | v as u32);
        }
        match u32::try_from(v) {
            Ok(small) => {
                let val = self.place(INT_32, 4);
                self.bytes.extend_from_slice(&small.to_le_bytes());
                val
            }
            Err(_) => {
                let val = self.place(INT_64, 4);
                self.bytes.extend_from_slice(&v.to_le_bytes());
                val
            }
        }
    }

    /// A blob; the empty one is no value at all (as apk writes it).
    pub fn blob(&mut self, b: &[u8]) -> Val {
        self.blob_at(b).0
    }

    /// A blob and where its bytes start in the payload (to patch them later).
    pub fn blob_at(&mut self, b: &[u8]) -> (Val, usize) {
        let val = match b.len() {
            0 => return (Val::NULL, self.bytes.len()),
            1..=0xff => {
                let val = self.place(BLOB_8, 1);
                self.bytes.push(b.len() as u8);
                val
            }
            0x100..=0xffff => {
                let val = self.place(BLOB_16, 2);
                self.bytes
                    .extend_from_slice(&(b.len() as u16).to_le_bytes());
                val
            }
            _ => {
                let val = self.place(BLOB_32, 4);
                match u32::try_from(b.len()) {
                    Ok(n) => self.bytes.extend_from_slice(&n.to_le_bytes()),
                    Err(_) => self.full = true,
                }
                val
            }
        };
        let at = self.bytes.len();
        self.bytes.extend_from_slice(b);
        (val, at)
    }

    /// An object whose `fields[i]` is schema field `i + 1`. Trailing absent fields are not written; an
    /// object with no field at all is absent itself.
    pub fn object(&mut self, fields: &[Val]) -> Val {
        let used = fields
            .iter()
            .rposition(|v| !v.is_null())
            .map_or(0, |i| i + 1);
        self.vector(OBJECT, &fields[..used])
    }

    /// An array of the present `items`; an empty one is absent.
    pub fn array(&mut self, items: &[Val]) -> Val {
        let items: Vec<Val> = items.iter().copied().filter(|v| !v.is_null()).collect();
        self.vector(ARRAY, &items)
    }

    fn vector(&mut self, kind: u32, slots: &[Val]) -> Val {
        if slots.is_empty() {
            return Val::NULL;
        }
        let val = self.place(kind, 4);
        // Slot 0 counts every slot, itself included.
        self.bytes
            .extend_from_slice(&(slots.len() as u32 + 1).to_le_bytes());
        for v in slots {
            self.bytes.extend_from_slice(&v.0.to_le_bytes());
        }
        val
    }

    /// The finished payload with `root` in its header.
    pub fn finish(mut self, root: Val) -> Result<Vec<u8>, HeapFull> {
        if self.full {
            return Err(HeapFull);
        }
        self.bytes[4..8].copy_from_slice(&root.0.to_le_bytes());
        Ok(self.bytes)
    }
}

/// The kinds of block in a file, in the only order they may come: one ADB, signatures, then data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    Adb = 0,
    Data = 2,
}

/// The largest size a plain 4-byte block header can carry (30 bits, header included).
const PLAIN_SIZE_MAX: u64 = 0x3fff_ffff;

/// Appends a block holding `parts` (one payload written in pieces): its header, the payload, and zero
/// padding to a multiple of 8, which readers require after the last block too.
pub fn block(out: &mut Vec<u8>, kind: Block, parts: &[&[u8]]) {
    let payload: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let start = out.len();
    if 4 + payload <= PLAIN_SIZE_MAX {
        out.extend_from_slice(&((kind as u32) << 30 | (4 + payload) as u32).to_le_bytes());
    } else {
        // The extended header: type 3 with the real type below it, a reserved word, a 64-bit size.
        out.extend_from_slice(&(3u32 << 30 | kind as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(16 + payload).to_le_bytes());
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    while (out.len() - start) % 8 != 0 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn integers_take_the_smallest_form() {
        let mut h = Heap::default();
        assert_eq!(h.int(0), Val(0x1000_0000), "zero is a value, not absent");
        assert_eq!(h.int(0o755), Val(0x1000_01ed));
        assert_eq!(h.int(0x0fff_ffff), Val(0x1fff_ffff));
        let big = h.int(1_700_000_000);
        assert_eq!(big, Val(0x2000_0008));
        let huge = h.int(1 << 40);
        assert_eq!(huge, Val(0x3000_000c));
        let p = h.finish(Val::NULL).unwrap();
        assert_eq!(word(&p, 8), 1_700_000_000);
        assert_eq!(u64::from_le_bytes(p[12..20].try_into().unwrap()), 1 << 40);
    }

    #[test]
    fn blobs_carry_their_length_in_one_two_or_four_bytes_and_empty_is_absent() {
        let mut h = Heap::default();
        assert_eq!(h.blob(b""), Val::NULL);
        assert_eq!(h.blob(b"root"), Val(0x8000_0008));
        let mid = vec![b'x'; 300];
        // 8 + 1 + 4 = 13, aligned to 2: 14.
        assert_eq!(h.blob(&mid), Val(0x9000_000e));
        let long = vec![b'y'; 70_000];
        // 14 + 2 + 300 = 316, aligned to 4.
        assert_eq!(h.blob(&long), Val(0xa000_013c));
        let p = h.finish(Val::NULL).unwrap();
        assert_eq!(&p[8..13], b"\x04root");
        assert_eq!(u16::from_le_bytes([p[14], p[15]]), 300);
        assert_eq!(word(&p, 316), 70_000);
        assert_eq!(p.len(), 320 + 70_000);
    }

    #[test]
    fn objects_drop_trailing_absent_fields_and_count_slot_zero() {
        let mut h = Heap::default();
        let name = h.blob(b"a");
        assert_eq!(h.object(&[Val::NULL, Val::NULL]), Val::NULL);
        assert_eq!(h.array(&[Val::NULL]), Val::NULL);
        let obj = h.object(&[Val::NULL, name, Val::NULL]);
        assert_eq!(obj.0 >> 28, 0xe);
        let arr = h.array(&[name, Val::NULL, obj]);
        assert_eq!(arr.0 >> 28, 0xd);
        let p = h.finish(obj).unwrap();
        let at = (obj.0 & 0x0fff_ffff) as usize;
        assert_eq!(at % 4, 0);
        assert_eq!(word(&p, at), 3, "count, an absent field 1, field 2");
        assert_eq!(word(&p, at + 4), 0);
        assert_eq!(word(&p, at + 8), name.0);
        let at = (arr.0 & 0x0fff_ffff) as usize;
        assert_eq!(
            [word(&p, at), word(&p, at + 4), word(&p, at + 8)],
            [3, name.0, obj.0]
        );
        assert_eq!(word(&p, 4), obj.0, "the root");
        assert_eq!(&p[..4], &[0, 0, 0, 0], "compat version 0");
    }

    #[test]
    fn blocks_are_padded_to_eight_bytes_even_the_last() {
        let mut out = Vec::new();
        block(&mut out, Block::Adb, &[&[1; 12]]);
        assert_eq!(word(&out, 0), 16);
        assert_eq!(out.len(), 16);
        block(&mut out, Block::Data, &[&[2; 8], b"abc"]);
        assert_eq!(word(&out, 16), 0x8000_0000 | 15);
        assert_eq!(out.len(), 16 + 16);
        assert_eq!(&out[16 + 15..], &[0]);
    }
}
