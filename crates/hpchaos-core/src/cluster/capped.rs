//! Output held within a cap: what a remote command prints is kept as its
//! first and last [`KEEP`] bytes, whatever it prints (a probe that prints
//! 200 MB, a tool that dumps a core to stdout), with the count of what was
//! cut between them, said in the text. Memory per stream is bounded by
//! twice [`KEEP`].

use std::collections::VecDeque;

/// Bytes kept from the start of a stream, and again from its end: far
/// above what hpchaos parses (`sinfo` of the targets, `scontrol` of a job,
/// a node's process list), far below a memory worth noticing.
pub const KEEP: usize = 4 * 1024 * 1024;

/// The words that stand where output was cut (see [`Capped::into_text`]).
const CUT_SAID: &str = " bytes cut here: the output was ";

/// Whether `text` is output [`Capped`] cut: a reader that parses it must
/// not take it for the whole.
pub fn was_cut(text: &str) -> bool {
    text.contains(CUT_SAID) && text.contains("[hpchaos: ")
}

/// One stream's output, bounded: the head, a ring of the tail, and the
/// total length seen.
#[derive(Debug, Default)]
pub struct Capped {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
    keep: usize,
}

impl Capped {
    /// A stream that keeps [`KEEP`] bytes at each end.
    pub fn new() -> Capped {
        Capped::keeping(KEEP)
    }

    /// A stream that keeps `keep` bytes at each end.
    pub fn keeping(keep: usize) -> Capped {
        Capped {
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
            keep,
        }
    }

    /// Takes in the next chunk.
    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let room = self.keep.saturating_sub(self.head.len());
        let to_head = room.min(data.len());
        self.head.extend_from_slice(&data[..to_head]);
        data = &data[to_head..];
        if data.is_empty() {
            return;
        }
        // Only the last `keep` bytes of the chunk can stay in the tail.
        if data.len() > self.keep {
            data = &data[data.len() - self.keep..];
        }
        let over = (self.tail.len() + data.len()).saturating_sub(self.keep);
        self.tail.drain(..over);
        self.tail.extend(data);
    }

    /// Bytes seen in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes cut between the head and the tail.
    pub fn cut(&self) -> u64 {
        self.total - self.head.len() as u64 - self.tail.len() as u64
    }

    /// The text: whole when nothing was cut, else the head, a line saying
    /// how much was cut, and the tail (invalid UTF-8 replaced).
    pub fn into_text(self) -> String {
        let cut = self.cut();
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if cut > 0 {
            text.push_str(&format!(
                "\n[hpchaos: {cut}{CUT_SAID}{} bytes; its first and last {} are kept]\n",
                self.total, self.keep
            ));
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(a.len() + b.len());
        tail.extend_from_slice(a);
        tail.extend_from_slice(b);
        text.push_str(&String::from_utf8_lossy(&tail));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut c = Capped::keeping(8);
        c.push(b"hello ");
        c.push(b"world");
        assert_eq!(c.cut(), 0);
        assert_eq!(c.into_text(), "hello world");
    }

    #[test]
    fn long_output_keeps_its_ends_and_says_what_was_cut() {
        let mut c = Capped::keeping(4);
        for chunk in [&b"abcdef"[..], b"ghij", b"", b"klmnopqrstuvwxyz"] {
            c.push(chunk);
        }
        assert_eq!(c.total(), 26);
        assert_eq!(c.cut(), 18);
        let text = c.into_text();
        assert!(
            text.starts_with("abcd\n[hpchaos: 18 bytes cut here"),
            "{text}"
        );
        assert!(text.ends_with("]\nwxyz"), "{text}");
    }

    #[test]
    fn a_huge_stream_stays_within_twice_the_cap() {
        let mut c = Capped::keeping(1024);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..100 {
            c.push(&chunk);
        }
        assert_eq!(c.total(), 6_553_600);
        assert!(c.head.len() + c.tail.len() <= 2048);
    }
}
