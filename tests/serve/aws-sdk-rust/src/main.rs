//! The AWS SDK for Rust (aws-sdk-kms from crates.io) against `keyplane serve`.
//!
//! Endpoint from `KP_URL`; the server's certificate from `KP_CA` (a PEM file), trusted through a
//! custom root store on the SDK's own HTTP client (aws-smithy-http-client with rustls on aws-lc);
//! credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`. Prints `ok NAME` or
//! `FAIL NAME: why` per check and exits non-zero on any failure.

use std::future::Future;
use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_kms::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};

type Check = Result<(), String>;

struct Suite {
    failures: usize,
}

impl Suite {
    async fn check<F: Future<Output = Check>>(&mut self, name: &str, body: F) {
        match body.await {
            Ok(()) => println!("ok {name}"),
            Err(why) => {
                self.failures += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
}

fn expect(condition: bool, what: impl Into<String>) -> Check {
    if condition {
        Ok(())
    } else {
        Err(what.into())
    }
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// A KMS client for `url`, trusting only the PEM certificate at `ca` (when given), signing with
/// `access_key`/`secret`.
async fn client(
    url: &str,
    ca: Option<&str>,
    access_key: &str,
    secret: &str,
) -> Result<Client, String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(
            var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        ))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(
            access_key,
            secret,
            None,
            None,
            "keyplane-test",
        ));
    // The SDK's HTTP client, built here so its TLS roots are ours: the server's certificate only.
    let mut tls_context = TlsContext::builder();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| format!("reading {ca}: {e}"))?;
        tls_context =
            tls_context.with_trust_store(TrustStore::empty().with_pem_certificate(pem.as_slice()));
    }
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            tls_context
                .build()
                .map_err(|e| format!("TLS context: {e}"))?,
        )
        .build_https();
    loader = loader.http_client(http);
    let config = loader.load().await;
    let kms = aws_sdk_kms::config::Builder::from(&config)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    Ok(Client::from_conf(kms))
}

#[tokio::main]
async fn main() -> ExitCode {
    let setup = async {
        let url = var("KP_URL")?;
        let ca = std::env::var("KP_CA").ok().filter(|c| !c.is_empty());
        let id = var("AWS_ACCESS_KEY_ID")?;
        let secret = var("AWS_SECRET_ACCESS_KEY")?;
        let kms = client(&url, ca.as_deref(), &id, &secret).await?;
        let wrong = client(&url, ca.as_deref(), &id, &"x".repeat(40)).await?;
        // Without the certificate in its roots the SDK must refuse the server.
        let untrusting = if ca.is_some() {
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(
                    TlsContext::builder()
                        .with_trust_store(TrustStore::empty())
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .build_https();
            let config = aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(&url)
                .credentials_provider(Credentials::new(&id, &secret, None, None, "keyplane-test"))
                .http_client(http)
                .load()
                .await;
            Some(Client::new(&config))
        } else {
            None
        };
        Ok::<_, String>((kms, wrong, untrusting))
    };
    let (kms, wrong, untrusting) = match setup.await {
        Ok(clients) => clients,
        Err(why) => {
            println!("FAIL setup: {why}");
            return ExitCode::FAILURE;
        }
    };
    let mut suite = Suite { failures: 0 };

    let mut key_id = String::new();
    let mut key_arn = String::new();
    suite
        .check("CreateKey", async {
            let out = kms
                .create_key()
                .description("aws-sdk-rust")
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let meta = out.key_metadata().ok_or("no KeyMetadata")?;
            key_id = meta.key_id().to_string();
            key_arn = meta.arn().unwrap_or_default().to_string();
            expect(meta.enabled(), "not enabled")?;
            expect(meta.creation_date().is_some(), "no CreationDate")?;
            expect(key_arn.ends_with(&key_id), format!("ARN {key_arn}"))
        })
        .await;

    suite
        .check("Encrypt and Decrypt round trip", async {
            let plaintext: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
            let sealed = kms
                .encrypt()
                .key_id(&key_id)
                .plaintext(Blob::new(plaintext.clone()))
                .encryption_context("app", "rust")
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            expect(
                sealed.key_id() == Some(key_arn.as_str()),
                format!("KeyId {:?}", sealed.key_id()),
            )?;
            let blob = sealed.ciphertext_blob().ok_or("no CiphertextBlob")?.clone();
            let opened = kms
                .decrypt()
                .ciphertext_blob(blob)
                .encryption_context("app", "rust")
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            expect(
                opened.plaintext().map(|p| p.as_ref()) == Some(plaintext.as_slice()),
                "plaintext differs",
            )
        })
        .await;

    suite
        .check("GenerateDataKey", async {
            let dk = kms
                .generate_data_key()
                .key_id(&key_id)
                .key_spec(DataKeySpec::Aes256)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let plain = dk.plaintext().ok_or("no Plaintext")?.as_ref().to_vec();
            expect(plain.len() == 32, format!("{} bytes", plain.len()))?;
            let opened = kms
                .decrypt()
                .ciphertext_blob(dk.ciphertext_blob().ok_or("no CiphertextBlob")?.clone())
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            expect(
                opened.plaintext().map(|p| p.as_ref()) == Some(plain.as_slice()),
                "data key differs",
            )
        })
        .await;

    suite
        .check("ListKeys (paginated, Limit 2)", async {
            for _ in 0..3 {
                kms.create_key()
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))?;
            }
            let mut pages = kms.list_keys().limit(2).into_paginator().send();
            let mut ids = Vec::new();
            let mut count = 0;
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| format!("{e:?}"))?;
                count += 1;
                expect(page.keys().len() <= 2, "page over the limit")?;
                ids.extend(
                    page.keys()
                        .iter()
                        .filter_map(|k| k.key_id().map(str::to_string)),
                );
            }
            expect(count >= 2, format!("{count} pages"))?;
            let unique: std::collections::BTreeSet<_> = ids.iter().collect();
            expect(unique.len() == ids.len(), "a key listed twice")?;
            expect(ids.contains(&key_id), "created key not listed")
        })
        .await;

    suite
        .check("NotFoundException", async {
            let e = kms
                .describe_key()
                .key_id("11111111-2222-3333-4444-555555555555")
                .send()
                .await
                .err()
                .ok_or("no error")?;
            let service = e.into_service_error();
            expect(
                service.is_not_found_exception(),
                format!("got {:?}", service.code()),
            )?;
            expect(
                service
                    .message()
                    .is_some_and(|m| m.contains("does not exist")),
                format!("message {:?}", service.message()),
            )
        })
        .await;

    suite
        .check("InvalidSignatureException for a wrong secret", async {
            let e = wrong
                .describe_key()
                .key_id(&key_id)
                .send()
                .await
                .err()
                .ok_or("no error")?;
            let code = e.code().map(str::to_string);
            expect(
                code.as_deref() == Some("InvalidSignatureException"),
                format!("got {code:?}"),
            )
        })
        .await;

    if let Some(untrusting) = untrusting {
        suite
            .check(
                "a client without the certificate in its roots is refused",
                async {
                    match untrusting.list_keys().send().await {
                        Ok(_) => Err("the handshake succeeded with an empty root store".into()),
                        Err(e) => expect(
                            matches!(e, aws_sdk_kms::error::SdkError::DispatchFailure(_)),
                            format!("{e:?}"),
                        ),
                    }
                },
            )
            .await;
    }

    if suite.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
