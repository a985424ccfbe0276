//! The transport, done as users of cargo expect: ureq over rustls, connect
//! and read timeouts, retries with backoff on connection errors and 5xx,
//! the size cap checked before a body is read (and enforced while it is),
//! `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY` honoured (ureq reads
//! them), `If-None-Match` for revalidation, and progress as bytes arrive.
//!
//! Per-read timeouts restart with every byte, so a server that drips a byte
//! at a time never trips them: every request also has an overall deadline
//! (connect to last byte), and all the requests of one install share a
//! [`Budget`]. Running out of either is never retried.

use std::io::Read;
use std::time::{Duration, Instant};

/// How downloads behave: part of the caller's [`crate::Context`] (the CLI
/// reads `BOTERNITY_HTTP_TIMEOUT`, `BOTERNITY_HTTP_RETRIES`,
/// `BOTERNITY_HTTP_DEADLINE` and `BOTERNITY_HTTP_INSTALL_DEADLINE` into it).
#[derive(Debug, Clone)]
pub struct TransportOptions {
    pub connect_timeout: Duration,
    /// Longest wait for the response head, and for each read of the body.
    pub read_timeout: Duration,
    /// Further attempts after a connection error, a timeout or a 5xx.
    pub retries: u32,
    /// The wait before the first retry; doubled for each next one.
    pub backoff: Duration,
    /// The longest one request may take, from connecting to its last byte
    /// (each retry has its own).
    pub deadline: Duration,
    /// The longest all the requests of one install may take together
    /// (retries and waits included).
    pub install_deadline: Duration,
}

impl Default for TransportOptions {
    fn default() -> TransportOptions {
        TransportOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(250),
            deadline: Duration::from_secs(300),
            install_deadline: Duration::from_secs(900),
        }
    }
}

/// A duration as the errors show it (`3s`, `1m 30s`, `250ms`).
pub fn show_duration(d: Duration) -> String {
    let rounded = if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs())
    } else {
        Duration::from_millis(d.as_millis() as u64)
    };
    humantime::format_duration(rounded).to_string()
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
    #[error(
        "deadline rule: {url} did not finish within its {} deadline ({received} bytes received); \
         the server is too slow or drips its answer; BOTERNITY_HTTP_DEADLINE sets the limit in \
         seconds",
        show_duration(*deadline)
    )]
    Deadline {
        url: String,
        deadline: Duration,
        received: u64,
    },
    #[error(
        "deadline rule: the downloads of this install took longer than {} and were stopped at \
         {url} ({received} bytes of it received); BOTERNITY_HTTP_INSTALL_DEADLINE sets the limit \
         in seconds",
        show_duration(*deadline)
    )]
    InstallDeadline {
        url: String,
        deadline: Duration,
        received: u64,
    },
}

/// The time all the requests of one install share: made when the install
/// starts, passed to every [`Http::get`] of it.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    until: Instant,
    limit: Duration,
}

impl Budget {
    /// `limit` from now.
    pub fn new(limit: Duration) -> Budget {
        let now = Instant::now();
        Budget {
            until: now
                .checked_add(limit)
                .unwrap_or(now + Duration::from_secs(1 << 30)),
            limit,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }
}

/// When one attempt must end, and which limit that is.
#[derive(Debug, Clone, Copy)]
struct AttemptEnd {
    at: Instant,
    /// The install's budget, not the request's own deadline.
    budget: bool,
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
        Http::with_roots(options, None)
    }

