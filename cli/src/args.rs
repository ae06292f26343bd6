//! The command line: every command, option and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  keyplane demo                                   envelope encryption end to end, with timings
  keyplane store init                             a new store in ./keyplane-data (root key in root.key)
  keyplane key create --description orders
  keyplane alias create alias/orders <KEY_ID>
  echo -n 'card 4111' | keyplane encrypt --key-id alias/orders --context tenant=42 > blob.b64
  keyplane decrypt --in blob.b64 --context tenant=42
  keyplane key rotate alias/orders
  keyplane --json key describe alias/orders
  keyplane store verify
  keyplane store backup /backups/keyplane-$(date +%F).db
  keyplane key create --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY
  keyplane sign --key-id <KEY_ID> --signing-algorithm ECDSA_SHA_256 --in doc.pdf --out doc.sig
  keyplane get-public-key <KEY_ID> --out signer.pem
  keyplane key policy put <KEY_ID> policy.json
  keyplane grant create --key-id <KEY_ID> --grantee-principal <ARN> --operations Encrypt,Decrypt
  keyplane --principal arn:aws:iam::111122223333:role/app encrypt --key-id <KEY_ID> --in f
  keyplane audit verify                           check the audit log's chain and signed digests
  keyplane audit tail -n 20
  keyplane credentials create --principal arn:aws:iam::111122223333:user/app   for keyplane serve

Data directory: --data-dir, else $KEYPLANE_HOME, else ./keyplane-data.
Root key: --root-key-file, --root-key-env VAR, --passphrase-file or --passphrase-env VAR; else
$KEYPLANE_ROOT_KEY (base64) if set; else the key file <data dir>/root.key (created by `store init`).

Principal: --principal ARN (or $KEYPLANE_PRINCIPAL) acts as that caller under key policies and
grants; the default is the account's root, arn:aws:iam::<account id>:root.
Audit: every request is recorded in <data dir>/audit/audit.log, hash-chained, with digests signed by
the store's audit signing key (kept wrapped under the root key; its public key is exported to
<data dir>/audit/audit-signing-key.der). --no-audit turns it off.

Exit codes: 0 success; 1 refused (key state, ciphertext, invalid signature or MAC, conflict, limit,
or `store verify` found damage); 2 usage (bad arguments, parameters or policy documents); 3 not
found; 4 access (denied by key policy or grants, root key wrong or missing, permissions); 5 internal
or storage error (disk full, damaged store, audit log unavailable); `audit verify`: 6 tampered,
7 truncated or unsigned tail (a crash, not tampering).";

/// keyplane: a key management service in a file. Keys with a lifecycle, aliases, tags,
/// rotation, envelope encryption; key material wrapped under a root key in a durable store.
#[derive(Debug, Parser)]
#[command(name = "keyplane", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The store's data directory [default: ./keyplane-data]
    #[arg(long, global = true, env = "KEYPLANE_HOME", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the service's JSON response shapes instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// Root key file (base64 of 32 bytes, mode 0600) [default: <data dir>/root.key]
    #[arg(
        long,
        global = true,
        env = "KEYPLANE_ROOT_KEY_FILE",
        value_name = "FILE"
    )]
    pub root_key_file: Option<PathBuf>,
    /// Read the root key (base64 of 32 bytes) from this environment variable
    #[arg(long, global = true, value_name = "VAR")]
    pub root_key_env: Option<String>,
    /// Derive the root key from the passphrase in this file (first line; argon2id)
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Derive the root key from the passphrase in this environment variable (argon2id)
    #[arg(long, global = true, value_name = "VAR")]
    pub passphrase_env: Option<String>,
    /// Region in key ARNs
    #[arg(
        long,
        global = true,
        env = "KEYPLANE_REGION",
        default_value = "us-east-1"
    )]
    pub region: String,
    /// Another Region's store, for multi-Region keys: REGION=sqlite:PATH (repeatable; opened with
    /// the root.key of that data directory). `key replicate` creates replicas there, and changes
    /// to a multi-Region key's shared properties are written there too
    #[arg(long = "region-store", global = true, value_name = "REGION=ADDRESS")]
    pub region_stores: Vec<String>,
    /// A PKCS#11 token for HSM key stores: CLUSTER_ID=MODULE:TOKEN_LABEL (repeatable), e.g.
    /// cluster-softhsmtoken=/usr/lib/softhsm/libsofthsm2.so:keyplane. `key-store create
    /// --cloud-hsm-cluster-id CLUSTER_ID` names it
    #[arg(
        long = "pkcs11-token",
        global = true,
        env = "KEYPLANE_PKCS11_TOKENS",
        value_delimiter = ',',
        value_name = "CLUSTER=MODULE:LABEL"
    )]
    pub pkcs11_tokens: Vec<String>,
    /// CA certificates (PEM bundle) that external key store proxies' TLS certificates must chain
    /// to [default: the platform's bundle]
    #[arg(
        long = "xks-ca-bundle",
        global = true,
        env = "KEYPLANE_XKS_CA_BUNDLE",
        value_name = "FILE"
    )]
    pub xks_ca_bundle: Option<PathBuf>,
    /// The budget of one call to an external key store proxy, in milliseconds [default: 250, the
    /// XKS spec's]
    #[arg(
        long = "xks-timeout-ms",
        global = true,
        env = "KEYPLANE_XKS_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub xks_timeout_ms: Option<u64>,
    /// Account id in key ARNs
    #[arg(
        long,
        global = true,
        env = "KEYPLANE_ACCOUNT_ID",
        default_value = "111122223333"
    )]
    pub account_id: String,
    /// Run even where key memory cannot be locked (mlock), with a warning
    #[arg(long, global = true)]
    pub allow_unlocked_memory: bool,
    /// Act as this principal (arn:aws:iam::<account>:user/<name>, :role/<name>, :root, or
    /// arn:aws:sts::<account>:assumed-role/<role>/<session>) [default: the account's root]
    #[arg(long, global = true, env = "KEYPLANE_PRINCIPAL", value_name = "ARN")]
    pub principal: Option<String>,
    /// Call through an integrated service (e.g. `s3`): sets kms:ViaService, as managed keys need
    #[arg(long, global = true, value_name = "SERVICE")]
    pub via_service: Option<String>,
    /// Do not record requests in the audit log
    #[arg(long, global = true)]
    pub no_audit: bool,
    /// When a request is answered: after its audit record is on disk (synced), or once queued
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = AuditDurability::Synced,
        value_name = "WHEN"
    )]
    pub audit_durability: AuditDurability,
}

