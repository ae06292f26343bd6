//! The key model: specs, states and their rules, identifiers, and the records the store keeps.

pub mod identifier;
pub mod record;
pub mod spec;
pub mod state;

pub use identifier::{ArnScope, KeyReference};
pub use record::{
    AliasRecord, CustomKeyStoreKey, GrantConstraints, GrantRecord, ImportedMaterial, KeyMetadata,
    KeyRecord, MultiRegionConfiguration, MultiRegionKey, MultiRegionRecord, RotationConfig, Tag,
    VersionRecord, XksKeyConfiguration,
};
pub use spec::*;
pub use state::KeyOperation;
