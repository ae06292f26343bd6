//! The data plane from the command line: encrypt, decrypt, re-encrypt, generate-data-key,
//! generate-random. Binary values are raw in files and base64 on a terminal and in JSON, as the
//! service's JSON carries them.

use keyplane::{
    DataKeySpec, DecryptRequest, EncryptRequest, EncryptionContext, GenerateDataKeyRequest,
    ReEncryptRequest,
};

use crate::args::{
    DecryptArgs, EncryptArgs, GenerateDataKeyArgs, GenerateRandomArgs, ReEncryptArgs,
};
use crate::context::Context;
use crate::io::{b64, blob_from, pairs, read_input, write_file, write_stdout};
use crate::outcome::Failure;
use crate::output::Response;

fn context(args: &[String]) -> Result<Option<EncryptionContext>, Failure> {
    let map = pairs(args, "encryption context")?;
    Ok((!map.is_empty()).then_some(map))
}

/// A blob for people: raw into `--out`, else base64 on standard output.
fn emit_blob(out: Option<&std::path::Path>, blob: &[u8]) -> Result<(), Failure> {
    match out {
        Some(path) => write_file(path, blob, false),
        None => {
            println!("{}", b64(blob));
            Ok(())
        }
    }
}

pub fn encrypt(ctx: &Context, args: EncryptArgs) -> Result<(), Failure> {
    let engine = ctx.engine()?;
    let plaintext = read_input(args.input.as_deref())?;
    let context = context(&args.context.context)?;
    let mut request = EncryptRequest::new(&args.key_id, &plaintext);
    request.encryption_context = context.as_ref();
    let sealed = engine.encrypt(&request)?;
    if let (true, Some(path)) = (ctx.global.json, args.output.as_deref()) {
        write_file(path, &sealed.ciphertext_blob, false)?;
    }
    if ctx.global.json {
        return Response::new()
            .field("CiphertextBlob", b64(&sealed.ciphertext_blob))?
            .field("KeyId", &sealed.key_id)?
            .field("EncryptionAlgorithm", sealed.encryption_algorithm)?
            .print_ok();
    }
    emit_blob(args.output.as_deref(), &sealed.ciphertext_blob)
}

pub fn decrypt(ctx: &Context, args: DecryptArgs) -> Result<(), Failure> {
    let engine = ctx.engine()?;
    let blob = blob_from(&read_input(args.input.as_deref())?);
    let context = context(&args.context.context)?;
    let mut request = DecryptRequest::new(&blob);
    request.encryption_context = context.as_ref();
    request.key_id = args.key_id.as_deref();
    let opened = engine.decrypt(&request)?;
    if let Some(path) = args.output.as_deref() {
        write_file(path, opened.plaintext.expose(), true)?;
    }
    if ctx.global.json {
        return Response::new()
            .field("KeyId", &opened.key_id)?
            .field("Plaintext", b64(opened.plaintext.expose()))?
            .field("EncryptionAlgorithm", opened.encryption_algorithm)?
            .field("KeyMaterialId", &opened.key_material_id)?
            .print_ok();
    }
    if args.output.is_none() {
        write_stdout(opened.plaintext.expose())?;
    }
    Ok(())
}

