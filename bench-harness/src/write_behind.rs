//! A file writer that starts the disk writing as data arrives, for the `stream` workload's file
//! pass.
//!
//! Linux holds written pages in memory until a tenth of it is dirty before it starts writing
//! them back, so a program that writes 1 GiB and then calls `fsync` pays for producing the data
//! and for the disk one after the other. Every [`STEP`] bytes this writer asks the kernel to
//! start writing the step just written (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`, which
//! does not wait), and waits for the step before it to reach the disk, so at most two steps are
//! in flight: the disk works while the next data is produced. The disk's own speed and the
//! encryptor's file passes are measured through it alike. Elsewhere than Linux it only counts.

#![allow(unsafe_code)] // reason: sync_file_range through libc.

use std::fs::File;
use std::io::{self, Write};

/// Bytes between two write-back requests.
pub const STEP: u64 = 8 << 20;

/// A [`File`] whose written bytes the kernel starts writing to disk every [`STEP`] bytes.
#[derive(Debug)]
pub struct WriteBehind {
    file: File,
    written: u64,
    requested: u64,
}

impl WriteBehind {
    /// Writes to `file` from its start.
    pub fn new(file: File) -> WriteBehind {
        WriteBehind {
            file,
            written: 0,
            requested: 0,
        }
    }

    /// Writes back what is not yet written and waits for the disk (`fsync`).
    pub fn sync(mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_all()
    }

    #[cfg(target_os = "linux")]
    fn start_write_back(&mut self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        let len = (self.written - self.requested) as libc::off64_t;
        // SAFETY: `fd` is this writer's open file, and the range is bytes it wrote; the call
        // reads no memory of ours.
        let started = unsafe {
            libc::sync_file_range(
                fd,
                self.requested as libc::off64_t,
                len,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if started != 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(before) = self.requested.checked_sub(STEP) {
            // SAFETY: as above, for the step written before.
            let waited = unsafe {
                libc::sync_file_range(
                    fd,
                    before as libc::off64_t,
                    STEP as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                )
            };
            if waited != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        self.requested = self.written;
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn start_write_back(&mut self) -> io::Result<()> {
        self.requested = self.written;
        Ok(())
    }
}

impl Write for WriteBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.requested >= STEP {
            self.start_write_back()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_written_reaches_the_file_in_order() {
        let dir =
            std::env::temp_dir().join(format!("keyplane-write-behind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        let data: Vec<u8> = (0..(2 * STEP + 12_345)).map(|i| (i % 251) as u8).collect();
        let mut w = WriteBehind::new(File::create(&path).unwrap());
        for piece in data.chunks(1 << 20) {
            w.write_all(piece).unwrap();
        }
        assert_eq!(w.requested, 2 * STEP, "write-back requested once per step");
        w.sync().unwrap();
        let read = std::fs::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(read == data, "the file holds other bytes than were written");
    }
}
