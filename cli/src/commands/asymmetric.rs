//! Asymmetric keys, HMAC keys and key agreement from the command line: sign, verify,
//! get-public-key, generate-mac, verify-mac, derive-shared-secret, generate-data-key-pair(-without-
//! plaintext). Binary values are raw in files and base64 on a terminal and in JSON, as the
//! service's JSON carries them; keys are PEM or DER.

use keyplane::{
    DataKeyPairSpec, DeriveSharedSecretRequest, GenerateDataKeyPairRequest, GenerateMacRequest,
    KeyAgreementAlgorithm, MacAlgorithm, MessageType, SignRequest, SigningAlgorithm,
    VerifyMacRequest, VerifyRequest,
};

use crate::args::{
    DeriveSharedSecretArgs, GenerateDataKeyPairArgs, GenerateMacArgs, GetPublicKeyArgs, KeyFormat,
    MessageArgs, SignArgs, VerifyArgs, VerifyMacArgs,
};
use crate::context::Context;
use crate::io::{b64, blob_from, der_from, pairs, pem, read_input, write_file};
use crate::outcome::Failure;
use crate::output::{print_fields, Response};

/// The message and its type.
fn message(args: &MessageArgs) -> Result<(zeroize::Zeroizing<Vec<u8>>, MessageType), Failure> {
    Ok((
        read_input(args.input.as_deref())?,
        args.message_type.parse()?,
    ))
}

/// Raw or base64 bytes from a small file (a signature, a MAC).
fn read_blob(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    Ok(blob_from(&read_input(Some(path))?))
}

/// Bytes for people: raw into `out`, else base64 on standard output.
fn emit(out: Option<&std::path::Path>, bytes: &[u8], private: bool) -> Result<(), Failure> {
    match out {
        Some(path) => write_file(path, bytes, private),
        None => {
            println!("{}", b64(bytes));
            Ok(())
        }
    }
}

fn key_file_bytes(format: KeyFormat, label: &str, der: &[u8]) -> Vec<u8> {
    match format {
        KeyFormat::Der => der.to_vec(),
        KeyFormat::Pem => pem(label, der).into_bytes(),
    }
}

pub fn sign(ctx: &Context, args: SignArgs) -> Result<(), Failure> {
    let algorithm: SigningAlgorithm = args.signing_algorithm.parse()?;
    let (message, message_type) = message(&args.message)?;
    let engine = ctx.engine()?;
    let signed = engine.sign(&SignRequest {
        key_id: &args.key_id,
        message: &message,
        message_type,
        signing_algorithm: algorithm,
    })?;
    if ctx.global.json {
        if let Some(path) = &args.output {
            write_file(path, &signed.signature, false)?;
        }
        return Response::new()
            .field("KeyId", &signed.key_id)?
            .field("Signature", b64(&signed.signature))?
            .field("SigningAlgorithm", signed.signing_algorithm)?
            .print_ok();
    }
    emit(args.output.as_deref(), &signed.signature, false)
}

pub fn verify(ctx: &Context, args: VerifyArgs) -> Result<(), Failure> {
    let algorithm: SigningAlgorithm = args.signing_algorithm.parse()?;
    let (message, message_type) = message(&args.message)?;
    let signature = read_blob(&args.signature)?;
    let engine = ctx.engine()?;
    let verified = engine.verify(&VerifyRequest {
        key_id: &args.key_id,
        message: &message,
        message_type,
        signature: &signature,
        signing_algorithm: algorithm,
    })?;
    if ctx.global.json {
        return Response::new()
            .field("KeyId", &verified.key_id)?
            .field("SignatureValid", verified.signature_valid)?
            .field("SigningAlgorithm", verified.signing_algorithm)?
            .print_ok();
    }
    println!(
        "Signature valid: {} signed this {} with {}",
        verified.key_id,
        if message_type == MessageType::Digest {
            "digest"
        } else {
            "message"
        },
        verified.signing_algorithm
    );
    Ok(())
}

