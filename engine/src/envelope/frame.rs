//! Message body: frames (and the one-block body of version 1 messages), their IVs and associated
//! data, sealed and opened in parallel batches on the calling thread and a rayon pool (see
//! [`super::parallel`]), written once where they belong (no zero-fill, no copy of a frame).
#![allow(unsafe_code)] // reason: frames sealed and opened straight into a vector's spare capacity (one `set_len`), and the parse's prefetch hint.

use std::mem::MaybeUninit;

use super::errors;
use super::parallel::{frames_per_job, run_jobs};
use super::suite::{IV_LEN, TAG_LEN};
use crate::crypto::aes_gcm::AesGcmKey;
use crate::error::{Error, Result};

/// Body AAD content string of a regular frame.
pub const FRAME_STRING: &[u8] = b"AWSKMSEncryptionClient Frame";
/// Body AAD content string of the final frame.
pub const FINAL_FRAME_STRING: &[u8] = b"AWSKMSEncryptionClient Final Frame";
/// Body AAD content string of a non-framed body.
pub const SINGLE_BLOCK_STRING: &[u8] = b"AWSKMSEncryptionClient Single Block";
/// Sequence number marker that opens the final frame.
pub const FINAL_FRAME_MARKER: u32 = u32::MAX;
/// Largest number of frames in a message (2^32 - 1).
pub const MAX_FRAMES: u32 = u32::MAX;

/// The IV of frame `sequence`: eight zero bytes and the big-endian sequence number (0 is the
/// header authentication's IV).
pub fn frame_iv(sequence: u32) -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    iv[IV_LEN - 4..].copy_from_slice(&sequence.to_be_bytes());
    iv
}

/// The body AAD: message id ‖ content string ‖ sequence number ‖ content length (u64), built on
/// the stack (no allocation per frame).
#[derive(Debug)]
pub struct BodyAad {
    bytes: [u8; 96],
    len: usize,
}

impl BodyAad {
    /// The AAD of one frame (message ids are 16 or 32 bytes, content strings at most 35).
    pub fn new(message_id: &[u8], content: &[u8], sequence: u32, len: u64) -> BodyAad {
        let mut bytes = [0u8; 96];
        let mut at = 0;
        for part in [
            message_id,
            content,
            &sequence.to_be_bytes()[..],
            &len.to_be_bytes()[..],
        ] {
            let end = (at + part.len()).min(bytes.len());
            bytes[at..end].copy_from_slice(&part[..end - at]);
            at = end;
        }
        BodyAad { bytes, len: at }
    }

    /// The AAD bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The body AAD as a vector (see [`BodyAad`]).
pub fn body_aad(message_id: &[u8], content: &[u8], sequence: u32, len: u64) -> Vec<u8> {
    BodyAad::new(message_id, content, sequence, len)
        .as_bytes()
        .to_vec()
}

/// Bytes a regular frame of `frame_length` takes in the message.
pub fn regular_frame_size(frame_length: usize) -> usize {
    4 + IV_LEN + frame_length + TAG_LEN
}

/// Copies `src` into the start of `dst` (memory not yet initialised).
fn put(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        d.write(*s);
    }
}

/// Bytes a frame of `len` content bytes takes in the message.
fn frame_size(final_frame: bool, len: usize) -> usize {
    if final_frame {
        4 + 4 + IV_LEN + 4 + len + TAG_LEN
    } else {
        regular_frame_size(len)
    }
}

/// Seals one frame into `out` (exactly its serialized size; memory not yet initialised). On
/// success every byte of `out` is initialised.
fn seal_one(
    key: &AesGcmKey,
    message_id: &[u8],
    sequence: u32,
    final_frame: bool,
    plaintext: &[u8],
    out: &mut [MaybeUninit<u8>],
) -> Result<()> {
    if out.len() != frame_size(final_frame, plaintext.len()) {
        return Err(Error::Internal(
            "frame output buffer of the wrong size".into(),
        ));
    }
    let iv = frame_iv(sequence);
    let content = if final_frame {
        FINAL_FRAME_STRING
    } else {
        FRAME_STRING
    };
    let aad = BodyAad::new(message_id, content, sequence, plaintext.len() as u64);
    let mut at = 0;
    if final_frame {
        put(&mut out[..4], &FINAL_FRAME_MARKER.to_be_bytes());
        at = 4;
    }
    put(&mut out[at..at + 4], &sequence.to_be_bytes());
    at += 4;
    put(&mut out[at..at + IV_LEN], &iv);
    at += IV_LEN;
    if final_frame {
        let len = u32::try_from(plaintext.len())
            .map_err(|_| Error::Internal("final frame longer than u32".into()))?;
        put(&mut out[at..at + 4], &len.to_be_bytes());
        at += 4;
    }
    let (ct, rest) = out[at..].split_at_mut(plaintext.len());
    let mut tag = [0u8; TAG_LEN];
    key.seal_uninit(&iv, aad.as_bytes(), plaintext, ct, &mut tag)?;
    put(rest, &tag);
    Ok(())
}

