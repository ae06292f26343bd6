//! Reading an audit log from its end: the newest records first, without reading the whole file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Calls `visit` with each complete line of the file (without its newline), last first, until it
/// returns false. A last line without its newline (a torn write) is skipped.
pub fn lines_backwards(path: &Path, mut visit: impl FnMut(&[u8]) -> bool) -> std::io::Result<()> {
    const CHUNK: u64 = 1 << 16;
    let mut file = File::open(path)?;
    let mut pos = file.metadata()?.len();
    let mut leftover: Vec<u8> = Vec::new();
    let mut tail_dropped = false;
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK);
        let mut buf = vec![0u8; (pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        buf.extend_from_slice(&leftover);
        pos = start;
        let mut end = buf.len();
        while let Some(newline) = buf[..end].iter().rposition(|&b| b == b'\n') {
            if !tail_dropped {
                // After the file's last newline: nothing, or a torn line.
                tail_dropped = true;
            } else if !visit(&buf[newline + 1..end]) {
                return Ok(());
            }
            end = newline;
        }
        leftover = buf[..end].to_vec();
    }
    if tail_dropped {
        visit(&leftover);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_backwards_across_chunks_and_a_torn_tail_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let lines: Vec<String> = (0..5000)
            .map(|i| format!("line {i} {}", "x".repeat(i % 97)))
            .collect();
        for torn in ["", "torn without newline"] {
            std::fs::write(&path, format!("{}\n{torn}", lines.join("\n"))).unwrap();
            let mut seen = Vec::new();
            lines_backwards(&path, |l| {
                seen.push(String::from_utf8(l.to_vec()).unwrap());
                true
            })
            .unwrap();
            seen.reverse();
            assert_eq!(seen, lines);
        }
        let mut last_two = Vec::new();
        lines_backwards(&path, |l| {
            last_two.push(l.to_vec());
            last_two.len() < 2
        })
        .unwrap();
        assert_eq!(last_two.len(), 2);
        std::fs::write(&path, "only a torn line").unwrap();
        let mut count = 0;
        lines_backwards(&path, |_| {
            count += 1;
            true
        })
        .unwrap();
        assert_eq!(count, 0);
    }
}