/// `--audit-durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditDurability {
    /// Answer after the request's audit record is fsynced
    Synced,
    /// Answer once the record is queued (a crash can lose the last records)
    Queued,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, describe and manage keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Custom key stores: keys held in an HSM through PKCS#11 (see --pkcs11-token)
    #[command(subcommand)]
    KeyStore(KeyStoreCommand),
    /// Create, repoint, delete and list aliases
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Tag keys, untag them, list their tags
    #[command(subcommand)]
    Tag(TagCommand),
    /// Encrypt up to 4096 bytes under a key
    Encrypt(EncryptArgs),
    /// Decrypt a ciphertext blob
    Decrypt(DecryptArgs),
    /// Decrypt and encrypt again under another key or context, inside keyplane
    ReEncrypt(ReEncryptArgs),
    /// A new data key, in plaintext and encrypted under a key
    GenerateDataKey(GenerateDataKeyArgs),
    /// Random bytes from the engine's generator
    GenerateRandom(GenerateRandomArgs),
    /// Encrypt a file or stream into an AWS Encryption SDK message (aws-encryption-cli reads it)
    EncryptFile(Box<EncryptFileArgs>),
    /// Decrypt an AWS Encryption SDK message (from keyplane or aws-encryption-cli)
    DecryptFile(Box<DecryptFileArgs>),
    /// Create, check, back up, restore and re-key the store
    #[command(subcommand)]
    Store(StoreCommand),
    /// Run the main job: envelope encryption end to end on the store, with timings
    Demo(DemoArgs),
    /// Sign a message or digest with an asymmetric SIGN_VERIFY key
    Sign(SignArgs),
    /// Verify a signature with an asymmetric SIGN_VERIFY key
    Verify(VerifyArgs),
    /// The public key of an asymmetric key (PEM or DER)
    GetPublicKey(GetPublicKeyArgs),
    /// An HMAC of a message under an HMAC key
    GenerateMac(GenerateMacArgs),
    /// Verify an HMAC under an HMAC key
    VerifyMac(VerifyMacArgs),
    /// ECDH between a KEY_AGREEMENT key and a peer's public key
    DeriveSharedSecret(DeriveSharedSecretArgs),
    /// A new key pair: public key, private key in plaintext and encrypted under a key
    GenerateDataKeyPair(GenerateDataKeyPairArgs),
    /// A new key pair: public key and encrypted private key only
    GenerateDataKeyPairWithoutPlaintext(GenerateDataKeyPairArgs),
    /// Create, list, retire and revoke grants
    #[command(subcommand)]
    Grant(GrantCommand),
    /// The managed key of an integrated service (alias/aws/SERVICE), created on first use
    ManagedKey {
        /// The service, e.g. `s3` or `ebs`
        service: String,
    },
    /// Verify the audit log, or show its last records
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Serve the service's own wire protocol (AWS JSON 1.1, SigV4, TLS) for AWS SDKs and the CLI
    Serve(Box<ServeArgs>),
    /// Serve the external key store (XKS) proxy API over keyplane keys (see docs/xks.md)
    XksProxy(Box<XksProxyArgs>),
    /// Measure throughput with the keyplane-bench program (its options: keyplane-bench --help)
    Bench(BenchArgs),
    /// Access keys that sign requests to `keyplane serve` (SigV4), sealed in the store
    #[command(subcommand)]
    Credentials(CredentialsCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyStoreCommand {
    /// CreateCustomKeyStore (type AWS_CLOUDHSM: a PKCS#11 token named by --pkcs11-token)
    Create(CreateKeyStoreArgs),
    /// ConnectCustomKeyStore
    Connect {
        /// The custom key store id (cks-...)
        id: String,
    },
    /// DisconnectCustomKeyStore
    Disconnect {
        /// The custom key store id (cks-...)
        id: String,
    },
    /// DeleteCustomKeyStore (disconnected, and holding no keys)
    Delete {
        /// The custom key store id (cks-...)
        id: String,
    },
    /// UpdateCustomKeyStore (disconnected; a new name also while connected)
    Update(UpdateKeyStoreArgs),
    /// DescribeCustomKeyStores
    List {
        /// Only this store
        #[arg(long)]
        id: Option<String>,
        /// Only the store of this name
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        page: ListArgs,
    },
}

/// Where a key store password (the token's user PIN) comes from: never the command line.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password (the token's user PIN) from this file (first line)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Read the password (the token's user PIN) from this environment variable
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateKeyStoreArgs {
    /// The store's name, unique in the account
    #[arg(long)]
    pub name: String,
    /// An HSM key store on the configured token (a --pkcs11-token CLUSTER)
    #[arg(
        long,
        value_name = "CLUSTER",
        required_unless_present = "xks_proxy_uri_endpoint"
    )]
    pub cloud_hsm_cluster_id: Option<String>,
    /// The HSM's trust anchor certificate (PEM file)
    #[arg(long, value_name = "FILE", requires = "cloud_hsm_cluster_id")]
    pub trust_anchor_certificate: Option<PathBuf>,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// An external key store on the XKS proxy at https://HOST[:PORT]
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "cloud_hsm_cluster_id",
        requires = "xks_proxy_config"
    )]
    pub xks_proxy_uri_endpoint: Option<String>,
    /// The proxy's configuration file (its URI path and credential, as `keyplane xks-proxy
    /// --generate-credentials` writes it); the secret is read from it, never from argv
    #[arg(long, value_name = "FILE")]
    pub xks_proxy_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpdateKeyStoreArgs {
    /// The custom key store id (cks-...)
    pub id: String,
    #[arg(long)]
    pub new_name: Option<String>,
    /// Another configured token (a --pkcs11-token CLUSTER)
    #[arg(long, value_name = "CLUSTER")]
    pub cloud_hsm_cluster_id: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// External key store: another proxy endpoint, https://HOST[:PORT]
    #[arg(long, value_name = "URL")]
    pub xks_proxy_uri_endpoint: Option<String>,
    /// External key store: another proxy configuration file (URI path and credential)
    #[arg(long, value_name = "FILE")]
    pub xks_proxy_config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// A new access key for the principal given by --principal ARN; its secret is shown only now
    Create,
    /// Every access key with its principal and status (never a secret)
    List,
    /// Stop an access key from signing requests (a running server refuses it within a second)
    Disable {
        /// The access key id (AKIA...)
        access_key_id: String,
    },
    /// Let a disabled access key sign requests again
    Enable {
        /// The access key id (AKIA...)
        access_key_id: String,
    },
    /// Delete an access key for good
    Delete {
        /// The access key id (AKIA...)
        access_key_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// CreateKey
    Create(CreateKeyArgs),
    /// ListKeys (with state, spec, aliases and description in the table)
    List(ListArgs),
    /// DescribeKey
    Describe(KeyArg),
    /// EnableKey
    Enable(KeyArg),
    /// DisableKey
    Disable(KeyArg),
    /// UpdateKeyDescription
    UpdateDescription {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        description: String,
    },
    /// RotateKeyOnDemand: new key material now; old material keeps decrypting
    Rotate(KeyArg),
    /// Automatic rotation: enable, disable, status, list
    #[command(subcommand)]
    Rotation(RotationCommand),
    /// ScheduleKeyDeletion (7-30 days; default 30)
    ScheduleDeletion {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        #[arg(long, value_name = "DAYS")]
        pending_window_days: Option<u32>,
    },
    /// CancelKeyDeletion (the key returns Disabled)
    CancelDeletion(KeyArg),
    /// Key policies: get, put, list, template
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// GetKeyLastUsage: the last successful cryptographic use, from the audit log
    LastUsage(KeyArg),
    /// GetParametersForImport: a wrapping public key and an import token for an EXTERNAL key
    /// (valid 24 hours)
    ImportParams(ImportParamsArgs),
    /// ImportKeyMaterial: import (or re-import) key material wrapped with `import-params`' key
    Import(ImportArgs),
    /// ReplicateKey: a replica of a multi-Region primary key in another Region's store
    Replicate(ReplicateArgs),
    /// UpdatePrimaryRegion: the replica in REGION becomes the primary key, this one a replica
    UpdatePrimaryRegion {
        /// Key id or key ARN of the multi-Region primary key (in this Region)
        key: String,
        /// The Region of the replica that becomes the primary key
        #[arg(long, value_name = "REGION")]
        primary_region: String,
    },
    /// DeleteImportedKeyMaterial: the key is PendingImport until the same material returns
    DeleteImported {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        /// The material to delete (default: the current material)
        #[arg(long, value_name = "ID")]
        key_material_id: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ImportParamsArgs {
    /// Key id or key ARN of a key with origin EXTERNAL
    pub key: String,
    /// RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, RSA_AES_KEY_WRAP_SHA_256 or RSA_AES_KEY_WRAP_SHA_1
    #[arg(long, default_value = "RSAES_OAEP_SHA_256")]
    pub wrapping_algorithm: String,
    /// RSA_2048, RSA_3072 or RSA_4096
    #[arg(long, default_value = "RSA_2048")]
    pub wrapping_key_spec: String,
    /// Write the wrapping public key here (SubjectPublicKeyInfo)
    #[arg(long, value_name = "FILE")]
    pub public_key_out: Option<PathBuf>,
    /// The public key file's format (DER, as `openssl pkeyutl -keyform DER` reads it, or PEM)
    #[arg(long, value_enum, default_value_t = KeyFormat::Der)]
    pub format: KeyFormat,
    /// Write the import token here
    #[arg(long, value_name = "FILE")]
    pub token_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Key id or key ARN of a key with origin EXTERNAL
    pub key: String,
    /// The import token from `key import-params` (raw or base64)
    #[arg(long, value_name = "FILE")]
    pub token: PathBuf,
    /// The wrapped key material (raw or base64; '-': standard input)
    #[arg(long, value_name = "FILE")]
    pub material: PathBuf,
    /// When the material expires: an RFC 3339 UTC time (2027-01-31T00:00:00Z) or epoch seconds
    #[arg(long, value_name = "TIME", conflicts_with = "no_expiry")]
    pub valid_to: Option<String>,
    /// The material does not expire (KEY_MATERIAL_DOES_NOT_EXPIRE)
    #[arg(long)]
    pub no_expiry: bool,
    /// NEW_KEY_MATERIAL (for the next RotateKeyOnDemand) or EXISTING_KEY_MATERIAL (a re-import)
    #[arg(long)]
    pub import_type: Option<String>,
    /// The id the material must have (a re-import)
    #[arg(long, value_name = "ID")]
    pub key_material_id: Option<String>,
    /// A description of the material
    #[arg(long, value_name = "TEXT")]
    pub key_material_description: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// GetKeyPolicy: the policy document (JSON)
    Get {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        /// The policy's name (a key has one, `default`)
        #[arg(long)]
        policy_name: Option<String>,
        /// Write the document here instead of standard output
        #[arg(long = "out", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// PutKeyPolicy: replace the policy with the document in FILE ('-': standard input)
    Put {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        /// The policy document (JSON)
        file: PathBuf,
        #[arg(long)]
        policy_name: Option<String>,
        /// Apply a policy that would lock the caller out of PutKeyPolicy
        #[arg(long)]
        bypass_policy_lockout_safety_check: bool,
    },
    /// ListKeyPolicies
    List {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
    },
    /// Print a least-privilege policy: administrators manage the key but cannot use it, users
    /// use it but cannot manage it (no one else, the account root included, has anything)
    Template {
        /// A key administrator's principal ARN (repeatable; at least one)
        #[arg(long = "admin", value_name = "ARN", required = true)]
        admins: Vec<String>,
        /// A key user's principal ARN (repeatable)
        #[arg(long = "user", value_name = "ARN")]
        users: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RotationCommand {
    /// EnableKeyRotation
    Enable {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        /// 90-2560 days; default 365
        #[arg(long, value_name = "DAYS")]
        period_days: Option<u32>,
    },
    /// DisableKeyRotation
    Disable(KeyArg),
    /// GetKeyRotationStatus
    Status(KeyArg),
    /// ListKeyRotations
    List {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        #[command(flatten)]
        page: ListArgs,
    },
}

#[derive(Debug, Args)]
pub struct KeyArg {
    /// Key id, key ARN, alias name or alias ARN
    pub key: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Items per page
    #[arg(long)]
    pub limit: Option<u32>,
    /// Where to continue (the NextMarker of the previous page)
    #[arg(long)]
    pub marker: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    #[arg(long)]
    pub description: Option<String>,
    /// Key spec [default: SYMMETRIC_DEFAULT]
    #[arg(long)]
    pub key_spec: Option<String>,
    /// Key usage [default: the spec's first]
    #[arg(long)]
    pub key_usage: Option<String>,
    /// AWS_KMS (default), EXTERNAL, AWS_CLOUDHSM or EXTERNAL_KEY_STORE (with
    /// --custom-key-store-id)
    #[arg(long)]
    pub origin: Option<String>,
    /// Create the key in this custom key store (cks-...; with --origin AWS_CLOUDHSM or
    /// EXTERNAL_KEY_STORE)
    #[arg(long, value_name = "ID")]
    pub custom_key_store_id: Option<String>,
    /// The external key's id in the XKS proxy (with --origin EXTERNAL_KEY_STORE)
    #[arg(long, value_name = "ID")]
    pub xks_key_id: Option<String>,
    /// A tag, KEY=VALUE (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Key policy document (JSON file) [default: the account's root has full control]
    #[arg(long = "policy", visible_alias = "policy-file", value_name = "FILE")]
    pub policy_file: Option<PathBuf>,
    /// Create the key even if its policy would lock the caller out of PutKeyPolicy
    #[arg(long)]
    pub bypass_policy_lockout_safety_check: bool,
    /// A multi-Region primary key (id mrk-...): replicate it with `key replicate`
    #[arg(long)]
    pub multi_region: bool,
}

#[derive(Debug, Args)]
pub struct ReplicateArgs {
    /// Key id or key ARN of a multi-Region primary key
    pub key: String,
    /// The replica's Region (its store given with --region-store REGION=sqlite:PATH)
    #[arg(long, value_name = "REGION")]
    pub replica_region: String,
    #[arg(long)]
    pub description: Option<String>,
    /// A tag of the replica, KEY=VALUE (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// The replica's key policy (JSON file) [default: the account's root has full control]
    #[arg(long = "policy", visible_alias = "policy-file", value_name = "FILE")]
    pub policy_file: Option<PathBuf>,
    /// Create the replica even if its policy would lock the caller out of PutKeyPolicy
    #[arg(long)]
    pub bypass_policy_lockout_safety_check: bool,
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// CreateAlias
    Create {
        /// alias/...
        name: String,
        /// Key id, key ARN, alias name or alias ARN
        key: String,
    },
    /// UpdateAlias: point the alias at another key
    Update {
        /// alias/...
        name: String,
        /// Key id, key ARN, alias name or alias ARN
        key: String,
    },
    /// DeleteAlias
    Delete {
        /// alias/...
        name: String,
    },
    /// ListAliases (of every key, or of one)
    List {
        /// Only the aliases of this key
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        page: ListArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// TagResource: add tags or overwrite their values
    Add {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        /// KEY=VALUE pairs
        #[arg(required = true, value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// UntagResource
    Remove {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        /// Tag keys
        #[arg(required = true)]
        tag_keys: Vec<String>,
    },
    /// ListResourceTags
    List {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        #[command(flatten)]
        page: ListArgs,
    },
}

#[derive(Debug, Args)]
pub struct ContextArgs {
    /// Encryption context pair KEY=VALUE (repeatable); decrypt must give the same pairs
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
}

/// Keyrings, input and output of `encrypt-file` and `decrypt-file`.
#[derive(Debug, Args)]
pub struct EnvelopeArgs {
    /// Input file ('-' or absent: standard input)
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output file ('-' or absent: standard output); removed again if the command fails
    #[arg(long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A keyplane key as a KMS master key: key id, key ARN, alias name or alias ARN
    /// (repeatable; on encrypt the first makes the data key)
    #[arg(long = "key-id", value_name = "KEY")]
    pub key_ids: Vec<String>,
    /// A raw AES wrapping key: NAMESPACE,NAME,FILE with FILE 16, 24 or 32 raw bytes or their
    /// base64 (repeatable)
    #[arg(long = "raw-aes", value_name = "NAMESPACE,NAME,FILE")]
    pub raw_aes: Vec<String>,
    /// A raw RSA wrapping key: NAMESPACE,NAME,PADDING,FILE with PADDING one of RSA_PKCS1,
    /// RSA_OAEP_SHA1_MGF1, RSA_OAEP_SHA256_MGF1, RSA_OAEP_SHA384_MGF1, RSA_OAEP_SHA512_MGF1 and
    /// FILE a PKCS#8 private key or (encrypt only) a public key, PEM or DER (repeatable)
    #[arg(long = "raw-rsa", value_name = "NAMESPACE,NAME,PADDING,FILE")]
    pub raw_rsa: Vec<String>,
    /// Commitment policy: REQUIRE_ENCRYPT_REQUIRE_DECRYPT (default),
    /// REQUIRE_ENCRYPT_ALLOW_DECRYPT or FORBID_ENCRYPT_ALLOW_DECRYPT
    #[arg(long, value_name = "POLICY")]
    pub commitment_policy: Option<String>,
    /// Most encrypted data keys a message may carry
    #[arg(long, value_name = "N")]
    pub max_encrypted_data_keys: Option<u16>,
    /// Threads sealing or opening frames (default: one per core)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Show a progress line and the throughput on standard error even for small inputs
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,
    /// No progress line, even for large inputs
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub context: ContextArgs,
}

#[derive(Debug, Args)]
pub struct EncryptFileArgs {
    #[command(flatten)]
    pub envelope: EnvelopeArgs,
    /// Algorithm suite, by name or id: AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 (0x0578,
    /// default), AES_256_GCM_HKDF_SHA512_COMMIT_KEY (0x0478); the version 1 suites 0x0078,
    /// 0x0178, 0x0378 only with --commitment-policy FORBID_ENCRYPT_ALLOW_DECRYPT
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// Frame length in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub frame_length: u32,
}

#[derive(Debug, Args)]
pub struct DecryptFileArgs {
    #[command(flatten)]
    pub envelope: EnvelopeArgs,
    /// Try every aws-kms data key with this store's keys (instead of naming them with --key-id)
    #[arg(long)]
    pub discovery: bool,
    /// On standard output, release a signed message's plaintext frame by frame instead of after
    /// its signature verified (the output must then be discarded if the command fails). A file
    /// output always streams: it is removed if the signature (or anything else) fails
    #[arg(long)]
    pub release_unverified: bool,
    /// Most plaintext held until a signed message's signature verifies, on standard output
    /// (bytes; default 256 MiB)
    #[arg(long, value_name = "BYTES")]
    pub max_buffered: Option<u64>,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Key id, key ARN, alias name or alias ARN
    #[arg(long)]
    pub key_id: String,
    /// Plaintext file ('-' or absent: standard input)
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the ciphertext blob here, raw (absent: base64 on standard output)
    #[arg(long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub context: ContextArgs,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Ciphertext blob file, raw or base64 ('-' or absent: standard input)
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the plaintext here (absent: standard output, raw)
    #[arg(long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Require that this key encrypted the blob
    #[arg(long)]
    pub key_id: Option<String>,
    #[command(flatten)]
    pub context: ContextArgs,
}

#[derive(Debug, Args)]
pub struct ReEncryptArgs {
    /// The key to encrypt under
    #[arg(long)]
    pub destination_key_id: String,
    /// Require that this key encrypted the blob
    #[arg(long)]
    pub source_key_id: Option<String>,
    /// Ciphertext blob file, raw or base64 ('-' or absent: standard input)
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the new blob here, raw (absent: base64 on standard output)
    #[arg(long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Source encryption context KEY=VALUE (repeatable)
    #[arg(long = "source-context", value_name = "KEY=VALUE")]
    pub source_context: Vec<String>,
    /// Destination encryption context KEY=VALUE (repeatable)
    #[arg(long = "destination-context", value_name = "KEY=VALUE")]
    pub destination_context: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GenerateDataKeyArgs {
    /// Key id, key ARN, alias name or alias ARN
    #[arg(long)]
    pub key_id: String,
    /// AES_256 or AES_128 [default: AES_256 unless --number-of-bytes]
    #[arg(long, conflicts_with = "number_of_bytes")]
    pub key_spec: Option<String>,
    /// 1-1024 bytes instead of a key spec
    #[arg(long)]
    pub number_of_bytes: Option<usize>,
    /// GenerateDataKeyWithoutPlaintext: only the encrypted data key
    #[arg(long)]
    pub without_plaintext: bool,
    /// Write the plaintext data key here, raw, mode 0600
    #[arg(long, value_name = "FILE")]
    pub plaintext_out: Option<PathBuf>,
    /// Write the encrypted data key here, raw
    #[arg(long, value_name = "FILE")]
    pub ciphertext_out: Option<PathBuf>,
    #[command(flatten)]
    pub context: ContextArgs,
}

#[derive(Debug, Args)]
pub struct GenerateRandomArgs {
    /// 1-1024
    #[arg(long)]
    pub number_of_bytes: usize,
    /// Draw them from this custom key store's HSM (cks-...)
    #[arg(long, value_name = "ID")]
    pub custom_key_store_id: Option<String>,
    /// Write the bytes here, raw (absent: base64 on standard output)
    #[arg(long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create a store in the data directory (and the root key file, unless another root key
    /// source is given), or with --store postgres://... in a PostgreSQL database
    Init {
        #[command(flatten)]
        cost: Argon2Args,
        /// A PostgreSQL store address (postgres://USER@HOST:PORT/DB?sslmode=...) instead of the
        /// data directory's SQLite store; the data directory keeps the root key file and this
        /// node's rollback witness
        #[arg(long, value_name = "ADDRESS")]
        store: Option<String>,
    },
    /// Check every copy of every key version; repair damaged copies from good ones
    Verify {
        /// Report only; repair nothing
        #[arg(long)]
        no_repair: bool,
        /// A PostgreSQL store address instead of the data directory's store
        #[arg(long, value_name = "ADDRESS")]
        store: Option<String>,
    },
    /// Online backup to a new file (keep the root key too: the backup is wrapped under it); of a
    /// PostgreSQL store (--store), to a new SQLite store directory under the same root key
    Backup {
        /// The backup file to create (a directory for a PostgreSQL store's backup)
        file: PathBuf,
        /// A PostgreSQL store address instead of the data directory's store
        #[arg(long, value_name = "ADDRESS")]
        store: Option<String>,
    },
    /// Copy every key, its material, aliases, policies, grants, tags, rotation history and
    /// custom key stores from one store into a new, empty one, and check the copy
    Migrate {
        /// The store to copy (sqlite:DIR or postgres://...); its root key as for that store
        #[arg(long, value_name = "ADDRESS")]
        from: String,
        /// The store to create (postgres://... or sqlite:DIR); its root key from the root key
        /// options, else the data directory's key file
        #[arg(long, value_name = "ADDRESS")]
        to: String,
    },
    /// Restore from a backup (checked first), or --adopt the store as it is
    Restore {
        /// The backup file
        #[arg(required_unless_present = "adopt", conflicts_with = "adopt")]
        file: Option<PathBuf>,
        /// Accept a backup of another store, or one with unrecoverable key versions
        #[arg(long)]
        force: bool,
        /// Accept the store file now in the data directory as it is (after replacing it by hand)
        #[arg(long)]
        adopt: bool,
    },
    /// Rotate the root key: rewrap every key version under a new one, atomically
    RotateRootKey(RotateRootKeyArgs),
    /// The store's event log: repairs, restores, root key rotations
    Events {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Debug, Args)]
pub struct Argon2Args {
    /// argon2id memory for a new passphrase-derived root key, MiB
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub argon2_memory_mib: u32,
    /// argon2id passes for a new passphrase-derived root key
    #[arg(long, default_value_t = 3)]
    pub argon2_iterations: u32,
}

#[derive(Debug, Args)]
pub struct RotateRootKeyArgs {
    /// The new root key goes to this key file (created; default: the current key file, in place)
    #[arg(long, value_name = "FILE")]
    pub new_root_key_file: Option<PathBuf>,
    /// The new root key is in this environment variable
    #[arg(long, value_name = "VAR")]
    pub new_root_key_env: Option<String>,
    /// Derive the new root key from the passphrase in this file
    #[arg(long, value_name = "FILE")]
    pub new_passphrase_file: Option<PathBuf>,
    /// Derive the new root key from the passphrase in this environment variable
    #[arg(long, value_name = "VAR")]
    pub new_passphrase_env: Option<String>,
    #[command(flatten)]
    pub argon2: Argon2Args,
}

/// How a listener serves (`keyplane serve`, `keyplane xks-proxy`): exactly one of certificate
/// files, a self-signed certificate, or plain HTTP on loopback (checked by `TlsArgs::mode`).
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// PEM certificate chain (leaf first)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A self-signed certificate (made on first start, kept in <data dir>/tls/)
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "plain_http"])]
    pub tls_self_signed: bool,
    /// No TLS: only on a loopback listen address
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub plain_http: bool,
}

/// `keyplane serve`: see docs/server.md.
#[derive(Debug, Args)]
#[command(
    after_help = "TLS: give one of --tls-cert FILE --tls-key FILE, --tls-self-signed (a local CA \
and certificate kept in <data dir>/tls/, for 127.0.0.1, ::1 and localhost) or --plain-http (loopback \
addresses only). SIGTERM or SIGINT: stop accepting, finish requests in flight, flush the audit log."
)]
pub struct ServeArgs {
    /// Address of the API listener (port 0: any free port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4443")]
    pub listen: std::net::SocketAddr,
    /// Address of the admin listener (GET /metrics, GET /health; plain HTTP)
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<std::net::SocketAddr>,
    /// Address of the web console for key administrators (TLS when the API has TLS; plain HTTP
    /// only on loopback, like the API). Sign in with an access key; see docs/console.md
    #[arg(long, value_name = "ADDR")]
    pub console_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// The longest, in microseconds, the first small request waits for others to share a batch
    /// (it runs at once when no other request is arriving)
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub coalesce_window_us: u64,
    /// Most requests in one coalesced batch
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub coalesce_max_items: usize,
    /// Every request is its own engine call
    #[arg(long)]
    pub no_coalesce: bool,
    /// Largest request body, in bytes (larger: 413, unread)
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Most client connections open at once
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub max_connections: usize,
    /// An idle connection is closed after this many milliseconds
    #[arg(long, value_name = "N", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,
    /// A request's headers must arrive within this many milliseconds of their first byte
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// At shutdown, how many milliseconds requests in flight get to finish
    #[arg(long, value_name = "N", default_value_t = 30_000)]
    pub drain_timeout_ms: u64,
    /// Staleness bound, in milliseconds (fail closed): when this server cannot follow its key
    /// store for longer than this, data-plane calls are refused (KeyUnavailableException) until
    /// the store answers again; the store is then followed at least 4 times within the bound.
    /// Off by default (docs/store.md, "Sharing a store")
    #[arg(long, value_name = "MS", env = "KEYPLANE_MAX_STALENESS_MS")]
    pub max_staleness: Option<u64>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "External key ID is the keyplane key alias/xks/ID names (create it with \
--create-key ID; disable that key to make the external key DISABLED). Credentials: a JSON file in \
the service console's XKS proxy configuration format ({\"XksProxyUriPath\": ..., \
\"XksProxyAuthenticationCredential\": {\"AccessKeyId\": ..., \"RawSecretAccessKey\": ...}}); \
give --credentials twice while rotating. TLS: as keyplane serve. SIGTERM or SIGINT stops it."
)]
pub struct XksProxyArgs {
    /// Address to listen on (port 0: any free port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// The optional path prefix: the proxy serves /<PREFIX>/kms/xks/v1
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub uri_path_prefix: String,
    /// A credentials file (the console's XKS proxy configuration JSON); repeat to accept several
    #[arg(long = "credentials", value_name = "FILE", required = true)]
    pub credentials: Vec<PathBuf>,
    /// Write a new credentials file (mode 0600) where a --credentials file does not exist yet
    #[arg(long)]
    pub generate_credentials: bool,
    /// Create external key ID at startup (repeatable); an existing one is kept
    #[arg(long = "create-key", value_name = "ID")]
    pub create_keys: Vec<String>,
    /// One line per request on standard error (request id, operation, status, time)
    #[arg(long)]
    pub log_requests: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Application data to encrypt, MiB
    #[arg(long, default_value_t = 4)]
    pub data_mib: usize,
    /// Seconds per throughput measurement
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// Keep the demo key (default: schedule its deletion in 7 days at the end)
    #[arg(long)]
    pub keep_key: bool,
}

/// A message given in a file or on standard input.
#[derive(Debug, Args)]
pub struct MessageArgs {
    /// The message file ('-' or absent: standard input)
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// RAW (the message, up to 4096 bytes) or DIGEST (its hash, of the algorithm's length)
    #[arg(long, default_value = "RAW")]
    pub message_type: String,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Key id, key ARN, alias name or alias ARN
    #[arg(long)]
    pub key_id: String,
    /// e.g. ECDSA_SHA_256, RSASSA_PSS_SHA_256, ED25519_SHA_512
    #[arg(long)]
    pub signing_algorithm: String,
    #[command(flatten)]
    pub message: MessageArgs,
    /// Write the signature here, raw (absent: base64 on standard output)
    #[arg(long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Key id, key ARN, alias name or alias ARN
    #[arg(long)]
    pub key_id: String,
    #[arg(long)]
    pub signing_algorithm: String,
    #[command(flatten)]
    pub message: MessageArgs,
    /// The signature file, raw or base64
    #[arg(long, value_name = "FILE")]
    pub signature: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyFormat {
    /// PEM ("-----BEGIN PUBLIC KEY-----"), base64 of the DER
    Pem,
    /// DER SubjectPublicKeyInfo, binary
    Der,
}

#[derive(Debug, Args)]
pub struct GetPublicKeyArgs {
    /// Key id, key ARN, alias name or alias ARN
    pub key: String,
    /// Write the public key here (absent: PEM on standard output, or the JSON response)
    #[arg(long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The file's format
    #[arg(long, value_enum, default_value_t = KeyFormat::Pem)]
    pub format: KeyFormat,
}

#[derive(Debug, Args)]
pub struct GenerateMacArgs {
    /// Key id, key ARN, alias name or alias ARN
    #[arg(long)]
    pub key_id: String,
    /// HMAC_SHA_224, HMAC_SHA_256, HMAC_SHA_384 or HMAC_SHA_512
    #[arg(long)]
    pub mac_algorithm: String,
    /// The message file ('-' or absent: standard input)
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the MAC here, raw (absent: base64 on standard output)
    #[arg(long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyMacArgs {
    /// Key id, key ARN, alias name or alias ARN
    #[arg(long)]
    pub key_id: String,
    #[arg(long)]
    pub mac_algorithm: String,
    /// The message file ('-' or absent: standard input)
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The MAC file, raw or base64
    #[arg(long, value_name = "FILE")]
    pub mac: PathBuf,
}

#[derive(Debug, Args)]
pub struct DeriveSharedSecretArgs {
    /// Key id, key ARN, alias name or alias ARN (a KEY_AGREEMENT key)
    #[arg(long)]
    pub key_id: String,
    /// The peer's public key file: DER SubjectPublicKeyInfo, PEM, or base64 of the DER
    #[arg(long, value_name = "FILE")]
    pub public_key: PathBuf,
    #[arg(long, default_value = "ECDH")]
    pub key_agreement_algorithm: String,
    /// Write the shared secret here, raw, mode 0600 (absent: base64 on standard output)
    #[arg(long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GenerateDataKeyPairArgs {
    /// The symmetric key that encrypts the private key
    #[arg(long)]
    pub key_id: String,
    /// RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521,
    /// ECC_SECG_P256K1 or ECC_NIST_EDWARDS25519
    #[arg(long)]
    pub key_pair_spec: String,
    #[command(flatten)]
    pub context: ContextArgs,
    /// Write the public key here (DER, or PEM with --format pem)
    #[arg(long, value_name = "FILE")]
    pub public_key_out: Option<PathBuf>,
    /// Write the plaintext private key here (PKCS#8; DER, or PEM with --format pem), mode 0600
    #[arg(long, value_name = "FILE")]
    pub private_key_out: Option<PathBuf>,
    /// Write the encrypted private key here, raw
    #[arg(long, value_name = "FILE")]
    pub private_key_ciphertext_out: Option<PathBuf>,
    /// Format of the key files
    #[arg(long, value_enum, default_value_t = KeyFormat::Der)]
    pub format: KeyFormat,
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// CreateGrant: let a grantee use a key for some operations
    Create {
        /// Key id, key ARN, alias name or alias ARN
        #[arg(long)]
        key_id: String,
        /// The principal the grant is for
        #[arg(long, value_name = "ARN")]
        grantee_principal: String,
        /// Operations, comma-separated: Encrypt, Decrypt, GenerateDataKey, Sign, ...
        #[arg(long, required = true, value_delimiter = ',', value_name = "LIST")]
        operations: Vec<String>,
        /// The principal that may retire the grant
        #[arg(long, value_name = "ARN")]
        retiring_principal: Option<String>,
        /// A name for the grant
        #[arg(long)]
        name: Option<String>,
        /// Constraint: the request's encryption context must equal these pairs (repeatable)
        #[arg(long = "context-equals", value_name = "KEY=VALUE")]
        context_equals: Vec<String>,
        /// Constraint: the request's encryption context must include these pairs (repeatable)
        #[arg(long = "context-subset", value_name = "KEY=VALUE")]
        context_subset: Vec<String>,
    },
    /// ListGrants: the grants of a key
    List {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        /// Only this grant
        #[arg(long)]
        grant_id: Option<String>,
        /// Only grants for this grantee
        #[arg(long, value_name = "ARN")]
        grantee_principal: Option<String>,
        #[command(flatten)]
        page: ListArgs,
    },
    /// ListRetirableGrants: the grants a principal may retire, on any key
    ListRetirable {
        /// The retiring principal
        #[arg(value_name = "ARN")]
        retiring_principal: String,
        #[command(flatten)]
        page: ListArgs,
    },
    /// RetireGrant: by its token, or by key and grant id
    Retire {
        #[arg(long, required_unless_present = "grant_id")]
        grant_token: Option<String>,
        #[arg(long, requires = "grant_id")]
        key_id: Option<String>,
        #[arg(long, requires = "key_id")]
        grant_id: Option<String>,
    },
    /// RevokeGrant (a key administrator's action)
    Revoke {
        /// Key id, key ARN, alias name or alias ARN
        key: String,
        grant_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the log's hash chain and signed digests; say what is wrong and where
    Verify {
        /// One log file only [default: every log of <data dir>/audit: its segments and the
        /// audit.log of before segments]
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
        /// The audit public key, DER SubjectPublicKeyInfo (or PEM) [default: <data
        /// dir>/audit/audit-signing-key.der]
        #[arg(long, value_name = "DER_FILE")]
        public_key: Option<PathBuf>,
    },
    /// The last records of the log
    Tail {
        /// How many records
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        /// One log file only [default: every log of <data dir>/audit, merged by time]
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
        /// Show the signed digest lines too
        #[arg(long)]
        digests: bool,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Run against the store of the data directory (keys under alias/keyplane-bench/*) instead of
    /// a fresh in-memory store
    #[arg(long)]
    pub durable: bool,
    /// The harness's options, passed to keyplane-bench unchanged (--workload, --threads, --batch,
    /// --size, --endpoint, ...: see keyplane-bench --help)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "HARNESS OPTIONS"
    )]
    pub harness: Vec<std::ffi::OsString>,
}
