//! `keyplane`: the operators' command-line tool for a keyplane store.
#![deny(unsafe_code)]

mod args;
mod commands;
mod context;
mod io;
mod outcome;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};
use crate::context::Context;
use crate::outcome::{Failure, USAGE};

/// The tool's allocator. `keyplane serve` allocates and frees small buffers for every request
/// (headers, JSON, base64) from many threads; glibc's allocator spent a fifth of the server's CPU
/// time in `malloc`, `free` and `malloc_consolidate` under the endpoint benchmark. Key material
/// never lives in this heap (it is in the engine's locked memory), and buffers that held plaintext
/// are zeroized by their owners before they are freed, whichever allocator frees them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `keyplane --version`: the version and which AWS-LC module this build runs on, as the engine
/// reports it (`keyplane::fips_mode()`: true only on the FIPS 140-3 module, built with
/// `--no-default-features --features fips`).
fn version() -> String {
    format!(
        "{} (AWS-LC {}; fips_mode: {})",
        env!("CARGO_PKG_VERSION"),
        if cfg!(feature = "fips") {
            "FIPS 140-3 module"
        } else {
            "general build, not the FIPS module"
        },
        keyplane::fips_mode()
    )
}

fn main() -> ExitCode {
    let cli = match Cli::command()
        .version(&*Box::leak(version().into_boxed_str()))
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(USAGE),
            };
        }
    };
    let json = cli.global.json;
    let ctx = Context::new(cli.global);
    match run(&ctx, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.print(json),
    }
}

fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::Key(c) => commands::keys::run(ctx, c),
        Command::KeyStore(c) => commands::key_stores::run(ctx, c),
        Command::Alias(c) => commands::aliases::run_alias(ctx, c),
        Command::Tag(c) => commands::aliases::run_tag(ctx, c),
        Command::Encrypt(a) => commands::crypto::encrypt(ctx, a),
        Command::Decrypt(a) => commands::crypto::decrypt(ctx, a),
        Command::ReEncrypt(a) => commands::crypto::re_encrypt(ctx, a),
        Command::GenerateDataKey(a) => commands::crypto::generate_data_key(ctx, a),
        Command::GenerateRandom(a) => commands::crypto::generate_random(ctx, a),
        Command::EncryptFile(a) => commands::envelope::encrypt_file(ctx, *a),
        Command::DecryptFile(a) => commands::envelope::decrypt_file(ctx, *a),
        Command::Store(c) => commands::store::run(ctx, c),
        Command::Demo(a) => commands::demo::run(ctx, a),
        Command::Sign(a) => commands::asymmetric::sign(ctx, a),
        Command::Verify(a) => commands::asymmetric::verify(ctx, a),
        Command::GetPublicKey(a) => commands::asymmetric::get_public_key(ctx, a),
        Command::GenerateMac(a) => commands::asymmetric::generate_mac(ctx, a),
        Command::VerifyMac(a) => commands::asymmetric::verify_mac(ctx, a),
        Command::DeriveSharedSecret(a) => commands::asymmetric::derive_shared_secret(ctx, a),
        Command::GenerateDataKeyPair(a) => {
            commands::asymmetric::generate_data_key_pair(ctx, a, true)
        }
        Command::GenerateDataKeyPairWithoutPlaintext(a) => {
            commands::asymmetric::generate_data_key_pair(ctx, a, false)
        }
        Command::Grant(c) => commands::access::run_grant(ctx, c),
        Command::ManagedKey { service } => commands::access::managed_key(ctx, &service),
        Command::Audit(c) => commands::audit::run(ctx, c),
        Command::Serve(a) => commands::serve::run(ctx, *a),
        Command::XksProxy(a) => commands::xks::run(ctx, *a),
        Command::Bench(a) => commands::bench::run(ctx, a),
        Command::Credentials(c) => commands::credentials::run(ctx, c),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
