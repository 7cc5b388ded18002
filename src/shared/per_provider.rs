//! A value for each provider: the per-provider tables of the configuration
//! (`[binaries]`, `[dirs]`, the provider keys of `[watch]`) and the
//! providers' home dirs, keyed by [`Provider`] instead of one field each.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

use super::Provider;

/// One `T` per provider, indexed by [`Provider`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerProvider<T>([T; Provider::ALL.len()]);

impl<T> PerProvider<T> {
    /// The table built by `f` for each provider.
    pub fn from_fn(mut f: impl FnMut(Provider) -> T) -> Self {
        PerProvider(Provider::ALL.map(&mut f))
    }

    /// The value of provider `p`.
    pub fn get(&self, p: Provider) -> &T {
        &self.0[p.index()]
    }

    /// The value of provider `p`, to change it.
    pub fn get_mut(&mut self, p: Provider) -> &mut T {
        &mut self.0[p.index()]
    }

    /// Each provider with its value, in [`Provider::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Provider, &T)> {
        Provider::ALL.into_iter().zip(self.0.iter())
    }
}

impl<T: Default> Default for PerProvider<T> {
    fn default() -> Self {
        Self::from_fn(|_| T::default())
    }
}

impl<T> std::ops::Index<Provider> for PerProvider<T> {
    type Output = T;
    fn index(&self, p: Provider) -> &T {
        self.get(p)
    }
}

impl<T> std::ops::IndexMut<Provider> for PerProvider<T> {
    fn index_mut(&mut self, p: Provider) -> &mut T {
        self.get_mut(p)
    }
}

/// The provider a table key names, or serde's "unknown field" error
/// listing `expected`, every key the table takes.
pub fn provider_key<E: de::Error>(
    key: &str,
    expected: &'static [&'static str],
) -> Result<Provider, E> {
    Provider::parse(key).ok_or_else(|| de::Error::unknown_field(key, expected))
}

/// The provider keys, in [`Provider::ALL`] order.
pub const KEYS: &[&str] = &keys_after::<0, { Provider::ALL.len() }>([]);

/// `own` followed by every provider's key: the keys of a table that has
/// `N` keys of its own beside one per provider (`M` is `N + 4`).
pub const fn keys_after<const N: usize, const M: usize>(
    own: [&'static str; N],
) -> [&'static str; M] {
    let mut keys = [""; M];
    let mut i = 0;
    while i < M {
        keys[i] = if i < N {
            own[i]
        } else {
            Provider::ALL[i - N].as_str()
        };
        i += 1;
    }
    keys
}

/// A TOML table of provider keys (`claude = …`, `codex = …`); an absent
/// key keeps `T::default()`, an unknown key is an error naming the keys.
impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for PerProvider<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for V<T> {
            type Value = PerProvider<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table keyed by provider")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = PerProvider::<T>::default();
                while let Some(key) = map.next_key::<String>()? {
                    let p = provider_key(&key, KEYS)?;
                    out[p] = map.next_value()?;
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_key_reaches_its_slot_and_unknown_keys_are_errors() {
        let t: PerProvider<Option<String>> = toml::from_str("codex = \"x\"").unwrap();
        assert_eq!(t[Provider::Codex].as_deref(), Some("x"));
        assert_eq!(t[Provider::Claude], None);
        let e = toml::from_str::<PerProvider<Option<String>>>("cursor = \"x\"").unwrap_err();
        assert!(e.to_string().contains("unknown field `cursor`"), "{e}");
        assert_eq!(KEYS, Provider::ALL.map(Provider::as_str));
    }
}
