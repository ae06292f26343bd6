//! Requests signed by the `aws-sigv4` crate (AWS's own signer, which nobody here wrote), for the
//! tests of the endpoint's and the XKS proxy's authentication.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;

/// Who signs, for which region and service, and when.
pub struct AwsSigner<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    /// `kms`, or `kms-xks-proxy`.
    pub service: &'a str,
    pub time: SystemTime,
    /// Whether the signature covers an `x-amz-content-sha256` header it adds.
    pub content_sha256: bool,
}

impl AwsSigner<'_> {
    /// The whole header list of a `method` request of `body` to `url`: `headers` (all signed),
    /// then the headers the signer adds (`authorization`, `x-amz-date`, and
    /// `x-amz-content-sha256` when asked).
    pub fn signed_headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(String, String)> {
        let identity = aws_credential_types::Credentials::new(
            self.access_key_id,
            self.secret,
            None,
            None,
            "keyplane-testkit",
        )
        .into();
        let mut settings = SigningSettings::default();
        if self.content_sha256 {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(settings)
            .build()
            .expect("signing parameters")
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .expect("a signable request");
        let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
        let added = instructions.headers();
        let all = headers.iter().copied().chain(added);
        all.map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }
}
