//! Message body: frames (and the one-block body of version 1 messages), their IVs and associated
//! data, sealed and opened in parallel batches on a rayon pool.

use rayon::prelude::*;

use super::errors;
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

/// Seals one frame into `out` (exactly its serialized size).
fn seal_one(
    key: &AesGcmKey,
    message_id: &[u8],
    sequence: u32,
    final_frame: bool,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let iv = frame_iv(sequence);
    let (content, aad) = if final_frame {
        (FINAL_FRAME_STRING, plaintext.len() as u64)
    } else {
        (FRAME_STRING, plaintext.len() as u64)
    };
    let aad = BodyAad::new(message_id, content, sequence, aad);
    let aad = aad.as_bytes();
    let mut at = 0;
    if final_frame {
        out[..4].copy_from_slice(&FINAL_FRAME_MARKER.to_be_bytes());
        at = 4;
    }
    out[at..at + 4].copy_from_slice(&sequence.to_be_bytes());
    at += 4;
    out[at..at + IV_LEN].copy_from_slice(&iv);
    at += IV_LEN;
    if final_frame {
        let len = u32::try_from(plaintext.len())
            .map_err(|_| Error::Internal("final frame longer than u32".into()))?;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        at += 4;
    }
    let (ct, rest) = out[at..].split_at_mut(plaintext.len());
    let tag: &mut [u8; TAG_LEN] = rest
        .get_mut(..TAG_LEN)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| Error::Internal("frame output buffer too short".into()))?;
    key.seal(&iv, aad, plaintext, ct, tag)
}

/// Seals `plaintext` (a whole number of `frame_length` frames) as regular frames numbered from
/// `first_sequence`, appending them to `out`; frames are sealed in parallel on the current rayon
/// pool and appear in order.
pub fn seal_regular_frames(
    key: &AesGcmKey,
    message_id: &[u8],
    frame_length: usize,
    first_sequence: u32,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    debug_assert_eq!(plaintext.len() % frame_length, 0);
    let frames = plaintext.len() / frame_length;
    check_sequence_room(first_sequence, frames)?;
    let size = regular_frame_size(frame_length);
    let start = out.len();
    out.resize(start + frames * size, 0);
    out[start..]
        .par_chunks_mut(size)
        .zip(plaintext.par_chunks(frame_length))
        .enumerate()
        .try_for_each(|(i, (dst, src))| {
            seal_one(key, message_id, first_sequence + i as u32, false, src, dst)
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
    let start = out.len();
    out.resize(start + 4 + 4 + IV_LEN + 4 + plaintext.len() + TAG_LEN, 0);
    seal_one(
        key,
        message_id,
        sequence,
        true,
        plaintext,
        &mut out[start..],
    )
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

/// A frame read from a message, not yet opened: where its ciphertext and tag lie in a batch
/// buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame {
    /// The frame's sequence number.
    pub sequence: u32,
    /// Whether it is the final frame.
    pub final_frame: bool,
    /// Its IV.
    pub iv: [u8; IV_LEN],
    /// Offset of its ciphertext in the batch buffer.
    pub offset: usize,
    /// Its ciphertext length.
    pub len: usize,
    /// Offset of its tag in the batch buffer.
    pub tag_offset: usize,
}

/// Opens a batch of frames (in parallel), writing their plaintexts in order into `out` (resized
/// to their total length). On any failure `out` is cleared: no plaintext of the batch is
/// released, not even of the frames that did authenticate.
pub fn open_frames(
    key: &AesGcmKey,
    message_id: &[u8],
    frames: &[RawFrame],
    batch: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let total: usize = frames.iter().map(|f| f.len).sum();
    out.clear();
    out.resize(total, 0);
    let mut slices = Vec::with_capacity(frames.len());
    let mut rest: &mut [u8] = out.as_mut_slice();
    for f in frames {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(f.len);
        slices.push(head);
        rest = tail;
    }
    let result = slices
        .into_par_iter()
        .zip(frames.par_iter())
        .try_for_each(|(dst, f)| {
            let content = if f.final_frame {
                FINAL_FRAME_STRING
            } else {
                FRAME_STRING
            };
            let aad = BodyAad::new(message_id, content, f.sequence, f.len as u64);
            let ct = &batch[f.offset..f.offset + f.len];
            let tag = &batch[f.tag_offset..f.tag_offset + TAG_LEN];
            key.open(&f.iv, aad.as_bytes(), ct, tag, dst)
                .map_err(|_| errors::frame_auth_failed(f.sequence))
        });
    if let Err(e) = result {
        zeroize::Zeroize::zeroize(out.as_mut_slice());
        out.clear();
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
