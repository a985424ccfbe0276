//! `http-get` and `http-post`: requests only to the hosts a skill was
//! granted, with a time limit and a capped body.
//!
//! A granted *name* must also lead outward: its addresses are resolved once,
//! by boternity, and the request goes to one of them only when none points
//! inward (loopback, private, link-local: [`crate::address::is_inward`]) — so
//! DNS rebinding or an internal name cannot turn an allowed host into a door
//! to this machine's services. An address written literally in the grant
//! (`127.0.0.1:8080`) is meant and allowed. Redirects are followed (at most
//! [`MAX_REDIRECTS`]), each hop checked exactly like the first request.

use std::net::IpAddr;
use std::time::Instant;

use super::{HTTP_TIMEOUT, MAX_HTTP_BODY_BYTES};
use crate::executor::DeadlineHit;
use crate::executor::grants::Grants;

/// `host` or `host:port` of an `http://` or `https://` URL.
fn url_authority(url: &str) -> Option<(String, Option<u16>)> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h.to_string(), Some(p.parse().ok()?))
        }
        _ => (authority.to_string(), None),
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

fn host_allowed(grants: &Grants, url: &str) -> Result<(), String> {
    let (host, port) = url_authority(url)
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL with a host"))?;
    let allowed = grants.http_hosts.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        entry == host || port.is_some_and(|p| entry == format!("{host}:{p}"))
    });
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "permission denied: host `{host}` is not on this skill's HTTP allow-list"
        ))
    }
}

/// Most redirects one request follows.
pub const MAX_REDIRECTS: usize = 5;

/// Resolves a request's own host like ureq's default resolver, then keeps
/// only outward addresses unless the host is an address the grant wrote
/// literally; a proxy's host (the user's configuration) is resolved as is.
#[derive(Debug)]
struct OutwardResolver {
    target_host: String,
}

/// The error text the resolver refuses with, recognised when reporting.
const INWARD: &str = "points inward";

impl ureq::unversioned::resolver::Resolver for OutwardResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let resolved = ureq::unversioned::resolver::DefaultResolver::default()
            .resolve(uri, config, timeout)?;
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host != self.target_host || host.parse::<IpAddr>().is_ok() {
            return Ok(resolved);
        }
        let mut outward = self.empty();
        for addr in resolved.iter() {
            if !crate::address::is_inward(addr.ip()) {
                let _ = outward.try_push(*addr);
            }
        }
        if outward.is_empty() {
            let found: Vec<String> = resolved.iter().map(|a| a.ip().to_string()).collect();
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "host `{host}` {INWARD}: it resolves to {} (loopback, private or link-local); \
                     grant the address itself to reach it",
                    found.join(", ")
                ),
            )));
        }
        Ok(outward)
    }
}

/// An agent for one hop to `url`'s host.
fn agent_for(host: &str, timeout: std::time::Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::new(),
        OutwardResolver {
            target_host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        },
    )
}

/// Where a redirect from `from` to `location` leads (absolute, or relative
/// to `from`'s origin or path).
fn redirect_target(from: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme_end = from.find("://").map_or(0, |i| i + 3);
    let origin_end = from[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(from.len(), |i| scheme_end + i);
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{}{rest}", &from[..scheme_end]);
    }
    if location.starts_with('/') {
        return format!("{}{location}", &from[..origin_end]);
    }
    let path = &from[origin_end..];
    let dir_end = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .rfind('/')
        .map_or(0, |i| i + 1);
    format!(
        "{}{}{location}",
        &from[..origin_end],
        &path[..dir_end].trim_start_matches('?')
    )
}

/// One request for `http-get`/`http-post`: the skill's own error as `Ok(Err)`,
/// or the invocation's deadline passing as a trap (the request is abandoned;
/// its thread ends at the request's own timeout, at most the time left).
pub(super) async fn http_request(
    grants: &Grants,
    method: &'static str,
    url: String,
    body: Option<String>,
    deadline: Instant,
) -> wasmtime::Result<Result<String, String>> {
    if let Err(denied) = host_allowed(grants, &url) {
        return Ok(Err(denied));
    }
    let grants = grants.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut url = url;
        let mut method = method;
        let mut body = body;
        for hop in 0..=MAX_REDIRECTS {
            if hop > 0 {
                host_allowed(&grants, &url)
                    .map_err(|denied| format!("redirect refused: {denied}"))?;
            }
            let (host, _) = url_authority(&url)
                .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL with a host"))?;
            let timeout = HTTP_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
            let agent = agent_for(&host, timeout);
            let response = match &body {
                None => agent.get(&url).call(),
                Some(body) => agent.post(&url).send(body.as_str()),
            };
            let mut response = response.map_err(|e| match e {
                ureq::Error::Io(io) if io.to_string().contains(INWARD) => {
                    format!("permission denied: {io}")
                }
                e => format!("{method} {url} failed: {e}"),
            })?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
            {
                url = redirect_target(&url, location);
                // 303 (and, as browsers do, 301/302 after a POST) turn into a GET.
                if matches!(status.as_u16(), 301..=303) {
                    method = "GET";
                    body = None;
                }
                continue;
            }
            let text = response
                .body_mut()
                .with_config()
                .limit(MAX_HTTP_BODY_BYTES)
                .read_to_string()
                .map_err(|e| format!("{method} {url}: cannot read the response: {e}"))?;
            return if status.is_success() {
                Ok(text)
            } else {
                Err(format!("{method} {url} answered {status}: {text}"))
            };
        }
        Err(format!(
            "{method}: more than {MAX_REDIRECTS} redirects, stopped at {url}"
        ))
    });
    match tokio::time::timeout_at(deadline.into(), task).await {
        Ok(joined) => Ok(joined.unwrap_or_else(|e| Err(format!("{method} request failed: {e}")))),
        Err(_) => Err(DeadlineHit.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_matched_by_host_and_port() {
        let grants = Grants {
            http_hosts: ["example.com".to_string(), "127.0.0.1:8080".to_string()].into(),
            ..Grants::default()
        };
        host_allowed(&grants, "https://example.com/a?b").unwrap();
        host_allowed(&grants, "http://127.0.0.1:8080/x").unwrap();
        assert!(host_allowed(&grants, "http://127.0.0.1:9090/x").is_err());
        assert!(host_allowed(&grants, "http://evil.com@example.com/").is_err());
        assert!(host_allowed(&grants, "ftp://example.com/").is_err());
        assert!(host_allowed(&grants, "https://example.com.evil.org/").is_err());
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        let from = "https://a.example/x/y?q=1";
        assert_eq!(
            redirect_target(from, "https://b.example/z"),
            "https://b.example/z"
        );
        assert_eq!(
            redirect_target(from, "//c.example/z"),
            "https://c.example/z"
        );
        assert_eq!(redirect_target(from, "/root"), "https://a.example/root");
        assert_eq!(redirect_target(from, "sib"), "https://a.example/x/sib");
        assert_eq!(redirect_target("http://h:1", "/p"), "http://h:1/p");
    }
}
