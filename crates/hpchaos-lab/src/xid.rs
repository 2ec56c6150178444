//! The lab's own reader of NVIDIA's Xid kernel lines, as the node's health
//! agent and the dcgm-exporter stand-in see them; written apart from the
//! harness's reader on purpose, so a format mistake in one shows up
//! against the other. The format is NVIDIA's (Xid Errors, r555 guide):
//! `NVRM: Xid (PCI:DDDD:BB:DD[.F]): CODE, pid=..., name=..., text`, the
//! `PCI:` prefix and the domain absent on older drivers, `pid='<unknown>'`
//! on R550 and later; dmesg's time or a `<priority>` may stand before it.

use std::sync::OnceLock;

use regex::Regex;

/// One Xid line: the GPU's PCI bus and the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidLine {
    pub bus: u32,
    pub code: u32,
}

fn pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        // The pattern is a literal checked by the tests below.
        Regex::new(
            r"NVRM: Xid \((?:PCI:)?(?:[0-9A-Fa-f]{4}:)?([0-9A-Fa-f]{2}):[0-9A-Fa-f]{2}(?:\.[0-9A-Fa-f])?\): (\d+)\b",
        )
        .unwrap_or_else(|e| unreachable!("the Xid pattern is a valid literal: {e}"))
    })
}

/// Reads an Xid kernel line; `None` for any other line.
pub fn read(line: &str) -> Option<XidLine> {
    let found = pattern().captures(line)?;
    Some(XidLine {
        bus: u32::from_str_radix(found.get(1)?.as_str(), 16).ok()?,
        code: found.get(2)?.as_str().parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_driver_formats_and_nothing_else() {
        let cases = [
            (
                "NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.",
                Some((0x3b, 79)),
            ),
            (
                "[ 1234.567890] NVRM: Xid (PCI:0000:53:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double bit error",
                Some((0x53, 48)),
            ),
            (
                "<3>NVRM: Xid (PCI:0000:63:00.0): 74, pid=7, name=x, NVLink",
                Some((0x63, 74)),
            ),
            (
                "NVRM: Xid (0000:03:00): 13, 0003 00000000 0000c197",
                Some((0x03, 13)),
            ),
            ("NVRM: Xid (PCI:0000:53:00): pid=1, no code", None),
            ("NVRM: GPU at PCI:0000:53:00: GPU-1234", None),
            ("kernel: Xid 79 mentioned in passing", None),
        ];
        for (line, want) in cases {
            assert_eq!(read(line).map(|x| (x.bus, x.code)), want, "{line}");
        }
    }

    #[test]
    fn reads_the_recorded_field_case() {
        let text = include_str!("../../../tests/fixtures/field-cases/13-xid-kernel-lines.txt");
        let read: Vec<(u32, u32)> = text
            .lines()
            .filter_map(read)
            .map(|x| (x.bus, x.code))
            .collect();
        assert_eq!(read, [(0x53, 79), (0xcb, 13), (0xcb, 109)]);
    }
}
