//! The README's import recipe, run as written: `keyplane key import-params`, the `openssl`
//! command line wrapping material (RSAES_OAEP_SHA_256 for a symmetric key, RSA_AES_KEY_WRAP_SHA_256
//! for an ECC private key as PKCS#8 DER), `keyplane key import`, encryption, a signature that
//! `openssl dgst` verifies with the public half openssl computed, `key delete-imported` and
//! `key rotation list`. Then the same commands' refusals: another key's token, altered material,
//! different material on re-import, with the service's exception names and exit codes.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The shell block between `<!-- import-recipe -->` and `<!-- /import-recipe -->` in README.md.
fn recipe() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let start = readme
        .find("<!-- import-recipe -->")
        .expect("README.md has the import recipe");
    let end = readme.find("<!-- /import-recipe -->").unwrap();
    readme[start..end]
        .lines()
        .filter(|l| !l.starts_with("<!--") && !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_readme_import_recipe_works_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("recipe.sh"), recipe()).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_keyplane")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "recipe.sh"])
        .current_dir(d)
        .env("PATH", path);
    for (var, _) in std::env::vars() {
        if var.starts_with("KEYPLANE_") {
            command.env_remove(var);
        }
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the recipe failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("hello"), "{stdout}");
    assert!(stdout.contains("Verified OK"), "{stdout}");
    assert!(stdout.contains("Imported key material"), "{stdout}");
    assert!(stdout.contains("PENDING_IMPORT"), "{stdout}");
}

fn key_id(value: &serde_json::Value) -> String {
    value["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned()
}

fn openssl(d: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(d)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn oaep(d: &Path, input: &str, output: &str) {
    openssl(
        d,
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            "wrapping.der",
            "-keyform",
            "DER",
            "-in",
            input,
            "-out",
            output,
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ],
    );
}

#[test]
fn bad_imports_fail_with_the_service_s_errors_and_json_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["store", "init"], b"");
    let key = key_id(&json(d, &["key", "create", "--origin", "EXTERNAL"], b""));
    let other = key_id(&json(d, &["key", "create", "--origin", "EXTERNAL"], b""));
    // JSON parameters carry base64 of the token and key, and the date as epoch seconds.
    let params = json(d, &["key", "import-params", &other], b"");
    for member in ["KeyId", "ImportToken", "PublicKey", "ParametersValidTo"] {
        assert!(params.get(member).is_some(), "{member} in {params}");
    }
    std::fs::write(
        d.join("other-token.b64"),
        params["ImportToken"].as_str().unwrap(),
    )
    .unwrap();
    ok(
        d,
        &[
            "key",
            "import-params",
            &key,
            "--public-key-out",
            "wrapping.der",
            "--token-out",
            "token.bin",
        ],
        b"",
    );
    std::fs::write(d.join("material.bin"), [9u8; 32]).unwrap();
    oaep(d, "material.bin", "material.wrapped");
    let import = |token: &str, material: &str| {
        run(
            d,
            &[
                "key",
                "import",
                &key,
                "--token",
                token,
                "--material",
                material,
                "--no-expiry",
            ],
        )
    };
    let refused = |out: std::process::Output, exception: &str, exit: i32| {
        assert_eq!(code(&out), exit, "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(exception),
            "{exception}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Another key's token (base64 from --json), with material wrapped for this key's parameters.
    refused(
        import("other-token.b64", "material.wrapped"),
        "InvalidImportTokenException",
        2,
    );
    // Altered wrapped material.
    let mut altered = std::fs::read(d.join("material.wrapped")).unwrap();
    altered[10] ^= 1;
    std::fs::write(d.join("altered.wrapped"), altered).unwrap();
    refused(
        import("token.bin", "altered.wrapped"),
        "InvalidCiphertextException",
        1,
    );
    // Neither --valid-to nor --no-expiry: a usage error before anything is sent.
    let out = run(
        d,
        &[
            "key",
            "import",
            &key,
            "--token",
            "token.bin",
            "--material",
            "material.wrapped",
        ],
    );
    assert_eq!(code(&out), 2);
    // The real import, with JSON in the service's shape; ValidTo 100 days ahead, to the second.
    let valid_to = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 100 * 86_400;
    let valid_to_text = valid_to.to_string();
    let imported = json(
        d,
        &[
            "key",
            "import",
            &key,
            "--token",
            "token.bin",
            "--material",
            "material.wrapped",
            "--valid-to",
            &valid_to_text,
        ],
        b"",
    );
    let material_id = imported["KeyMaterialId"].as_str().unwrap().to_owned();
    assert_eq!(material_id.len(), 64);
    let described = json(d, &["key", "describe", &key], b"");
    assert_eq!(described["KeyMetadata"]["KeyState"], "Enabled");
    assert_eq!(
        described["KeyMetadata"]["ExpirationModel"],
        "KEY_MATERIAL_EXPIRES"
    );
    assert_eq!(
        described["KeyMetadata"]["ValidTo"].as_f64(),
        Some(valid_to as f64)
    );
    // Over a year ahead is the service's ValidationException; so is a time that does not parse.
    for (bad, exception) in [
        ("2099-12-31T23:59:59Z", "ValidationException"),
        ("31/12/2027", "--valid-to"),
    ] {
        let out = run(
            d,
            &[
                "key",
                "import",
                &key,
                "--token",
                "token.bin",
                "--material",
                "material.wrapped",
                "--valid-to",
                bad,
            ],
        );
        refused(out, exception, 2);
    }
    // Delete, then different material is refused and the same material comes back.
    let deleted = json(d, &["key", "delete-imported", &key], b"");
    assert_eq!(deleted["KeyMaterialId"], material_id.as_str());
    std::fs::write(d.join("different.bin"), [8u8; 32]).unwrap();
    oaep(d, "different.bin", "different.wrapped");
    refused(
        import("token.bin", "different.wrapped"),
        "IncorrectKeyMaterialException",
        1,
    );
    ok(
        d,
        &[
            "key",
            "import",
            &key,
            "--token",
            "token.bin",
            "--material",
            "material.wrapped",
            "--no-expiry",
        ],
        b"",
    );
    let rotations = json(d, &["key", "rotation", "list", &key], b"");
    assert_eq!(rotations["Rotations"][0]["ImportState"], "IMPORTED");
    assert_eq!(rotations["Rotations"][0]["KeyMaterialState"], "CURRENT");
    // Refused wrapping choices say why.
    let out = run(
        d,
        &[
            "key",
            "import-params",
            &key,
            "--wrapping-algorithm",
            "RSAES_PKCS1_V1_5",
        ],
    );
    refused(out, "UnsupportedOperationException", 2);
}