/// Appends `size` bytes to `out`, written by `fill` into its spare capacity (no zero-fill
/// first). `fill` gets exactly `size` bytes of not yet initialised memory and must initialise
/// all of them when it succeeds; on a failure they are zeroed and `out` keeps its length.
fn append_with(
    out: &mut Vec<u8>,
    size: usize,
    fill: impl FnOnce(&mut [MaybeUninit<u8>]) -> Result<()>,
) -> Result<()> {
    out.reserve(size);
    let spare = &mut out.spare_capacity_mut()[..size];
    if let Err(e) = fill(spare) {
        zeroize::Zeroize::zeroize(spare);
        return Err(e);
    }
    let len = out.len() + size;
    // SAFETY: `reserve` made room for `size` more bytes, and `fill` succeeded, which for every
    // caller in this module means each of the `size` spare bytes was written: the callers split
    // the spare slice into disjoint pieces that exactly tile it, and each piece is written whole
    // by `seal_one` (header fields, `seal_uninit`'s ciphertext, tag) or `open_uninit`, whose
    // success means all of its output was written.
    unsafe { out.set_len(len) };
    Ok(())
}

/// Seals `plaintext` (a whole number of `frame_length` frames) as regular frames numbered from
/// `first_sequence`, appending them to `out`; frames are sealed in parallel on the calling
/// thread and `pool` (rayon's global pool without one), straight into `out`'s spare capacity
/// (no zero-fill), and appear in order.
pub fn seal_regular_frames(
    pool: Option<&rayon::ThreadPool>,
    key: &AesGcmKey,
    message_id: &[u8],
    frame_length: usize,
    first_sequence: u32,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    if frame_length == 0 || plaintext.len() % frame_length != 0 {
        return Err(Error::Internal("plaintext is not whole frames".into()));
    }
    let frames = plaintext.len() / frame_length;
    check_sequence_room(first_sequence, frames)?;
    let size = regular_frame_size(frame_length);
    let per_job = frames_per_job(frame_length);
    append_with(out, frames * size, |spare| {
        let jobs: Vec<_> = spare
            .chunks_mut(per_job * size)
            .zip(plaintext.chunks(per_job * frame_length))
            .enumerate()
            .collect();
        run_jobs(pool, jobs, |(job, (dst, src))| {
            let first = first_sequence + (job * per_job) as u32;
            for (i, (dst, src)) in dst
                .chunks_mut(size)
                .zip(src.chunks(frame_length))
                .enumerate()
            {
                seal_one(key, message_id, first + i as u32, false, src, dst)?;
            }
            Ok(())
        })
    })
}

/// Seals the final frame (`plaintext` at most one frame long) and appends it to `out`.
pub fn seal_final_frame(
    key: &AesGcmKey,
    message_id: &[u8],
    sequence: u32,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    check_sequence_room(sequence, 1)?;
    append_with(out, frame_size(true, plaintext.len()), |spare| {
        seal_one(key, message_id, sequence, true, plaintext, spare)
    })
}

fn check_sequence_room(first: u32, frames: usize) -> Result<()> {
    // Frames `first ..= first + frames - 1` must all be valid sequence numbers (1 ..= 2^32 - 1).
    if first == 0 || first as u64 + frames as u64 > MAX_FRAMES as u64 + 1 {
        return Err(Error::LimitExceeded(
            "a message has at most 4294967295 frames; use a larger frame length".into(),
        ));
    }
    Ok(())
}

/// A frame read from a message, not yet opened: where its ciphertext and tag lie in a buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame {
    /// The frame's sequence number.
    pub sequence: u32,
    /// Whether it is the final frame.
    pub final_frame: bool,
    /// Its IV.
    pub iv: [u8; IV_LEN],
    /// Offset of its ciphertext in the buffer.
    pub offset: usize,
    /// Its ciphertext length.
    pub len: usize,
    /// Offset of its tag in the buffer.
    pub tag_offset: usize,
}

/// A frame's header fields, checked: what [`FrameParser::head`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// The frame's sequence number.
    pub sequence: u32,
    /// Whether it is the final frame.
    pub final_frame: bool,
    /// Its IV.
    pub iv: [u8; IV_LEN],
    /// Its content (ciphertext) length.
    pub len: usize,
    /// Bytes of header fields before the ciphertext: 16, or 24 for the final frame.
    pub head_len: usize,
}