    /// A client trusting exactly `roots` (DER certificates) for HTTPS;
    /// `None`: the bundled Mozilla roots ([`Http::new`]).
    pub fn with_roots(options: TransportOptions, roots: Option<Vec<Vec<u8>>>) -> Http {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(match roots {
                Some(roots) => ureq::tls::RootCerts::new_with_certs(
                    &roots
                        .iter()
                        .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
                        .collect::<Vec<_>>(),
                ),
                None => ureq::tls::RootCerts::WebPki,
            })
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
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

    pub fn options(&self) -> &TransportOptions {
        &self.options
    }

    /// GETs `url`, refusing a body over `max` bytes (by its `Content-Length`
    /// before reading, and while reading), with `If-None-Match: etag` when
    /// given. Connection errors, timeouts and 5xx are retried with backoff;
    /// each attempt ends at its deadline or the `budget`'s end, whichever is
    /// first, and running out of time is not retried.
    pub fn get(
        &self,
        url: &str,
        max: u64,
        etag: Option<&str>,
        progress: Option<ProgressFn<'_>>,
        budget: &Budget,
    ) -> Result<Fetched, HttpError> {
        let mut request = Request::new(Method::GET, url, max);
        if let Some(etag) = etag {
            request.headers.push(("If-None-Match".into(), etag.into()));
        }
        let response = self.call(&request, progress, budget)?;
        if response.status == 304 && etag.is_some() {
            return Ok(Fetched::NotModified);
        }
        response.check()?;
        let etag = response.header("etag").map(str::to_string);
        Ok(Fetched::Body {
            bytes: response.body,
            etag,
        })
    }

    /// Sends `request` and returns the answer whatever its status (a 2xx
    /// body capped at `request.max`, any other at [`MAX_ERROR_BODY`]), with
    /// the retries, deadlines and budget of [`Http::get`]: connection
    /// errors, timeouts and 5xx answers are tried again (a 5xx still there
    /// after the last try is returned).
    pub fn call(
        &self,
        request: &Request<'_>,
        progress: Option<ProgressFn<'_>>,
        budget: &Budget,
    ) -> Result<Response, HttpError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = attempt <= self.options.retries;
            let outcome = self.call_once(request, progress, attempt, budget);
            let transient = match &outcome {
                Err(e) => is_transient(e),
                Ok(response) => response.status >= 500,
            };
            if !(retry && transient) {
                return outcome;
            }
            let wait = self.options.backoff * 2u32.saturating_pow(attempt - 1);
            if wait >= budget.remaining() {
                return outcome;
            }
            tracing::debug!(url = %request.url, attempt, ?wait, "retrying");
            std::thread::sleep(wait);
        }
    }

    fn call_once(
        &self,
        request: &Request<'_>,
        progress: Option<ProgressFn<'_>>,
        attempts: u32,
        budget: &Budget,
    ) -> Result<Response, HttpError> {
        let url = request.url.as_str();
        let now = Instant::now();
        let own = now
            .checked_add(self.options.deadline)
            .unwrap_or(budget.until);
        let end = if own < budget.until {
            AttemptEnd {
                at: own,
                budget: false,
            }
        } else {
            AttemptEnd {
                at: budget.until,
                budget: true,
            }
        };
        let out_of_time = |received: u64| {
            if end.budget {
                HttpError::InstallDeadline {
                    url: url.into(),
                    deadline: budget.limit,
                    received,
                }
            } else {
                HttpError::Deadline {
                    url: url.into(),
                    deadline: self.options.deadline,
                    received,
                }
            }
        };
        // A timeout this close to the end is the end (ureq's global timer
        // and ours are not started at the same instant).
        let at_end = || Instant::now() + Duration::from_millis(50) >= end.at;
        let left = end.at.saturating_duration_since(now);
        if left.is_zero() {
            return Err(out_of_time(0));
        }
        let mut builder = ureq::http::Request::builder()
            .method(request.method.clone())
            .uri(url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let unreachable = |source: ureq::Error| match source {
            // Whatever broke, once the time is up the deadline is the reason.
            _ if at_end() => out_of_time(0),
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
        };
        let built = builder
            .body(request.body.unwrap_or_default())
            .map_err(|e| unreachable(ureq::Error::from(e)))?;
        let configured = self
            .agent
            .configure_request(built)
            .timeout_global(Some(left))
            .build();
        let response = self.agent.run(configured).map_err(unreachable)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let success = (200..300).contains(&status);
        let max = if success {
            request.max
        } else {
            request.max.min(MAX_ERROR_BODY)
        };
        let length = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // A HEAD's length is the length of what a GET would send.
        if success
            && request.method != Method::HEAD
            && let Some(size) = length
            && size > max
        {
            return Err(HttpError::TooLarge {
                url: url.into(),
                size,
                max,
            });
        }
        let mut body = Vec::new();
        if request.method != Method::HEAD {
            let mut reader = response.into_body().into_reader().take(max + 1);
            body.reserve(length.unwrap_or(0).min(max) as usize);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = reader.read(&mut buf).map_err(|source| {
                    if at_end() {
                        out_of_time(body.len() as u64)
                    } else if is_timeout(&source) {
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
                body.extend_from_slice(&buf[..n]);
                if body.len() as u64 > max {
                    if !success {
                        // An error's text is for people: what fits is enough.
                        body.truncate(max as usize);
                        break;
                    }
                    return Err(HttpError::TooLarge {
                        url: url.into(),
                        size: body.len() as u64,
                        max,
                    });
                }
                if success && let Some(progress) = progress {
                    progress(body.len() as u64, length);
                }
                if Instant::now() >= end.at {
                    return Err(out_of_time(body.len() as u64));
                }
            }
        }
        Ok(Response {
            url: url.into(),
            status,
            headers,
            body,
            attempts,
        })
    }
}

/// The most of an error answer's body read (its text is for people).
pub const MAX_ERROR_BODY: u64 = 64 * 1024;

pub use ureq::http::Method;

/// One request for [`Http::call`].
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<&'a [u8]>,
    /// The largest successful body read (see [`Http::get`]).
    pub max: u64,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, url: impl Into<String>, max: u64) -> Request<'a> {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            max,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request<'a> {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: &'a [u8]) -> Request<'a> {
        self.body = Some(body);
        self
    }
}

/// An answer of [`Http::call`], whatever its status.
#[derive(Debug)]
pub struct Response {
    /// The URL asked (before any redirect).
    pub url: String,
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
    /// How many tries it took.
    pub attempts: u32,
}

impl Response {
    /// The header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of the header `name` that is text.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// `Ok` for a 2xx, else [`HttpError::Status`].
    pub fn check(&self) -> Result<(), HttpError> {
        if (200..300).contains(&self.status) {
            Ok(())
        } else {
            Err(HttpError::Status {
                url: self.url.clone(),
                status: self.status,
                attempts: self.attempts,
            })
        }
    }
}

/// A read that timed out (ureq wraps its own timeouts in `Other`).
fn is_timeout(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::TimedOut
        || err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|e| matches!(e, ureq::Error::Timeout(_)))
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
        HttpError::TooLarge { .. }
        | HttpError::Deadline { .. }
        | HttpError::InstallDeadline { .. } => false,
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
        url.push_str(&encode(part));
    }
    url
}

/// `text` percent-encoded: every byte but the unreserved ones (a path
/// part, or a query value).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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