pub fn get_public_key(ctx: &Context, args: GetPublicKeyArgs) -> Result<(), Failure> {
    let engine = ctx.engine()?;
    let key = engine.get_public_key(&args.key)?;
    if let Some(path) = &args.output {
        write_file(
            path,
            &key_file_bytes(args.format, "PUBLIC KEY", &key.public_key),
            false,
        )?;
    }
    if ctx.global.json {
        let nonempty = |v: Vec<String>| (!v.is_empty()).then_some(v);
        let encryption: Vec<String> = key
            .encryption_algorithms
            .iter()
            .map(|a| a.to_string())
            .collect();
        let signing: Vec<String> = key
            .signing_algorithms
            .iter()
            .map(|a| a.to_string())
            .collect();
        let agreement: Vec<String> = key
            .key_agreement_algorithms
            .iter()
            .map(|a| a.to_string())
            .collect();
        return Response::new()
            .field("KeyId", &key.key_id)?
            .field("PublicKey", b64(&key.public_key))?
            .field("KeySpec", key.key_spec)?
            .field("KeyUsage", key.key_usage)?
            .optional("EncryptionAlgorithms", nonempty(encryption))?
            .optional("SigningAlgorithms", nonempty(signing))?
            .optional("KeyAgreementAlgorithms", nonempty(agreement))?
            .print_ok();
    }
    match &args.output {
        Some(path) => {
            let algorithms: Vec<String> = key
                .signing_algorithms
                .iter()
                .map(|a| a.to_string())
                .chain(key.encryption_algorithms.iter().map(|a| a.to_string()))
                .chain(key.key_agreement_algorithms.iter().map(|a| a.to_string()))
                .collect();
            print_fields(&[
                ("KeyId", key.key_id.clone()),
                ("KeySpec", key.key_spec.to_string()),
                ("KeyUsage", key.key_usage.to_string()),
                ("Algorithms", algorithms.join(", ")),
                ("PublicKey", path.display().to_string()),
            ]);
        }
        None => print!("{}", pem("PUBLIC KEY", &key.public_key)),
    }
    Ok(())
}

pub fn generate_mac(ctx: &Context, args: GenerateMacArgs) -> Result<(), Failure> {
    let algorithm: MacAlgorithm = args.mac_algorithm.parse()?;
    let message = read_input(args.input.as_deref())?;
    let engine = ctx.engine()?;
    let mac = engine.generate_mac(&GenerateMacRequest {
        key_id: &args.key_id,
        message: &message,
        mac_algorithm: algorithm,
    })?;
    if ctx.global.json {
        if let Some(path) = &args.output {
            write_file(path, &mac.mac, false)?;
        }
        return Response::new()
            .field("Mac", b64(&mac.mac))?
            .field("MacAlgorithm", mac.mac_algorithm)?
            .field("KeyId", &mac.key_id)?
            .print_ok();
    }
    emit(args.output.as_deref(), &mac.mac, false)
}

pub fn verify_mac(ctx: &Context, args: VerifyMacArgs) -> Result<(), Failure> {
    let algorithm: MacAlgorithm = args.mac_algorithm.parse()?;
    let message = read_input(args.input.as_deref())?;
    let mac = read_blob(&args.mac)?;
    let engine = ctx.engine()?;
    let verified = engine.verify_mac(&VerifyMacRequest {
        key_id: &args.key_id,
        message: &message,
        mac: &mac,
        mac_algorithm: algorithm,
    })?;
    if ctx.global.json {
        return Response::new()
            .field("KeyId", &verified.key_id)?
            .field("MacValid", verified.mac_valid)?
            .field("MacAlgorithm", verified.mac_algorithm)?
            .print_ok();
    }
    println!(
        "MAC valid: {} under {} ({})",
        verified.mac_valid, verified.key_id, verified.mac_algorithm
    );
    Ok(())
}

