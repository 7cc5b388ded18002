//! Where a push goes: the `[notify] ntfy_url`, checked once by the
//! configuration when it loads and used by the notifier
//! ([`crate::desktop`]) to send. Below both, so the configuration checks
//! it without reaching up into the notifier.

/// Why a push URL was refused; each text starts with the URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{url}: expected an http:// or https:// URL")]
    NotHttp { url: String },
    #[error("{url}: expected http://host[:port]/topic")]
    BadAuthority { url: String },
    #[error("{url}: the path must not contain spaces")]
    SpaceInPath { url: String },
    #[error("{url}: bad port {port:?}")]
    BadPort { url: String, port: String },
    #[error("{url}: no host")]
    NoHost { url: String },
    #[error("{url}: not a valid URL ({reason})")]
    Invalid { url: String, reason: String },
}

/// An `http://` or `https://` `host[:port]/path` URL, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    pub url: String,
    /// `host` or `host:port`, as the `Host` header carries it.
    pub authority: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `https://`: the POST goes over TLS, the server's certificate checked
    /// against the bundled Mozilla roots.
    pub tls: bool,
}

impl HttpTarget {
    /// Parse a URL; anything but `http://` and `https://` is an error.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url_ = || url.to_string();
        let (rest, tls, default_port) = if let Some(rest) = url.strip_prefix("https://") {
            (rest, true, 443)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (rest, false, 80)
        } else {
            return Err(UrlError::NotHttp { url: url_() });
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(UrlError::BadAuthority { url: url_() });
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::SpaceInPath { url: url_() });
        }
        // `[v6]:port`, `host:port` or `host`.
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (
                h,
                p.parse::<u16>().map_err(|_| UrlError::BadPort {
                    url: url_(),
                    port: p.into(),
                })?,
            ),
            _ => (authority, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::NoHost { url: url_() });
        }
        // What the HTTP client will parse when sending: refuse it now.
        if let Err(e) = url.parse::<ureq::http::Uri>() {
            return Err(UrlError::Invalid {
                url: url_(),
                reason: e.to_string(),
            });
        }
        Ok(HttpTarget {
            url: url.to_string(),
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
            tls,
        })
    }
}