impl FrameHead {
    /// Bytes the whole frame takes in the message: fields, ciphertext, tag.
    pub fn frame_size(&self) -> usize {
        self.head_len + self.len + TAG_LEN
    }
}

/// What the bytes at the start of a frame say so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadScan {
    /// At least this many bytes (in all, from the frame's start) are needed to tell more.
    Need(usize),
    /// The frame's fields are all here and checked.
    Head(FrameHead),
}

/// The frame boundaries and header-field checks of a framed body, one place for every reader
/// (the one-shot slice path, the streaming [`super::Decryptor`], the push
/// [`super::stream::PushDecryptor`] the C adapter drives): sequence numbers in order from 1,
/// version 2 IVs equal to the sequence number, a final frame no longer than the frame length,
/// nothing after the final frame.
#[derive(Debug, Clone)]
pub struct FrameParser {
    frame_length: usize,
    check_iv: bool,
    next_sequence: u32,
    done: bool,
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl FrameParser {
    /// A parser for a body of `frame_length` frames in message format `version`.
    pub fn new(frame_length: u32, version: u8) -> FrameParser {
        FrameParser {
            frame_length: frame_length as usize,
            check_iv: version == 2,
            next_sequence: 1,
            done: false,
        }
    }

    /// Whether the final frame has been accepted.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Checks the header fields of the next frame, whose first bytes are `bytes` (any number;
    /// more than the fields are ignored), in the order a reader meets them: the sequence number
    /// (after the final-frame marker), the IV, the final frame's length. The state does not
    /// change: [`FrameParser::accept`] the head once its frame is taken.
    pub fn head(&self, bytes: &[u8]) -> Result<HeadScan> {
        if bytes.len() < 4 {
            return Ok(HeadScan::Need(4));
        }
        let final_frame = be_u32(bytes, 0) == FINAL_FRAME_MARKER;
        let at = if final_frame {
            if bytes.len() < 8 {
                return Ok(HeadScan::Need(8));
            }
            4
        } else {
            0
        };
        let sequence = be_u32(bytes, at);
        if sequence != self.next_sequence {
            return Err(errors::sequence(self.next_sequence, sequence));
        }
        let iv_end = at + 4 + IV_LEN;
        if bytes.len() < iv_end {
            return Ok(HeadScan::Need(iv_end));
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&bytes[at + 4..iv_end]);
        if self.check_iv && iv != frame_iv(sequence) {
            return Err(errors::malformed(format!(
                "frame {sequence} has an IV other than its sequence number"
            )));
        }
        let (len, head_len) = if final_frame {
            if bytes.len() < iv_end + 4 {
                return Ok(HeadScan::Need(iv_end + 4));
            }
            let len = be_u32(bytes, iv_end) as usize;
            let fl = self.frame_length;
            if len > fl {
                return Err(errors::malformed(format!(
                    "the final frame's length {len} is over the frame length {fl}"
                )));
            }
            (len, iv_end + 4)
        } else {
            (self.frame_length, iv_end)
        };
        Ok(HeadScan::Head(FrameHead {
            sequence,
            final_frame,
            iv,
            len,
            head_len,
        }))
    }

    /// Takes the frame `head` (from [`FrameParser::head`]): the next one must follow it.
    pub fn accept(&mut self, head: &FrameHead) -> Result<()> {
        if head.final_frame {
            self.done = true;
        } else {
            self.next_sequence = head
                .sequence
                .checked_add(1)
                .ok_or_else(|| errors::malformed("more frames than the format allows"))?;
        }
        Ok(())
    }

    /// The whole frame at the start of `bytes`, checked and taken, with its offsets from `base`
    /// (where `bytes` starts in the caller's buffer) and its size; `None` (nothing taken) while
    /// only part of it is there.
    pub fn take(&mut self, bytes: &[u8], base: usize) -> Result<Option<(RawFrame, usize)>> {
        // The frame length is the message's (up to 2^32 - 1): saturating, never an overflow.
        let ahead = regular_frame_size(self.frame_length).saturating_mul(PREFETCH_FRAMES);
        prefetch(bytes, ahead);
        let HeadScan::Head(head) = self.head(bytes)? else {
            return Ok(None);
        };
        let size = head.frame_size();
        if bytes.len() < size {
            return Ok(None);
        }
        self.accept(&head)?;
        let offset = base + head.head_len;
        Ok(Some((
            RawFrame {
                sequence: head.sequence,
                final_frame: head.final_frame,
                iv: head.iv,
                offset,
                len: head.len,
                tag_offset: offset + head.len,
            },
            size,
        )))
    }
}

/// Frames ahead of the parse whose first bytes [`FrameParser::take`] asks the CPU to load. A
/// frame's first line is a cache miss when the message is larger than the cache, and frames lie
/// a page or more apart, farther than the hardware prefetcher looks: without this, 84% of the
/// parse's time waited on that load (a serial part of every batch, on the calling thread).
const PREFETCH_FRAMES: usize = 16;

/// Asks the CPU to start loading the cache line that holds `bytes[at]` (nothing when `at` is
/// past the end, or on other architectures). A hint only: it reads nothing and cannot fault.
#[inline]
fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(byte) = bytes.get(at) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint that never faults and changes no memory; the address is
        // a byte of `bytes` in any case.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(byte).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

fn frame_aad(message_id: &[u8], sequence: u32, final_frame: bool, len: usize) -> BodyAad {
    let content = if final_frame {
        FINAL_FRAME_STRING
    } else {
        FRAME_STRING
    };
    BodyAad::new(message_id, content, sequence, len as u64)
}

/// Opens a batch of frames that lie in `src` (in parallel on the calling thread and `pool`,
/// rayon's global pool without one), appending their plaintexts in order to `out`, each written
/// once straight into `out`'s spare capacity: no copy of the ciphertext, no zero-fill. On any
/// failure `out` keeps its length and what was written past it is zeroed: no plaintext of the
/// batch is released, not even of the frames that did authenticate.
pub fn open_frames_into(
    pool: Option<&rayon::ThreadPool>,
    key: &AesGcmKey,
    message_id: &[u8],
    frames: &[RawFrame],
    src: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let mut total = 0usize;
    for f in frames {
        let fits = f
            .offset
            .checked_add(f.len)
            .is_some_and(|e| e == f.tag_offset)
            && f.tag_offset
                .checked_add(TAG_LEN)
                .is_some_and(|e| e <= src.len());
        if !fits {
            return Err(Error::Internal("a frame lies outside its buffer".into()));
        }
        total += f.len;
    }
    let per_job = frames.first().map_or(1, |f| frames_per_job(f.len));
    append_with(out, total, |spare| {
        let mut jobs = Vec::with_capacity(frames.len().div_ceil(per_job));
        let mut rest = spare;
        for job in frames.chunks(per_job) {
            let len = job.iter().map(|f| f.len).sum();
            let (head, tail) = rest.split_at_mut(len);
            jobs.push((job, head));
            rest = tail;
        }
        run_jobs(pool, jobs, |(job, mut dst)| {
            for f in job {
                let (head, tail) = dst.split_at_mut(f.len);
                dst = tail;
                let aad = frame_aad(message_id, f.sequence, f.final_frame, f.len);
                let ct = &src[f.offset..f.tag_offset];
                let tag = &src[f.tag_offset..f.tag_offset + TAG_LEN];
                key.open_uninit(&f.iv, aad.as_bytes(), ct, tag, head)
                    .map_err(|_| errors::frame_auth_failed(f.sequence))?;
            }
            Ok(())
        })
    })
}

/// Opens a non-framed body (one block, sequence number 1) that lies in `ciphertext`, appending
/// its plaintext to `out` (straight into its spare capacity). On failure `out` keeps its length.
pub fn open_single_block_into(
    key: &AesGcmKey,
    message_id: &[u8],
    iv: &[u8; IV_LEN],
    ciphertext: &[u8],
    tag: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let aad = BodyAad::new(message_id, SINGLE_BLOCK_STRING, 1, ciphertext.len() as u64);
    append_with(out, ciphertext.len(), |spare| {
        key.open_uninit(iv, aad.as_bytes(), ciphertext, tag, spare)
            .map_err(|_| errors::frame_auth_failed(1))
    })
}

/// A frame whose ciphertext lies in a window buffer, its tag apart (the streaming reader's
/// layout: ciphertexts back to back, so the plaintexts are too once opened in place).
#[derive(Debug, Clone, Copy)]
pub struct WindowFrame {
    /// The frame's sequence number.
    pub sequence: u32,
    /// Whether it is the final frame.
    pub final_frame: bool,
    /// Its IV.
    pub iv: [u8; IV_LEN],
    /// Its ciphertext length (its ciphertext follows the previous frame's in the window).
    pub len: usize,
    /// Its tag.
    pub tag: [u8; TAG_LEN],
}

/// Opens a batch of frames in place (in parallel on the calling thread and `pool`, rayon's
/// global pool without one): `window` holds their ciphertexts back to back and then their
/// plaintexts. On any failure the whole window is zeroed: nothing of the batch is released.
pub fn open_frames_in_place(
    pool: Option<&rayon::ThreadPool>,
    key: &AesGcmKey,
    message_id: &[u8],
    frames: &[WindowFrame],
    window: &mut [u8],
) -> Result<()> {
    let total: usize = frames.iter().map(|f| f.len).sum();
    if total != window.len() {
        return Err(Error::Internal("frames do not fill their window".into()));
    }
    let per_job = frames.first().map_or(1, |f| frames_per_job(f.len));
    let mut jobs = Vec::with_capacity(frames.len().div_ceil(per_job));
    let mut rest: &mut [u8] = window;
    for job in frames.chunks(per_job) {
        let len = job.iter().map(|f| f.len).sum();
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        jobs.push((job, head));
        rest = tail;
    }
    let result = run_jobs(pool, jobs, |(job, mut buf)| {
        for f in job {
            let (head, tail) = std::mem::take(&mut buf).split_at_mut(f.len);
            buf = tail;
            let aad = frame_aad(message_id, f.sequence, f.final_frame, f.len);
            key.open_in_place(&f.iv, aad.as_bytes(), head, &f.tag)
                .map_err(|_| errors::frame_auth_failed(f.sequence))?;
        }
        Ok(())
    });
    if result.is_err() {
        zeroize::Zeroize::zeroize(window);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_waits_for_each_field_and_checks_it_as_it_arrives() {
        let p = FrameParser::new(10, 2);
        assert_eq!(p.head(&[0, 0, 0]).unwrap(), HeadScan::Need(4));
        assert_eq!(p.head(&[0, 0, 0, 1]).unwrap(), HeadScan::Need(16));
        let mut regular = vec![0, 0, 0, 1];
        regular.extend_from_slice(&frame_iv(1));
        let HeadScan::Head(h) = p.head(&regular).unwrap() else {
            panic!("a whole regular head");
        };
        assert_eq!(
            (h.len, h.head_len, h.frame_size(), h.final_frame),
            (10, 16, 42, false)
        );
        // A wrong sequence number or IV fails as soon as its bytes are here.
        assert!(p.head(&[0, 0, 0, 2]).is_err());
        let mut bad_iv = regular.clone();
        bad_iv[15] = 9;
        assert!(p.head(&bad_iv).is_err());
        assert!(
            FrameParser::new(10, 1).head(&bad_iv).is_ok(),
            "v1 IVs are free"
        );
        // The final frame: marker, sequence number, IV, then its length.
        let mut last = vec![0xff; 4];
        assert_eq!(p.head(&last).unwrap(), HeadScan::Need(8));
        last.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(p.head(&last).unwrap(), HeadScan::Need(20));
        last.extend_from_slice(&frame_iv(1));
        assert_eq!(p.head(&last).unwrap(), HeadScan::Need(24));
        last.extend_from_slice(&3u32.to_be_bytes());
        let HeadScan::Head(h) = p.head(&last).unwrap() else {
            panic!("a whole final head");
        };
        assert_eq!(
            (h.len, h.frame_size(), h.final_frame),
            (3, 24 + 3 + 16, true)
        );
        let mut long = last[..20].to_vec();
        long.extend_from_slice(&11u32.to_be_bytes());
        assert!(
            p.head(&long).is_err(),
            "a final frame over the frame length"
        );
        // take: nothing until the whole frame is here, then offsets from the base.
        let mut p = FrameParser::new(10, 2);
        let mut frame = regular.clone();
        frame.extend_from_slice(&[0u8; 10 + TAG_LEN - 1]);
        assert!(p.take(&frame, 100).unwrap().is_none());
        frame.push(0);
        let (f, size) = p.take(&frame, 100).unwrap().unwrap();
        assert_eq!(
            (f.sequence, f.offset, f.len, f.tag_offset, size),
            (1, 116, 10, 126, 42)
        );
        assert!(p.take(&frame, 0).is_err(), "sequence 1 again");
        assert!(!p.done());
    }

    #[test]
    fn body_aad_layout() {
        let aad = body_aad(&[1u8; 32], FINAL_FRAME_STRING, 7, 9);
        assert_eq!(aad.len(), 32 + FINAL_FRAME_STRING.len() + 4 + 8);
        assert_eq!(&aad[32..32 + FINAL_FRAME_STRING.len()], FINAL_FRAME_STRING);
        assert_eq!(
            &aad[aad.len() - 12..],
            &[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9]
        );
        assert_eq!(frame_iv(0x01020304), [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    }
}