pub fn derive_shared_secret(ctx: &Context, args: DeriveSharedSecretArgs) -> Result<(), Failure> {
    let algorithm: KeyAgreementAlgorithm = args.key_agreement_algorithm.parse()?;
    let peer = der_from(&read_input(Some(&args.public_key))?)?;
    let engine = ctx.engine()?;
    let derived = engine.derive_shared_secret(&DeriveSharedSecretRequest {
        key_id: &args.key_id,
        key_agreement_algorithm: algorithm,
        public_key: &peer,
    })?;
    if let (true, Some(path)) = (ctx.global.json, &args.output) {
        write_file(path, derived.shared_secret.expose(), true)?;
    }
    if ctx.global.json {
        return Response::new()
            .field("KeyId", &derived.key_id)?
            .field("SharedSecret", b64(derived.shared_secret.expose()))?
            .field("KeyAgreementAlgorithm", derived.key_agreement_algorithm)?
            .field("KeyOrigin", derived.key_origin)?
            .print_ok();
    }
    emit(args.output.as_deref(), derived.shared_secret.expose(), true)
}

pub fn generate_data_key_pair(
    ctx: &Context,
    args: GenerateDataKeyPairArgs,
    with_plaintext: bool,
) -> Result<(), Failure> {
    let spec: DataKeyPairSpec = args.key_pair_spec.parse()?;
    let context = pairs(&args.context.context, "encryption context")?;
    let context = (!context.is_empty()).then_some(context);
    if !with_plaintext && args.private_key_out.is_some() {
        return Err(Failure::usage(
            "generate-data-key-pair-without-plaintext has no plaintext private key to write",
        ));
    }
    let engine = ctx.engine()?;
    let request = GenerateDataKeyPairRequest {
        key_id: &args.key_id,
        encryption_context: context.as_ref(),
        key_pair_spec: spec,
    };
    let pair = if with_plaintext {
        engine.generate_data_key_pair(&request)?
    } else {
        engine.generate_data_key_pair_without_plaintext(&request)?
    };
    if let Some(path) = &args.public_key_out {
        write_file(
            path,
            &key_file_bytes(args.format, "PUBLIC KEY", &pair.public_key),
            false,
        )?;
    }
    if let (Some(path), Some(private)) = (&args.private_key_out, &pair.private_key_plaintext) {
        let bytes =
            zeroize::Zeroizing::new(key_file_bytes(args.format, "PRIVATE KEY", private.expose()));
        write_file(path, &bytes, true)?;
    }
    if let Some(path) = &args.private_key_ciphertext_out {
        write_file(path, &pair.private_key_ciphertext_blob, false)?;
    }
    if ctx.global.json {
        let plaintext = pair
            .private_key_plaintext
            .as_ref()
            .map(|p| zeroize::Zeroizing::new(b64(p.expose())));
        return Response::new()
            .field(
                "PrivateKeyCiphertextBlob",
                b64(&pair.private_key_ciphertext_blob),
            )?
            .optional("PrivateKeyPlaintext", plaintext.as_deref())?
            .field("PublicKey", b64(&pair.public_key))?
            .field("KeyId", &pair.key_id)?
            .field("KeyPairSpec", pair.key_pair_spec)?
            .field("KeyMaterialId", &pair.key_material_id)?
            .print_ok();
    }
    if args.private_key_ciphertext_out.is_none() {
        println!(
            "PrivateKeyCiphertextBlob {}",
            b64(&pair.private_key_ciphertext_blob)
        );
    }
    if args.public_key_out.is_none() {
        println!("PublicKey                {}", b64(&pair.public_key));
    }
    if let (None, Some(private)) = (&args.private_key_out, &pair.private_key_plaintext) {
        println!(
            "PrivateKeyPlaintext      {}",
            zeroize::Zeroizing::new(b64(private.expose())).as_str()
        );
    }
    Ok(())
}
