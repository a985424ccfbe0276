//! The transport, done as users of cargo expect: ureq over rustls, connect
//! and read timeouts, retries with backoff on connection errors and 5xx,
//! the size cap checked before a body is read (and enforced while it is),
//! `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY` honoured (ureq reads
//! them), `If-None-Match` for revalidation, and progress as bytes arrive.

use std::io::Read;
use std::time::Duration;

/// How downloads behave. [`TransportOptions::from_env`] reads the overrides
/// `BOTERNITY_HTTP_TIMEOUT` (seconds, per connect and per read) and
/// `BOTERNITY_HTTP_RETRIES`.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    pub connect_timeout: Duration,
    /// Longest wait for the response head, and for each read of the body.
    pub read_timeout: Duration,
    /// Further attempts after a connection error, a timeout or a 5xx.
    pub retries: u32,
    /// The wait before the first retry; doubled for each next one.
    pub backoff: Duration,
}

impl Default for TransportOptions {
    fn default() -> TransportOptions {
        TransportOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(250),
        }
    }
}

impl TransportOptions {
    /// The defaults, with `BOTERNITY_HTTP_TIMEOUT` and
    /// `BOTERNITY_HTTP_RETRIES` applied when set to a number.
    pub fn from_env() -> TransportOptions {
        let mut options = TransportOptions::default();
        if let Some(secs) = std::env::var("BOTERNITY_HTTP_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
        {
            options.connect_timeout = Duration::from_secs_f64(secs);
            options.read_timeout = Duration::from_secs_f64(secs);
        }
        if let Some(retries) = std::env::var("BOTERNITY_HTTP_RETRIES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
        {
            options.retries = retries;
        }
        options
    }
}

/// Why a download failed (after any retries).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "cannot reach {url} (tried {attempts} times); check the address, your network and HTTPS_PROXY/NO_PROXY"
    )]
    Unreachable {
        url: String,
        attempts: u32,
        #[source]
        source: ureq::Error,
    },
    #[error(
        "{url} timed out (tried {attempts} times; BOTERNITY_HTTP_TIMEOUT sets the limit in seconds)"
    )]
    Timeout {
        url: String,
        attempts: u32,
        #[source]
        source: ureq::Error,
    },
    #[error("{url} answered HTTP {status}{}", if *.attempts > 1 { format!(" (tried {attempts} times)") } else { String::new() })]
    Status {
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("{url} is {size} bytes, over the {max}-byte limit; refused before reading it")]
    TooLarge { url: String, size: u64, max: u64 },
    #[error("cannot read the body of {url}")]
    Body {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

impl HttpError {
    /// HTTP 404 (or 410): the file is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            HttpError::Status {
                status: 404 | 410,
                ..
            }
        )
    }
}

/// A download's answer.
#[derive(Debug)]
pub enum Fetched {
    /// The body (at most the cap) and its `ETag`, if any.
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
    /// `304 Not Modified`: what the `If-None-Match` tag named is current.
    NotModified,
}

/// Bytes received so far for one download, and its total when known.
pub type ProgressFn<'a> = &'a (dyn Fn(u64, Option<u64>) + Sync);

/// An HTTP client for one install.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
    options: TransportOptions,
}

impl Http {
    pub fn new(options: TransportOptions) -> Http {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_recv_response(Some(options.read_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .user_agent(format!("boternity/{}", crate::TOOL_VERSION))
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
            options,
        }
    }

    /// GETs `url`, refusing a body over `max` bytes (by its `Content-Length`
    /// before reading, and while reading), with `If-None-Match: etag` when
    /// given. Connection errors, timeouts and 5xx are retried with backoff.
    pub fn get(
        &self,
        url: &str,
        max: u64,
        etag: Option<&str>,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<Fetched, HttpError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = attempt <= self.options.retries;
            match self.get_once(url, max, etag, progress, attempt) {
                Err(e) if retry && is_transient(&e) => {
                    let wait = self.options.backoff * 2u32.saturating_pow(attempt - 1);
                    tracing::debug!(%url, attempt, error = %crate::error_chain(&e), ?wait, "retrying");
                    std::thread::sleep(wait);
                }
                other => return other,
            }
        }
    }

    fn get_once(
        &self,
        url: &str,
        max: u64,
        etag: Option<&str>,
        progress: Option<ProgressFn<'_>>,
        attempts: u32,
    ) -> Result<Fetched, HttpError> {
        let mut request = self.agent.get(url);
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        let response = request.call().map_err(|source| match source {
            ureq::Error::Timeout(_) => HttpError::Timeout {
                url: url.into(),
                attempts,
                source,
            },
            source => HttpError::Unreachable {
                url: url.into(),
                attempts,
                source,
            },
        })?;
        let status = response.status().as_u16();
        if status == 304 && etag.is_some() {
            return Ok(Fetched::NotModified);
        }
        if !(200..300).contains(&status) {
            return Err(HttpError::Status {
                url: url.into(),
                status,
                attempts,
            });
        }
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let length = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(size) = length
            && size > max
        {
            return Err(HttpError::TooLarge {
                url: url.into(),
                size,
                max,
            });
        }
        let mut reader = response.into_body().into_reader().take(max + 1);
        let mut bytes = Vec::with_capacity(length.unwrap_or(0).min(max) as usize);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|source| {
                if source.kind() == std::io::ErrorKind::TimedOut {
                    HttpError::Timeout {
                        url: url.into(),
                        attempts,
                        source: ureq::Error::Io(source),
                    }
                } else {
                    HttpError::Body {
                        url: url.into(),
                        source,
                    }
                }
            })?;
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
            if bytes.len() as u64 > max {
                return Err(HttpError::TooLarge {
                    url: url.into(),
                    size: bytes.len() as u64,
                    max,
                });
            }
            if let Some(progress) = progress {
                progress(bytes.len() as u64, length);
            }
        }
        Ok(Fetched::Body { bytes, etag })
    }
}

/// Worth another try: the network or the server's momentary state.
fn is_transient(err: &HttpError) -> bool {
    match err {
        HttpError::Unreachable { source, .. } => matches!(
            source,
            ureq::Error::ConnectionFailed | ureq::Error::Io(_) | ureq::Error::HostNotFound
        ),
        HttpError::Timeout { .. } => true,
        HttpError::Status { status, .. } => *status >= 500,
        HttpError::Body { .. } => true,
        HttpError::TooLarge { .. } => false,
    }
}

/// Whether `url` is plain `http://` to a host other than this machine.
pub fn is_insecure(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// `path` (a checked, `/`-separated relative path) appended to the base URL,
/// each part percent-encoded.
pub fn join(base: &str, path: &str) -> String {
    let mut url = base.trim_end_matches('/').to_string();
    for part in path.split('/') {
        url.push('/');
        for byte in part.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                url.push(byte as char);
            } else {
                url.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_insecure_except_to_this_machine() {
        assert!(is_insecure("http://example.com/dist"));
        assert!(is_insecure("http://10.0.0.1:8080/"));
        assert!(!is_insecure("http://127.0.0.1:8080/dist"));
        assert!(!is_insecure("http://localhost/dist"));
        assert!(!is_insecure("http://[::1]:80/"));
        assert!(!is_insecure("https://example.com/"));
    }

    #[test]
    fn paths_are_joined_and_encoded() {
        assert_eq!(
            join("https://h/dist/", "a b/1.0.0/SKILL.md"),
            "https://h/dist/a%20b/1.0.0/SKILL.md"
        );
    }
}
