//! Reading inputs (files or standard input) and writing outputs (files or standard output), and
//! the small text formats on the command line (KEY=VALUE pairs, base64 blobs).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::outcome::{Failure, INTERNAL, NOT_FOUND};

/// The most bytes read from an input (a ciphertext blob is at most about 1 MiB).
const MAX_INPUT: u64 = 2 << 20;

pub fn io_failure(what: &str, path: &Path, err: std::io::Error) -> Failure {
    Failure {
        code: "KMSInternalException".into(),
        message: format!("could not {what} {}: {err}", path.display()),
        exit: if err.kind() == std::io::ErrorKind::NotFound {
            NOT_FOUND
        } else {
            INTERNAL
        },
    }
}

/// Reads `path`, or standard input when it is absent or `-`.
pub fn read_input(path: Option<&Path>) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut bytes = Zeroizing::new(Vec::new());
    match path {
        Some(p) if p != Path::new("-") => {
            std::fs::File::open(p)
                .and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut bytes))
                .map_err(|e| io_failure("read", p, e))?;
        }
        _ => {
            std::io::stdin()
                .lock()
                .take(MAX_INPUT + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| io_failure("read", Path::new("standard input"), e))?;
        }
    }
    if bytes.len() as u64 > MAX_INPUT {
        return Err(Failure::usage(format!(
            "the input is larger than {MAX_INPUT} bytes"
        )));
    }
    Ok(bytes)
}

/// Writes `bytes` to a new or truncated file (mode 0600 when `private`).
pub fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), Failure> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| io_failure("write", path, e))
}

/// Writes raw bytes to standard output.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| io_failure("write", Path::new("standard output"), e))
}

/// Standard base64.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A ciphertext blob given as raw bytes or as base64 text. A blob's first byte is its format
/// version (0x01), which is not a base64 character, so the two cannot be confused.
pub fn blob_from(input: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    match base64::engine::general_purpose::STANDARD.decode(&trimmed) {
        Ok(decoded) if !trimmed.is_empty() => decoded,
        _ => input.to_vec(),
    }
}

/// `der` as PEM with `label` (`PUBLIC KEY`, `PRIVATE KEY`): base64 in lines of 64.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = b64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// DER from a key file given as PEM, base64 of the DER, or the DER itself.
pub fn der_from(input: &[u8]) -> Result<Vec<u8>, Failure> {
    let text = String::from_utf8_lossy(input);
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix("-----BEGIN ") {
        let body: String = rest
            .lines()
            .skip(1)
            .take_while(|line| !line.starts_with("-----END "))
            .collect();
        return base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| Failure::usage(format!("the PEM key is not valid base64: {e}")));
    }
    Ok(blob_from(input))
}

/// KEY=VALUE arguments as a map; a repeated key is an error.
pub fn pairs(args: &[String], what: &str) -> Result<BTreeMap<String, String>, Failure> {
    let mut map = BTreeMap::new();
    for arg in args {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("{what} '{arg}' must be KEY=VALUE")))?;
        if map.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(Failure::usage(format!("{what} key '{key}' is given twice")));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_accepted_raw_or_in_base64() {
        let raw = vec![0x01, 0x01, 0xff, 0x00, b'\n', 0x7f];
        assert_eq!(blob_from(&raw), raw);
        let text = format!("{}\n", b64(&raw));
        assert_eq!(blob_from(text.as_bytes()), raw);
    }

    #[test]
    fn keys_are_read_as_pem_base64_or_der_and_written_as_pem() {
        let der: Vec<u8> = (0..91u8).map(|i| i.wrapping_mul(37)).collect();
        let text = pem("PUBLIC KEY", &der);
        assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(der_from(text.as_bytes()).unwrap(), der);
        assert_eq!(der_from(b64(&der).as_bytes()).unwrap(), der);
        let spki_like = [0x30, 0x59, 0x30, 0x13, 0x06, 0x07];
        assert_eq!(der_from(&spki_like).unwrap(), spki_like);
    }

    #[test]
    fn pairs_need_an_equals_sign_and_unique_keys() {
        let ok = pairs(&["a=1".into(), "b=x=y".into(), "c=".into()], "context").unwrap();
        assert_eq!(ok["b"], "x=y");
        assert_eq!(ok["c"], "");
        assert_eq!(pairs(&["nope".into()], "context").unwrap_err().exit, 2);
        assert_eq!(
            pairs(&["a=1".into(), "a=2".into()], "tag")
                .unwrap_err()
                .exit,
            2
        );
    }
}
