//! The stores of other Regions (multi-Region keys, `docs/multi-region.md`): each named
//! `REGION=ADDRESS` (`eu-west-1=sqlite:/srv/keyplane-eu`), opened with that store's own root key.

use std::sync::Arc;

use keyplane::store::KeyStore;
use keyplane_sqlite::StoreOptions;

use crate::address::StoreAddress;
use crate::audit::AuditOptions;
use crate::error::{ErrorKind, OpenError};
use crate::open::{open, OpenOptions};
use crate::root_key::RootKeySource;

/// Another Region's store: its Region and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionStoreAddress {
    pub region: String,
    pub address: StoreAddress,
}

impl RegionStoreAddress {
    /// Parses `REGION=ADDRESS`. The address must name a durable store (`sqlite:PATH`): a peer
    /// Region's store is read by that Region's own processes, which `memory:` cannot be.
    pub fn parse(text: &str) -> Result<Self, OpenError> {
        let bad = |why: &str| {
            OpenError::new(
                ErrorKind::BadAddress,
                format!(
                    "'{text}' is not a Region's store: {why} (give REGION=sqlite:PATH, such as \
                     eu-west-1=sqlite:/srv/keyplane-eu)"
                ),
            )
        };
        let Some((region, address)) = text.trim().split_once('=') else {
            return Err(bad("no '='"));
        };
        let region = region.trim();
        if !keyplane::key::ArnScope::is_region_name(region) {
            return Err(bad(
                "the Region must be 1-32 characters of a-z, 0-9 and '-'",
            ));
        }
        let address = StoreAddress::parse(address)?;
        if address.dir().is_none() {
            return Err(bad("another Region's store must be durable"));
        }
        Ok(RegionStoreAddress {
            region: region.to_owned(),
            address,
        })
    }

    /// Opens the store, which must exist (`keyplane store init` in that Region's data directory
    /// first), with its own root key: the key file `root.key` in its data directory. This
    /// process's `KEYPLANE_ROOT_KEY` and `KEYPLANE_ROOT_KEY_FILE` name its own store's key, never
    /// a peer's.
    pub fn open(&self, store: StoreOptions) -> Result<Arc<dyn KeyStore>, OpenError> {
        let dir = self.address.dir().ok_or_else(|| {
            OpenError::new(
                ErrorKind::BadAddress,
                "another Region's store must be durable",
            )
        })?;
        let key_file = keyplane_sqlite::StorePaths::default_key_file(dir);
        self.open_with(RootKeySource::KeyFile(key_file), store)
    }

    /// Opens the store with the root key from `root_key`.
    pub fn open_with(
        &self,
        root_key: RootKeySource,
        store: StoreOptions,
    ) -> Result<Arc<dyn KeyStore>, OpenError> {
        let opened = open(
            &self.address,
            OpenOptions {
                root_key: Some(root_key),
                open_only: true,
                store,
                audit: AuditOptions::off(),
                ..OpenOptions::default()
            },
        )?;
        let store = opened.store().cloned().ok_or_else(|| {
            OpenError::new(
                ErrorKind::BadAddress,
                "another Region's store must be durable",
            )
        })?;
        Ok(store as Arc<dyn KeyStore>)
    }
}

/// `builder` given each of `peers` ([`RegionStoreAddress::open`]: it must exist, and opens with
/// its own root key file) as the store of its Region: what `--region-store`, the C ABI's
/// `kp_config_add_region_store` and Python's `region_stores` name.
pub fn with_region_stores<'a>(
    mut builder: keyplane::EngineBuilder,
    peers: impl IntoIterator<Item = &'a RegionStoreAddress>,
    store: &StoreOptions,
) -> Result<keyplane::EngineBuilder, OpenError> {
    for peer in peers {
        builder = builder.region_store(&peer.region, peer.open(store.clone())?);
    }
    Ok(builder)
}

impl std::fmt::Display for RegionStoreAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.region, self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_store_addresses_parse_and_bad_ones_say_why() {
        let parsed = RegionStoreAddress::parse("eu-west-1=sqlite:///srv/eu").unwrap();
        assert_eq!(parsed.region, "eu-west-1");
        assert_eq!(parsed.address, StoreAddress::data_dir("/srv/eu"));
        assert_eq!(parsed.to_string(), "eu-west-1=sqlite:/srv/eu");
        for bad in [
            "eu-west-1",
            "=sqlite:/x",
            "EU=sqlite:/x",
            "eu-west-1=memory:",
            "eu-west-1=pg:x",
        ] {
            let e = RegionStoreAddress::parse(bad).unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::BadAddress | ErrorKind::UnknownScheme),
                "{bad}: {e:?}"
            );
        }
    }
}
