//! Gives the shared library its SONAME: `libkeyplane.so.<major>`, or `libkeyplane.so.0.<minor>`
//! before 1.0 (where a minor release may change the ABI).
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let soname = if major == "0" {
        format!("libkeyplane.so.0.{minor}")
    } else {
        format!("libkeyplane.so.{major}")
    };
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