pub fn re_encrypt(ctx: &Context, args: ReEncryptArgs) -> Result<(), Failure> {
    let engine = ctx.engine()?;
    let blob = blob_from(&read_input(args.input.as_deref())?);
    let source_context = context(&args.source_context)?;
    let destination_context = context(&args.destination_context)?;
    let mut request = ReEncryptRequest::new(&blob, &args.destination_key_id);
    request.source_key_id = args.source_key_id.as_deref();
    request.source_encryption_context = source_context.as_ref();
    request.destination_encryption_context = destination_context.as_ref();
    let r = engine.re_encrypt(&request)?;
    if let (true, Some(path)) = (ctx.global.json, args.output.as_deref()) {
        write_file(path, &r.ciphertext_blob, false)?;
    }
    if ctx.global.json {
        return Response::new()
            .field("CiphertextBlob", b64(&r.ciphertext_blob))?
            .field("SourceKeyId", &r.source_key_id)?
            .field("KeyId", &r.key_id)?
            .field("SourceEncryptionAlgorithm", r.source_encryption_algorithm)?
            .field(
                "DestinationEncryptionAlgorithm",
                r.destination_encryption_algorithm,
            )?
            .field("SourceKeyMaterialId", &r.source_key_material_id)?
            .field("DestinationKeyMaterialId", &r.destination_key_material_id)?
            .print_ok();
    }
    emit_blob(args.output.as_deref(), &r.ciphertext_blob)
}

pub fn generate_data_key(ctx: &Context, args: GenerateDataKeyArgs) -> Result<(), Failure> {
    let engine = ctx.engine()?;
    let context = context(&args.context.context)?;
    let key_spec = match (&args.key_spec, args.number_of_bytes) {
        (Some(spec), _) => Some(spec.parse::<DataKeySpec>()?),
        (None, None) => Some(DataKeySpec::Aes256),
        (None, Some(_)) => None,
    };
    let request = GenerateDataKeyRequest {
        key_id: &args.key_id,
        encryption_context: context.as_ref(),
        key_spec,
        number_of_bytes: args.number_of_bytes,
    };
    let json = ctx.global.json;
    if args.without_plaintext {
        if args.plaintext_out.is_some() {
            return Err(Failure::usage(
                "--without-plaintext has no plaintext to write",
            ));
        }
        let r = engine.generate_data_key_without_plaintext(&request)?;
        if let Some(path) = &args.ciphertext_out {
            write_file(path, &r.ciphertext_blob, false)?;
        }
        if json {
            return Response::new()
                .field("CiphertextBlob", b64(&r.ciphertext_blob))?
                .field("KeyId", &r.key_id)?
                .field("KeyMaterialId", &r.key_material_id)?
                .print_ok();
        }
        if args.ciphertext_out.is_none() {
            println!("CiphertextBlob {}", b64(&r.ciphertext_blob));
        }
        return Ok(());
    }
    let r = engine.generate_data_key(&request)?;
    if let Some(path) = &args.plaintext_out {
        write_file(path, r.plaintext.expose(), true)?;
    }
    if let Some(path) = &args.ciphertext_out {
        write_file(path, &r.ciphertext_blob, false)?;
    }
    if json {
        return Response::new()
            .field("CiphertextBlob", b64(&r.ciphertext_blob))?
            .field("Plaintext", b64(r.plaintext.expose()))?
            .field("KeyId", &r.key_id)?
            .field("KeyMaterialId", &r.key_material_id)?
            .print_ok();
    }
    if args.ciphertext_out.is_none() {
        println!("CiphertextBlob {}", b64(&r.ciphertext_blob));
    }
    if args.plaintext_out.is_none() {
        println!("Plaintext      {}", b64(r.plaintext.expose()));
    }
    Ok(())
}

pub fn generate_random(ctx: &Context, args: GenerateRandomArgs) -> Result<(), Failure> {
    // Randomness needs no key: an engine without a store would do, but the store is opened
    // anyway so that a broken setup is reported here as everywhere else.
    let engine = ctx.engine()?;
    let bytes = match &args.custom_key_store_id {
        Some(store) => engine.generate_random_from_custom_key_store(store, args.number_of_bytes)?,
        None => engine.generate_random(args.number_of_bytes)?,
    };
    if let Some(path) = &args.output {
        write_file(path, &bytes, true)?;
    }
    if ctx.global.json {
        return Response::new().field("Plaintext", b64(&bytes))?.print_ok();
    }
    if args.output.is_none() {
        println!("{}", b64(&bytes));
    }
    Ok(())
}
